"""What the commands that run a job of their own (`proxy variance`, `stage2`) share: finding their run again."""

from __future__ import annotations

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
