"""Typed records of the store's rows: what ``Store`` returns for jobs and trials.

JSON columns come back decoded (``spec``, ``space``, ``arch``, ``metrics``). The job's ``spec`` stays a plain
dict here (the store knows nothing of the engine); ``nasapp.engine.jobs.spec.job_spec(job)`` gives the typed spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    status: str
    spec: dict[str, Any]
    space: dict[str, Any]
    max_trials: int
    seed: int
    message: str | None
    runner_pid: int | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    # the runner lock (runner_pid is part of it): held while runner_pid is set; see engine/jobs/liveness.py
    runner_token: str | None = None  # unique to one runner; commands are addressed to it
    runner_start_time: int | None = None  # the holder's process start time (Linux: /proc/PID/stat field 22)
    runner_since: float | None = None  # when the holder claimed the lock (epoch seconds)
    heartbeat_at: float | None = None  # the holder's last heartbeat (epoch seconds)


@dataclass(frozen=True)
class Trial:
    """A trial row. ``arch`` is None in list views that leave the architecture out (``store.queries``)."""

    id: int
    job_id: int
    number: int
    status: str
    reason: str | None = None
    message: str | None = None
    reward: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    arch: Any = None
    fingerprint: str | None = None
    ask_seq: int | None = None
    tell_seq: int | None = None
    attempts: int = 0
    device: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def metric(self, name: str) -> Any:
        """``reward`` or one of the trial's metrics (None when missing)."""
        return self.reward if name == "reward" else self.metrics.get(name)


@dataclass(frozen=True)
class ToolRun:
    """A run of a tool made of several jobs (``kind`` "select": `nasapp proxy select`, one job per round)."""

    id: int
    kind: str
    name: str
    status: str  # "running" (also after a crash: resumable), "finished" or "aborted"
    settings: dict[str, Any]
    state: dict[str, Any]
    message: str | None
    created_at: float
    updated_at: float


JOB_COLUMNS = tuple(Job.__dataclass_fields__)
TOOL_RUN_COLUMNS = tuple(ToolRun.__dataclass_fields__)
TRIAL_COLUMNS = tuple(Trial.__dataclass_fields__)
