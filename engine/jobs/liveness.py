"""Is a job's runner alive? One check used by `ls`, `show`, `stop`, `pause`, `resume`, the runner's lock and the
dashboard.

A runner holds its job's lock (the jobs row's runner_pid, runner_start_time, runner_token, runner_since and
heartbeat_at; taken in one transaction by `Store.claim_job`). It is alive while it holds the lock and the process
with that pid *and that start time* exists (a reused pid has another start time, a zombie is dead), or, where the
pid cannot be checked (no /proc), while its heartbeat is fresh. A runner killed with -9 leaves its lock behind;
this check sees it dead, and the next runner takes the lock over.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from nasapp.store.records import Job

HEARTBEAT_S = 5.0  # how often a runner refreshes its heartbeat (a cheap UPDATE from its loop)
STALE_AFTER_S = 30.0  # an older heartbeat is stale: its runner is taken for dead where its pid cannot be checked
_PROC = "/proc"


def process_start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot: field 22 of /proc/PID/stat); None when there is
    no such live process (gone, or a zombie) or no /proc to read it from."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as file:
            stat = file.read().decode("ascii", errors="replace")
    except OSError:
        return None
    # field 2 (the command name) is in parentheses and may hold spaces or ')': the fields after it follow the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):  # fields[0] is field 3, the state; fields[19] is field 22
        return None
    return int(fields[19])


def process_exists(pid: int, start_time: int | None) -> bool | None:
    """Does the process `pid` that started at `start_time` still run? None when that cannot be told (no /proc;
    the pid exists but its start time cannot be compared)."""
    if pid <= 0:
        return False
    if os.path.isdir(f"{_PROC}/self"):
        found = process_start_time(pid)
        if found is None:
            return False
        return start_time is None or found == start_time  # no recorded start time: a lock older than migration 2
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return None


def heartbeat_fresh(job: Job, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return job.heartbeat_at is not None and now - job.heartbeat_at <= STALE_AFTER_S


def runner_alive(job: Job | None, now: float | None = None) -> bool:
    """True while a runner holds the job's lock and runs: its process (pid and start time) exists, or, where the
    pid cannot be checked, its heartbeat is fresh."""
    if job is None or not job.runner_pid:
        return False
    exists = process_exists(job.runner_pid, job.runner_start_time)
    if exists is None:
        return heartbeat_fresh(job, now) or (job.heartbeat_at is None and job.runner_token is None)
    return exists


def effective_status(job: Job) -> str:
    """A job marked running whose runner is gone was interrupted (kill -9, power loss)."""
    if job.status in ("running", "paused") and not runner_alive(job):
        return "interrupted"
    return job.status


def elapsed_s(job: Job, now: float | None = None) -> float:
    """How long the job has run: up to now while its runner lives; an interrupted job's clock stopped at its
    runner's last heartbeat (its last sign of life), an ended job's at its end."""
    now = time.time() if now is None else now
    if not job.started_at:
        return 0.0
    status = effective_status(job)
    if status in ("running", "paused"):
        end = now
    elif status == "interrupted":
        end = job.heartbeat_at or job.updated_at or now
    else:
        end = job.finished_at or job.updated_at or now
    return max(0.0, end - job.started_at)


def holder_text(job: Job, now: float | None = None) -> str:
    """Who holds a job's lock, for one line: "runner pid 123 (since 14:02:11, last heartbeat 3 s ago)"."""
    now = time.time() if now is None else now
    parts = []
    if job.runner_since is not None:
        parts.append(f"since {datetime.fromtimestamp(job.runner_since).strftime('%Y-%m-%d %H:%M:%S')}")
    if job.heartbeat_at is not None:
        parts.append(f"last heartbeat {max(0.0, now - job.heartbeat_at):.0f} s ago")
    return f"runner pid {job.runner_pid}" + (f" ({', '.join(parts)})" if parts else "")
