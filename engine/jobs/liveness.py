"""Is a job's runner alive? One check used by `ls`, `show`, `stop`, `resume` and the dashboard."""

from __future__ import annotations

import os

from nasapp.store.records import Job


def runner_alive(job: Job) -> bool:
    pid = job.runner_pid
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(job: Job) -> str:
    """A job marked running whose runner is gone was interrupted (kill -9, power loss)."""
    if job.status in ("running", "paused") and not runner_alive(job):
        return "interrupted"
    return job.status
