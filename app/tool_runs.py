"""What the commands that run jobs of their own (`proxy variance`, `proxy select`, `proxy search`, `stage2`)
share: finding their run again, and making one of the jobs of a run made of several."""

from __future__ import annotations

import copy
from typing import Any

from nasapp.engine.errors import NasappError


def resumed_run(store: Any, ref: str, strategy: str, kind: str) -> int:
    """The id of the run ``ref`` (id or name), which must be a job of the tool's own ``strategy``."""
    job = store.find_job(ref)
    if job is None:
        raise NasappError(f"no run {ref!r} in {store.path}")
    if job.spec.get("strategy", {}).get("name") != strategy:
        raise NasappError(f"job {job.id} is not a {kind} run (its strategy is not {strategy})")
    return int(job.id)


def resumed_tool_run(store: Any, ref: str, kind: str, command: str) -> int:
    """The id of the tool run ``ref`` (a `tool_runs` id), which must be of ``kind``."""
    run = store.tool_run(int(ref)) if ref.isascii() and ref.isdigit() and int(ref) < 2**63 else None
    if run is None or run.kind != kind:
        raise NasappError(f"no {command} run {ref!r} in {store.path} (give the run id it printed)")
    return int(run.id)


def follow_to_end(store: Any, job_id: int, follow: Any) -> None:
    """Run the tool's job ``job_id`` to its end; a job that ended otherwise (its runner failed) stops the tool."""
    follow(store, job_id)
    job = store.job(job_id)
    if job.status != "finished":
        raise NasappError(f"job {job_id} ended {job.status}: {job.message or 'see nasapp show ' + str(job_id)};"
                          " fix it, then --resume the run")


def run_job(store: Any, base: dict[str, Any], name: str, archs: list[Any] | None, count: int,
            trainer: dict[str, Any], source: str, data_fraction: float | None = None) -> int:
    """A job of a tool run: ``base`` (a job spec) renamed, without early stopping, training ``archs`` in order
    (``given``) or ``count`` random samples (``archs`` None), with ``trainer`` keys set. A job of that
    name already there is the one made before a crash, and is returned instead."""
    from nasapp.engine.jobs.spec import parse_job
    from nasapp.engine.jobs.validation import create_job, validate_job

    found = store.find_job(name)
    if found is not None and found.name == name:
        return int(found.id)
    from nasapp.engine.jobs.baseline import without_baseline

    raw = without_baseline(copy.deepcopy(base))
    raw["name"] = name
    raw["strategy"] = {"name": "random"} if archs is None else {"name": "given", "archs": archs}
    raw["early_stopping"] = {"rule": "none"}
    raw["search"]["max_trials"] = count if archs is None else len(archs)
    raw["search"]["max_failure_rate"] = 1.0  # the tool judges failures, not the runner
    raw["trainer"].update(trainer)
    if data_fraction is not None:
        raw["data"]["data_fraction"] = data_fraction
    return int(create_job(store, validate_job(parse_job(raw, source=source))))
