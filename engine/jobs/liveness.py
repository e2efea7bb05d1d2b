"""Is a job's runner alive? One check used by `ls`, `show`, `stop`, `resume` and the dashboard."""

from __future__ import annotations

import os
from typing import Any


def runner_alive(job: dict[str, Any]) -> bool:
    pid = job.get("runner_pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(job: dict[str, Any]) -> str:
    """A job marked running whose runner is gone was interrupted (kill -9, power loss)."""
    if job["status"] in ("running", "paused") and not runner_alive(job):
        return "interrupted"
    return job["status"]
