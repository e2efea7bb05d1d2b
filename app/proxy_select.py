"""`nasapp proxy select`: sample models, train them in rounds to growing fractions of full training (each round
continuing from the last one's checkpoints), drop those that add least to the spread after each round, and
train the ones left to full training (see :mod:`nasapp.engine.results.selection`).

The run is a tool run in the store (``nasapp-select`` settings and the ids of its round jobs); each round is an
ordinary job named ``<job>-select<RUN>-r<K>``: the first samples with ``random``, later ones retrain the
survivors with ``given`` and ``trainer.continue_from`` = the round before. `--resume RUN` finds the rounds
again (by state or by name, so a crash between creating a round and recording it loses nothing), follows an
unfinished one and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import json_document, plain
from nasapp.app.tool_runs import follow_to_end, resumed_tool_run, run_job
from nasapp.engine.errors import NasappError
from nasapp.engine.results.selection import (
    DENOMINATORS,
    first_round_failures,
    round_plan,
    round_summary,
    selection_summary,
    survivors,
)

KIND = "select"


def select_command(job_file: Path | None, begin: int, end: int, drop: int, full_steps: int | None,
                   resume: str | None, as_json: bool, store: Any, follow: Callable[[Any, int], None],
                   out: Console, progress: Console) -> None:
    if resume is not None:
        run_id = resumed_tool_run(store, resume, KIND, "proxy select")
    else:
        run_id = _created(store, job_file, begin, end, drop, full_steps)
    run = store.tool_run(run_id)
    if run.status == "running":
        _run_rounds(store, run_id, follow, progress)
    run = store.tool_run(run_id)
    summary = selection_summary(store, run, run.settings["metric"])
    if as_json:
        out.print(json_document(summary), markup=False)
    else:
        _print(out, summary)
    if run.status == "aborted":
        raise NasappError(f"proxy select run {run_id} stopped: {run.message}")


def _created(store: Any, job_file: Path | None, begin: int, end: int, drop: int, full_steps: int | None) -> int:
    from nasapp.engine.jobs.spec import load_job

    if job_file is None:
        raise NasappError("give the job file whose space to select models from, or --resume RUN")
    spec = load_job(job_file)
    full = full_steps or spec.trainer.schedule_steps or spec.trainer.steps
    if full < 1:
        raise NasappError(f"--full-steps {full}: give 1 or more")
    steps = round_plan(begin, end, drop, full)
    settings = {"job_file": str(Path(job_file).resolve()), "spec": spec.model_dump(mode="json"), "begin": begin,
                "end": end, "drop": drop, "full_steps": full, "steps": steps, "metric": spec.reward.metric}
    return int(store.create_tool_run(KIND, f"{spec.name}-select", settings))


def _run_rounds(store: Any, run_id: int, follow: Callable[[Any, int], None], progress: Console) -> None:
    run = store.tool_run(run_id)
    settings = run.settings
    steps, metric = settings["steps"], settings["metric"]
    jobs: list[int] = list(run.state.get("rounds", []))
    previous: dict[str, dict[str, Any]] | None = None
    for index, round_steps in enumerate(steps):
        if index < len(jobs):
            job_id = jobs[index]
        else:
            archs = _next_archs(previous, settings, index) if previous is not None else None
            if archs is not None and len(archs) < 2:
                store.update_tool_run(run_id, status="aborted", message=f"only {len(archs)} model(s) trained in"
                                      f" round {index}: too few to go on (see nasapp show {jobs[-1]})")
                return
            job_id = _round_job(store, run, index, archs, jobs[-1] if jobs else None)
            jobs.append(job_id)
            store.update_tool_run(run_id, state={"rounds": jobs})
        if store.job(job_id).status != "finished":
            share = f"1/{DENOMINATORS[index]}" if index < len(steps) - 1 else "full"
            progress.print(plain(f"proxy select run {run_id}, round {index + 1} of {len(steps)}: training"
                                 f" {store.job(job_id).max_trials} models to {round_steps} steps ({share}"
                                 f" training) as job {job_id}"))
            follow_to_end(store, job_id, follow)
        previous = round_summary(store, job_id, metric)
        if index == 0:
            why = first_round_failures(previous, settings["begin"])
            if why:
                store.update_tool_run(run_id, status="aborted", message=why)
                return
    store.update_tool_run(run_id, status="finished")


def _next_archs(previous: dict[str, dict[str, Any]], settings: dict[str, Any], index: int) -> list[Any]:
    """The architectures round ``index`` trains: those of the round before that succeeded, less the ``drop``
    that add least to the spread (never fewer than ``end``)."""
    kept, _ = survivors(previous, settings["end"], settings["drop"])
    return [previous[key]["arch"] for key in kept]


def _round_job(store: Any, run: Any, index: int, archs: list[Any] | None, continue_from: int | None) -> int:
    """Round ``index``'s job (made now, or found by its name after a crash right after making it)."""
    settings = run.settings
    trainer = {"steps": settings["steps"][index], "schedule_steps": settings["full_steps"], "checkpoint": True,
               "continue_from": continue_from}
    return run_job(store, settings["spec"], f"{settings['spec']['name']}-select{run.id}-r{index + 1}", archs,
                   settings["begin"], trainer, source=f"proxy select run {run.id}")


def _print(out: Console, s: dict[str, Any]) -> None:
    out.print(plain(f"proxy select run {s['run']} ({s['status']}): {s['begin']} models sampled, {len(s['selected'])}"
                    f" selected; full training = {s['full_steps']} steps"))
    steps = [r["steps"] for r in s["rounds"]]
    table = Table("model", *(f"{n} steps" for n in steps), "latency ms", box=None)
    table.add_column("status", no_wrap=True)
    for model in s["models"]:
        scores = [model["scores"].get(str(n)) for n in steps]
        table.add_row(str(model["model"]), *("-" if v is None else f"{v:.4f}" for v in scores),
                      "-" if model["latency_ms"] is None else f"{model['latency_ms']:.3f}",
                      model["status"].replace("dropped after round ", "dropped r").replace("in round ", "r"))
    out.print(table)
    out.print(plain("status: selected, or dropped after round K (dropped rK), or failed in round K (failed rK)"))
    for r in s["rounds"]:
        dropped = f"; dropped models {', '.join(map(str, r['dropped']))}" if r["dropped"] else ""
        out.print(plain(f"round {r['round']} (job {r['job']}, {r['steps']} steps = {r['fraction']} of full"
                        f" training): {r['trained']} trained, {r['failed']} failed{dropped}"))
    if s["message"]:
        out.print(plain(s["message"]))
    elif s["status"] == "finished":
        last = s["rounds"][-1]["job"]
        out.print(plain(f"the selected models' full-training scores are the trials of job {last}"
                        f" (nasapp show {last})"))
