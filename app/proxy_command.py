"""`nasapp proxy variance`: train copies of one model with the job's proxy settings and report how much the
score varies between them.

The copies are a job of their own in the store (named ``<job>-variance``, strategy ``copies``), so the run
has an id, shows in `ls`, `show` and the dashboard, and `--resume ID` continues it after a crash or Ctrl-C
without training again what finished. When the sampled model runs out of memory or diverges, ``copies``
samples another, and the run is extended until ``--copies`` copies of one model succeeded (at most
``MAX_RESAMPLES`` models).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import json_document, plain
from nasapp.app.tool_runs import resumed_run
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.budget import extend_job
from nasapp.engine.results.variance import proxy_settings, variance_summary

MAX_RESAMPLES = 5
DEFAULT_COPIES = 5


def variance_command(job_file: Path | None, copies: int | None, resume: str | None, max_cv: float,
                     as_json: bool, store: Any, follow: Callable[[Any, int], None], out: Console) -> None:
    if copies is not None and copies < 2:
        raise NasappError(f"--copies {copies}: give 2 or more (a variance needs two runs)")
    if resume is not None:
        job_id = resumed_run(store, resume, "copies", "proxy variance")
        copies = int(store.job(job_id).spec["strategy"].get("copies", 5))
    else:
        copies = copies or DEFAULT_COPIES
        job_id = _created(store, job_file, copies)
    spec = _spec(store, job_id)
    settings = proxy_settings(spec)
    for _ in range(MAX_RESAMPLES + 1):
        if store.job(job_id).status != "finished":
            follow(store, job_id)
        summary = variance_summary(store, job_id, spec.reward.metric, copies, max_cv, settings=settings)
        missing = copies - summary["succeeded"]
        if missing <= 0 or summary["resampled"] >= MAX_RESAMPLES:
            break
        extend_job(store, job_id, missing)  # room for the copies of the newly sampled model
    if as_json:
        out.print(json_document(summary), markup=False)
    else:
        _print(out, summary)


def _created(store: Any, job_file: Path | None, copies: int) -> int:
    from nasapp.engine.jobs.spec import load_job, parse_job
    from nasapp.engine.jobs.validation import create_job, validate_job

    if job_file is None:
        raise NasappError("give the job file whose proxy task to measure, or --resume RUN")
    spec = load_job(job_file)
    from nasapp.engine.jobs.baseline import without_baseline

    raw = without_baseline(spec.model_dump(mode="json"))
    raw["name"] = f"{spec.name}-variance"
    raw["strategy"] = {"name": "copies", "copies": copies}
    raw["early_stopping"] = {"rule": "none"}  # every copy trains to the end
    raw["search"]["max_trials"] = copies
    job_id = create_job(store, validate_job(parse_job(raw, source=str(job_file))))
    return int(job_id)


def _spec(store: Any, job_id: int) -> Any:
    from nasapp.engine.jobs.spec import job_spec

    return job_spec(store.job(job_id))


def _print(out: Console, s: dict[str, Any]) -> None:
    out.print(plain(f"proxy variance run {s['job']}: {s['succeeded']} copies of one model succeeded"
                    f" ({s['failed']} failed; {s['resampled']} model(s) resampled after OOM or NaN)"))
    table = Table("copy", s["metric"], box=None)
    for i, score in enumerate(s["scores"], start=1):
        table.add_row(str(i), f"{score:.4f}")
    out.print(table)
    if s["cv"] is not None:
        out.print(plain(f"mean {s['mean']:.4f}, std {s['std']:.4f}, coefficient of variation {s['cv']:.2%}"
                        f" (noisy above {s['max_cv']:.1%}); validation curves fall back by"
                        f" {s['curve_noise']:.2%} between evaluations on average"))
    for tip in s["advice"]:
        out.print(plain(f"advice: {tip}"))
    if not s["advice"]:
        out.print(plain("the proxy task is steady enough to rank models"))
