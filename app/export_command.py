"""`nasapp export JOB (--trial N | --best K) -o DIR`: trials as ONNX models with their weights and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from nasapp.engine.errors import NasappError
from nasapp.store.records import Job


def export_command(store: Any, job: Job, trial: int | None, best: int | None, out_dir: Path,
                   console: Console) -> None:
    """Export one trial (``trial``) or the ``best`` K trials by reward (neither: the best one) into
    ``out_dir/trial-N/``.

    Prints one block per trial with its files and the ONNX Runtime check (PASS/FAIL). Raises NasappError
    after writing everything when a check failed, so scripts see a non-zero exit.
    """
    from nasapp.engine.results.export import best_trial_numbers, export_trials

    if trial is not None and best is not None:
        raise NasappError("give --trial N (one trial) or --best K (the K best by reward), not both")
    if trial is None and best is None:
        best = 1  # no selector: the best trial
    numbers = [trial] if trial is not None else best_trial_numbers(store, job, int(best))  # type: ignore[arg-type]
    _stage2_hint(store, job, console)
    results = export_trials(store, job, numbers, out_dir)
    for result in results:
        if result.check_kind != "onnx-vs-pytorch":
            weights = "the ONNX file its trainer saved"
        else:
            weights = "trained weights" if result.trained else "UNTRAINED weights"
        console.print(f"trial {result.trial} -> {result.folder} ({weights}): {', '.join(result.files)}",
                      markup=False, highlight=False)
        if result.note:
            console.print(f"  note: {result.note}", markup=False, highlight=False)
        console.print(f"  check: {result.check_name} {result.check_text}", markup=False, highlight=False)
    failed = [r for r in results if r.check_passed is False]
    if failed:
        listed = ", ".join(f"trial {r.trial} (max diff {r.max_abs_diff:.2e})" for r in failed)
        raise NasappError(f"the ONNX check failed for {listed}: ONNX Runtime's output differs from PyTorch's"
                          " (or between batch sizes); the files were written, but do not ship them without"
                          " checking (try another latency.opset)")


def _stage2_hint(store: Any, job: Job, console: Console) -> None:
    """A search with a stage 2: its fully trained models are the stage-2 job's trials; say how to export them."""
    from nasapp.engine.results.stage2 import stage2_runs

    runs = stage2_runs(store, job.id)
    if runs:
        console.print(f"job {job.id} has a stage 2 (job {runs[-1].id}): `nasapp export {runs[-1].id} --best K`"
                      " exports its models trained with full settings", markup=False, highlight=False)
