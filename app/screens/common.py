"""What the dashboard's screens share: job summaries read cheaply from the store, and job control through the
commands table (a resume starts a detached runner: engine/execution/launch.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasapp.app.formatting import fmt_number
from nasapp.app.progress import eta_seconds, format_duration
from nasapp.engine.execution.launch import launch_detached, launch_dir
from nasapp.engine.jobs.liveness import effective_status, elapsed_s, runner_alive
from nasapp.engine.jobs.spec import JobSpec, job_spec
from nasapp.engine.results.summary import shown_wait
from nasapp.store.queries import empty_stats, finished_count
from nasapp.store.records import Job

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

STATUS_TONES = {
    "running": "active", "paused": "active", "queued": "muted", "created": "muted", "cancelled": "muted",
    "pruned": "muted", "succeeded": "good", "finished": "good", "failed": "bad", "interrupted": "bad",
    "stopped": "muted",
}


def fmt_metric(value: Any) -> str:
    """Any metric: four significant digits, integers as integers."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value != value:
        return "nan"
    if float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3g}"


@dataclass
class JobLine:
    """One job as the jobs screen and the job screen's header show it."""

    id: int
    name: str
    status: str
    done: int
    total: int
    running: int
    failed: int
    best: float | None
    elapsed_s: float
    eta_s: float | None
    message: str | None
    pruned: int = 0  # stopped early by the job's early-stopping rule
    waiting: str | None = None  # why slots are idle: "cpu cores 0–1 leased by job 7" (device leases)

    def cells(self) -> tuple[str, ...]:
        status = "waiting" if self.waiting else self.status
        return (str(self.id), self.name, status, f"{self.done}/{self.total}", str(self.running),
                str(self.failed), fmt_number(self.best), format_duration(self.elapsed_s),
                format_duration(self.eta_s) if self.eta_s is not None else "-")


def job_line(job: Job, stats: dict[str, Any] | None, now: float | None = None,
             wait: tuple[str, str | None] | None = None) -> JobLine:
    """A job's figures from its row, its trial stats (queries.job_stats) and its lease wait (store/leases.py:
    waiting_notes): no further query."""
    now = time.time() if now is None else now
    stats = stats or empty_stats()
    counts = stats["counts"]
    best = stats["best_max"] if job_spec(job).reward.direction == "max" else stats["best_min"]
    status = effective_status(job)
    elapsed = elapsed_s(job, now)
    done = finished_count(counts)
    eta = eta_seconds(done, job.max_trials, elapsed) if status == "running" else None
    return JobLine(id=job.id, name=job.name, status=status, done=done, total=job.max_trials,
                   running=counts.get("running", 0), failed=counts.get("failed", 0), best=best,
                   elapsed_s=elapsed, eta_s=eta, message=job.message, pruned=counts.get("pruned", 0),
                   waiting=shown_wait(job, wait))


# ---- job control -----------------------------------------------------------------------------------

def not_running(app: NasApp, job_id: int) -> str | None:
    """Why `s` (stop) has nothing to stop: "job 3 is not running (finished)"; None while a runner lives."""
    job = app.store.job(job_id)
    if job is None:
        return f"no job {job_id}"
    return None if runner_alive(job) else f"job {job_id} is not running ({effective_status(job)})"


def control_job(app: NasApp, job_id: int, command: str) -> tuple[bool, str]:
    """Pause, resume or stop a job. Returns (done, message for the user).

    pause and stop go to a live runner through the commands table. resume unpauses a live runner, or
    starts a detached `nasapp resume` when the job's runner is gone (stopped, interrupted, failed).
    """
    store = app.store
    job = store.job(job_id)
    if job is None:
        return False, f"no job {job_id}"
    status = effective_status(job)
    alive = runner_alive(job)
    if command in ("pause", "stop"):
        if not alive:
            return False, f"job {job_id} is not running ({status})"
        if command == "pause" and job.status == "paused":
            return False, f"job {job_id} is already paused"
        store.add_command(job_id, command, runner_token=job.runner_token)  # for this runner only
        return True, f"job {job_id}: {command} requested"
    if command == "resume":
        if alive:
            if job.status != "paused":
                return False, f"job {job_id} is already running"
            store.add_command(job_id, "resume", runner_token=job.runner_token)
            return True, f"job {job_id}: resume requested"
        if job.status == "finished":
            return False, f"job {job_id} already finished its {job.max_trials} trials"
        log = launch_dir(store) / f"resume-job-{job_id}-{int(time.time())}.log"
        process = launch_detached(["resume", str(job_id), "--db", str(store.path)], log)
        app.watch_launch(process, log, f"resume of job {job_id}")
        return True, f"job {job_id}: resuming in a new runner (pid {process.pid}; output in {log})"
    return False, f"unknown command {command}"


def space_summary(job: Job) -> str:
    """The job's space and its size: "mnasnet (1.34e+19 architectures)", "mlp (12,288 discrete combinations × 2
    continuous dimensions)" (Space.size_text); a file space by its file name."""
    name = job_spec(job).space.label
    module, sep, attr = name.rpartition(":")
    if sep and module.endswith(".py"):
        name = f"{Path(module).name}:{attr}"
    try:
        from nasapp.engine.spaces import Space

        size_text = Space.from_json(job.space).size_text()
    except Exception:  # noqa: BLE001 - a summary line must never fail the screen
        size_text = "size unknown"
    return f"{name} ({size_text})"


def reward_summary(spec: JobSpec) -> str:
    """What the reward is: "max accuracy", with its latency target, or the formula."""
    reward = spec.reward
    if reward.formula:
        return f"{reward.direction} {reward.formula}"
    text = f"{reward.direction} {reward.metric}"
    target = reward.latency_target_ms
    if target:
        shown = target if isinstance(target, str) else f"{target:g} ms"
        text += f", latency target {shown} ({reward.constraint})"
    return text
