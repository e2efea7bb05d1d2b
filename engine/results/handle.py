"""JobHandle: one job of a store as Python users see it (`nasapp.run`, `nasapp.attach`): its status, its trials
as typed records (or pandas DataFrames), the best and the Pareto front, a live wait, stop, and SVG plots."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.progress import LiveLine
from nasapp.engine.execution.runner import Progress
from nasapp.engine.jobs.liveness import effective_status, elapsed_s
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.results import svg_charts
from nasapp.engine.results.trial_records import TrialRecord, to_frame
from nasapp.store import Job, Store, StoreError
from nasapp.store.queries import finished_count, metrics_after

PENDING = ("created", "running", "paused")  # a job in these states has not ended
START_GRACE_S = 60.0  # how long a wait lets a created job go without a runner before it says so
LEARNING_CURVES_K = 5  # plot_learning_curves() without trials: the best few


def open_store(db: str | os.PathLike[str] | None, create: bool = False) -> Store:
    try:
        return Store(db, create=create)
    except StoreError as error:
        raise NasappError(str(error)) from None


def attach(job: int | str, db: str | os.PathLike[str] | None = None) -> JobHandle:
    """A handle on an existing job, by id or name (the newest of that name), in the store ``db`` (the default
    store when None)."""
    store = open_store(db)
    found = store.find_job(str(job))
    if found is None:
        raise NasappError(f"no job {job!r} in {store.path} (`nasapp ls` lists the jobs)")
    return JobHandle(store, found.id)


class JobHandle:
    """A job in a store. Every call reads the store afresh, so a handle follows a job that runs elsewhere."""

    def __init__(self, store: Store, job_id: int, process: subprocess.Popen | None = None,
                 log: Path | None = None) -> None:
        self.store = store
        self.id = job_id
        self.process = process  # the background runner nasapp.run(wait=False) started
        self.log = log  # its output
        self.name = self.job().name

    def __repr__(self) -> str:
        job = self.job()
        done = finished_count(self.store.counts(self.id))
        return f"<JobHandle job {self.id} {job.name!r}: {effective_status(job)}, {done}/{job.max_trials} trials>"

    # ---- state ------------------------------------------------------------------------------------------
    def job(self) -> Job:
        found = self.store.job(self.id)
        if found is None:
            raise NasappError(f"job {self.id} is no longer in {self.store.path}")
        return found

    @property
    def pid(self) -> int | None:
        """The runner's process id: the background process this handle started, else the job's runner."""
        return self.process.pid if self.process is not None else self.job().runner_pid

    def status(self) -> str:
        """created, running, paused, finished, stopped, failed, or interrupted (marked running, runner gone)."""
        self._reap()
        return effective_status(self.job())

    def progress(self) -> Progress:
        """Where the job is now, as the progress line shows it."""
        job = self.job()
        counts = self.store.counts(self.id)
        best = self.store.best_trials(self.id, 1, self._direction())
        return Progress(job_id=self.id, done=finished_count(counts), total=job.max_trials,
                        running=counts.get("running", 0), failed=counts.get("failed", 0),
                        best=best[0].reward if best else None, elapsed_s=elapsed_s(job),
                        status=effective_status(job))

    def summary(self, best_k: int = 1) -> dict[str, Any]:
        """What `nasapp show --json` prints (without its stage-2 list)."""
        from nasapp.engine.results.summary import summarize

        return summarize(self.store, self.job(), best_k=best_k)

    # ---- trials -----------------------------------------------------------------------------------------
    def trials(self, status: str | None = None, as_frame: bool = False) -> Any:
        """Every trial (or those in ``status``: succeeded, failed, pruned, ...) by number, as TrialRecords, or
        a pandas DataFrame with ``as_frame``."""
        return self._out([TrialRecord.of(t, self.store) for t in self.store.trials(self.id, status)], as_frame)

    def best(self, k: int = 1, as_frame: bool = False) -> Any:
        """The ``k`` best succeeded trials by reward, best first."""
        found = self.store.best_trials(self.id, k, self._direction())
        return self._out([TrialRecord.of(t, self.store) for t in found], as_frame)

    def pareto(self, x: str = "latency_ms", y: str = "accuracy", as_frame: bool = False) -> Any:
        """The trials no other trial beats on both ``x`` and ``y`` (directions from the names: latency, sizes
        and losses lower, the rest higher), by ``x`` ascending; a NasappError when no trial reported both."""
        from nasapp.engine.results.front import job_front

        front = job_front(self.store, self.job(), x, y).front
        return self._out([TrialRecord.of(t, self.store) for t in front], as_frame)

    def trials_frame(self, status: str | None = None) -> Any:
        return self.trials(status, as_frame=True)

    def _out(self, records: list[TrialRecord], as_frame: bool) -> Any:
        return to_frame(records) if as_frame else records

    def _direction(self) -> str:
        return job_spec(self.job()).reward.direction

    # ---- control ----------------------------------------------------------------------------------------
    def wait(self, progress: bool = True, timeout: float | None = None, poll_s: float = 0.5) -> str:
        """Block until the job ends and return its status, showing a live progress line (trials done, best
        reward, ETA) unless ``progress`` is False. A TimeoutError after ``timeout`` seconds leaves the job
        running; so does interrupting the wait."""
        line = LiveLine() if progress else None
        started = time.monotonic()
        try:
            while True:
                status = self.status()
                if line is not None:
                    line(self.progress())
                if status not in PENDING:
                    return status
                if status == "created":
                    self._check_started(time.monotonic() - started)
                if timeout is not None and time.monotonic() - started > timeout:
                    raise TimeoutError(f"job {self.id} is still {status} after {timeout:g} s")
                time.sleep(poll_s)
        finally:
            if line is not None:
                line.close()

    def stop(self) -> str:
        """Ask the job's runner to stop (as `nasapp stop`); returns the job's status after."""
        from nasapp.engine.jobs.control import stop_job

        _, status = stop_job(self.store, self.job())
        self._reap()
        return status

    def _reap(self) -> None:
        if self.process is not None:
            self.process.poll()  # an ended runner is not left a zombie

    def _check_started(self, waited_s: float) -> None:
        """A job still "created": its runner is starting, or it never will."""
        if self.process is not None and self.process.poll() is not None:
            from nasapp.engine.execution.launch import tail_lines

            raise NasappError(f"the runner of job {self.id} ended (code {self.process.returncode}) before it"
                              f" started the job: {' | '.join(tail_lines(self.log, 5)) if self.log else '(no output)'}")
        if self.process is None and waited_s > START_GRACE_S:
            raise NasappError(f"job {self.id} has not started: no runner took it in {START_GRACE_S:g} s"
                              f" (`nasapp resume {self.id}` runs it)")

    # ---- plots ------------------------------------------------------------------------------------------
    def plot_curve(self) -> svg_charts.SvgChart:
        """Each succeeded trial's reward by trial number, with the best so far."""
        points = [(t.number, t.reward) for t in self.store.trials(self.id, "succeeded") if t.reward is not None]
        return svg_charts.search_curve(points, self._direction(), title=f"job {self.id} {self.name}: search curve")

    def plot_pareto(self, x: str = "latency_ms", y: str = "accuracy") -> svg_charts.SvgChart:
        """Every succeeded trial over ``x`` and ``y``, the Pareto front highlighted."""
        from nasapp.engine.results.front import job_front

        found = job_front(self.store, self.job(), x, y)

        points = [(p.x, p.y) for p in found.points]
        front = [(t.metric(x), t.metric(y)) for t in found.front]
        return svg_charts.pareto_scatter(points, front, x, y, found.x_dir,
                                         title=f"job {self.id} {self.name}: {y} against {x}")

    def plot_learning_curves(self, trials: list[int] | None = None, metric: str | None = None) -> svg_charts.SvgChart:
        """The reports by step of the trials numbered ``trials`` (the best few when None), one line each, of
        ``metric`` (the reward's metric when None)."""
        metric = metric or job_spec(self.job()).reward.metric
        numbers = trials if trials is not None else [t.number for t in self.best(LEARNING_CURVES_K)]
        series = {}
        for number in numbers:
            trial = self.store.trial_by_number(self.id, number)
            if trial is None:
                raise NasappError(f"job {self.id} has no trial {number}")
            reports = metrics_after(self.store, trial.id)
            series[f"trial {number}"] = [(r["step"], r["values"][metric]) for r in reports if metric in r["values"]]
        return svg_charts.learning_curves(series, y_label=metric,
                                          title=f"job {self.id} {self.name}: {metric} by step")
