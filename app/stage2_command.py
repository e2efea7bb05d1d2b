"""`nasapp stage2 JOB`: retrain a search's best models with full settings as a child job, then report how
well the search ranked them (see :mod:`nasapp.engine.results.stage2`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import json_document, plain
from nasapp.app.tool_runs import resumed_run
from nasapp.engine.errors import NasappError
from nasapp.engine.results.stage2 import stage2_summary, stage2_table, top_archs


def stage2_command(parent_ref: str | None, top: int, steps: int | None, data_fraction: float | None,
                   scale: float | None, resume: str | None, as_json: bool, store: Any,
                   follow: Callable[[Any, int], None], out: Console) -> None:
    from nasapp.engine.jobs.spec import job_spec

    child_id = resumed_run(store, resume, "given", "stage-2") if resume is not None else _created(
        store, parent_ref, top, steps, data_fraction, scale)
    if store.job(child_id).status != "finished":
        follow(store, child_id)
    child = store.job(child_id)
    summary = stage2_summary(store, child, job_spec(child).reward.direction)
    if as_json:
        out.print(json_document(summary), markup=False)
    else:
        _print(out, summary)


def _created(store: Any, parent_ref: str | None, top: int, steps: int | None, data_fraction: float | None,
             scale: float | None) -> int:
    from nasapp.engine.jobs.spec import job_spec, parse_job
    from nasapp.engine.jobs.validation import create_job, validate_job

    if parent_ref is None:
        raise NasappError("give the search job (id or name) whose best models to retrain, or --resume RUN")
    if top < 1:
        raise NasappError(f"--top {top}: give 1 or more")
    if data_fraction is not None and not 0 < data_fraction <= 1:
        raise NasappError(f"--data-fraction {data_fraction}: give a share in (0, 1]")
    if scale is not None and scale <= 0:
        raise NasappError(f"--scale {scale}: give a positive multiplier (1 = the full model)")
    parent = store.find_job(parent_ref)
    if parent is None:
        raise NasappError(f"no job {parent_ref!r} in {store.path}")
    best = top_archs(store, parent, top, job_spec(parent).reward.direction)
    raw = stage2_table(parent, [arch for _, arch, _ in best], steps, data_fraction, scale)
    return int(create_job(store, validate_job(parse_job(raw, source=f"stage 2 of job {parent.id}"))))


def _print(out: Console, s: dict[str, Any]) -> None:
    out.print(plain(f"stage 2 run {s['job']} of job {s['source_job']}: {len(s['models'])} models retrained"))
    table = Table("model", "search trial", "search reward", "stage-2 reward", "status", box=None)
    for i, row in enumerate(s["models"], start=1):
        table.add_row(str(i), str(row["search_trial"]), _number(row["search_reward"]),
                      _number(row["stage2_reward"]), row["status"])
    out.print(table)
    if s["kendall_tau"] is None:
        out.print(plain(f"rank correlation: none ({s['no_correlation_because']})"))
    else:
        out.print(plain(f"Kendall's tau between search and stage-2 rewards: {s['kendall_tau']:.3f}"
                        f" (p = {s['p_value']:.3g}, {s['compared']} models); near 1: the proxy ranked the best"
                        " models as full training does"))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
