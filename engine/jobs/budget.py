"""Raising a job's budget: `nasapp resume --max-trials`, and the tools that add trials to a job of theirs."""

from __future__ import annotations

from typing import Any


def extend_job(store: Any, job_id: int, more: int, archs: list[Any] | None = None) -> None:
    """Raise the budget of job ``job_id`` by ``more`` trials (a finished job becomes resumable again); with
    ``archs``, append them to its ``given`` strategy's list. The strategy replays its history first, so
    appending keeps every earlier proposal."""
    job = store.job(job_id)
    spec = dict(job.spec)
    if archs is not None:
        spec["strategy"] = {**spec["strategy"], "archs": [*spec["strategy"]["archs"], *archs]}
    spec["search"] = {**spec["search"], "max_trials": spec["search"]["max_trials"] + more}
    status = "stopped" if job.status == "finished" else job.status
    store.update_job(job_id, spec=spec, max_trials=spec["search"]["max_trials"], status=status)
