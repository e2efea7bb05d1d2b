"""`nasapp stage2 JOB`: retrain a search's best models with full settings as a child job, then report how
well the search ranked them (see :mod:`nasapp.engine.results.stage2`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import fmt_number, json_document, plain
from nasapp.app.tool_runs import resumed_run
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.budget import extend_job
from nasapp.engine.results.stage2 import stage2_summary, stage2_table, top_archs
from nasapp.store.db import FINISHED

POLL_S = 1.0  # how often stage 2 --every looks at the search's progress


def stage2_command(parent_ref: str | None, top: int, steps: int | None, data_fraction: float | None,
                   scale: float | None, resume: str | None, as_json: bool, store: Any,
                   follow: Callable[[Any, int], None], out: Console, every: int | None = None,
                   progress: Console | None = None) -> None:
    from nasapp.engine.jobs.spec import job_spec

    if every is not None and every < 1:
        raise NasappError(f"--every {every}: give 1 or more finished trials")
    if resume is not None:
        child_id = resumed_run(store, resume, "given", "stage-2")
    else:
        if every is not None:
            _wait_for_trials(store, parent_ref, every, progress or out)
        child_id = _created(store, parent_ref, top, steps, data_fraction, scale)
    if every is not None:
        _alongside(store, child_id, every, follow, progress or out)
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
    from nasapp.engine.jobs.baseline import measured_baseline_ms

    raw = stage2_table(parent, [arch for _, arch, _ in best], steps, data_fraction, scale,
                       measured_baseline_ms(store, parent))
    return int(create_job(store, validate_job(parse_job(raw, source=f"stage 2 of job {parent.id}"))))


def _search_state(store: Any, parent_id: int) -> tuple[bool, int, int]:
    """(is the search still going, its finished trials, its succeeded trials)."""
    from nasapp.engine.jobs.liveness import effective_status

    counts = store.counts(parent_id)
    going = effective_status(store.job(parent_id)) in ("created", "running", "paused")
    return going, sum(counts[status] for status in FINISHED), counts["succeeded"]


def _wait_for_trials(store: Any, parent_ref: str | None, every: int, progress: Console) -> None:
    """Before the first pass: wait until the search finished ``every`` trials, one of them a success."""
    parent = store.find_job(parent_ref) if parent_ref is not None else None
    if parent is None:
        return  # _created says what is wrong
    progress.print(plain(f"stage 2 of job {parent.id}: waiting for {every} finished trials"))
    while True:
        going, finished, succeeded = _search_state(store, parent.id)
        if not going or (finished >= every and succeeded):
            return
        time.sleep(POLL_S)


def _alongside(store: Any, child_id: int, every: int, follow: Callable[[Any, int], None],
               progress: Console) -> None:
    """Stage 2 beside a running search: retrain what the stage-2 job holds, then, each time ``every`` more of
    the search's trials finished, the top models that are new since (appended to the stage-2 job), until the
    search no longer runs. The last pass comes after it ended, so its final top models are all retrained."""
    from nasapp.engine.jobs.spec import job_spec

    parent_id = store.job(child_id).spec["strategy"]["source_job"]
    direction = job_spec(store.job(parent_id)).reward.direction
    top = len(store.job(child_id).spec["strategy"]["archs"])
    done_at = _search_state(store, parent_id)[1]
    if store.job(child_id).status != "finished":
        follow(store, child_id)
    while True:
        going, finished, _ = _search_state(store, parent_id)
        if going and finished < done_at + every:
            time.sleep(POLL_S)
            continue
        done_at = finished
        new = _new_top(store, child_id, parent_id, top, direction)
        if new:
            progress.print(plain(f"stage 2 of job {parent_id}: {finished} trials finished; retraining"
                                 f" {len(new)} new top model(s) in job {child_id}"))
            extend_job(store, child_id, len(new), archs=new)
            follow(store, child_id)
        if not going:
            return


def _new_top(store: Any, child_id: int, parent_id: int, top: int, direction: str) -> list[Any]:
    """The search's top ``top`` distinct architectures that the stage-2 job does not hold yet."""
    held = {_key(arch) for arch in store.job(child_id).spec["strategy"]["archs"]}
    best = top_archs(store, store.job(parent_id), top, direction)
    return [arch for _, arch, _ in best if _key(arch) not in held]


def _key(arch: Any) -> str:
    return json.dumps(arch, sort_keys=True)


def _print(out: Console, s: dict[str, Any]) -> None:
    out.print(plain(f"stage 2 run {s['job']} of job {s['source_job']}: {len(s['models'])} models retrained"))
    table = Table("model", "search trial", "search reward", "stage-2 reward", "status", box=None)
    for i, row in enumerate(s["models"], start=1):
        table.add_row(str(i), str(row["search_trial"]), fmt_number(row["search_reward"]),
                      fmt_number(row["stage2_reward"]), row["status"])
    out.print(table)
    if s["kendall_tau"] is None:
        out.print(plain(f"rank correlation: none ({s['no_correlation_because']})"))
    else:
        out.print(plain(f"Kendall's tau between search and stage-2 rewards: {s['kendall_tau']:.3f}"
                        f" (p = {s['p_value']:.3g}, {s['compared']} models); near 1: the proxy ranked the best"
                        " models as full training does"))
