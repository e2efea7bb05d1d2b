"""Stopping a job from outside its runner: `nasapp stop`, `JobHandle.stop()`, and the clean-up after a run in
this process was interrupted (`nasapp run` and `nasapp.run(wait=True)` on Ctrl-C)."""

from __future__ import annotations

import os
import signal
import time

from nasapp.engine.jobs.liveness import runner_alive
from nasapp.store import Job, Store

STOP_WAIT_S = 10.0  # how long a stop waits for the runner to cancel its trials and let the job go


def stop_job(store: Store, job: Job, wait_s: float = STOP_WAIT_S) -> tuple[bool, str]:
    """Ask the job's live runner to stop and wait up to ``wait_s`` for it to go. Returns (whether a runner was
    running, the job's status after). A job marked running whose runner is gone is marked stopped."""
    if not runner_alive(job):
        if job.status in ("running", "paused"):  # only if no new runner took the job meanwhile
            store.release_job(job.id, job.runner_token, status="stopped", message="runner gone; marked stopped")
        return False, _status(store, job.id)
    store.add_command(job.id, "stop", runner_token=job.runner_token)  # for this runner only
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if not runner_alive(store.job(job.id)):
            break
    return True, _status(store, job.id)


def _status(store: Store, job_id: int) -> str:
    found = store.job(job_id)
    return found.status if found is not None else "deleted"


def leave_stopped(store: Store, job_id: int) -> None:
    """After an interrupted run in this process: a job still marked running by this process is marked stopped,
    its running trials cancelled (resume runs them again), unless another runner holds it now."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = store.job(job_id)
        if job is None or job.status not in ("running", "paused") or job.runner_pid not in (None, os.getpid()):
            return
        message = "stopped by the user (Ctrl-C); `nasapp resume` continues it"
        for trial in store.trials(job_id, "running"):
            store.finish_trial(trial.id, "cancelled", reason="cancelled", message=message)
        store.update_job(job_id, status="stopped", message=message, finished_at=time.time())
    finally:
        signal.signal(signal.SIGINT, previous)
