"""`nasapp.run()`: start a job from Python (a notebook, a script) as `nasapp run` does, and get a JobHandle."""

from __future__ import annotations

import os
import time

from nasapp.engine.execution.launch import launch_detached, launch_dir
from nasapp.engine.jobs.start import JobSource, add_job, ready_to_run, run_spec
from nasapp.engine.results.handle import JobHandle, open_store
from nasapp.store import Store


def run(job: JobSource = None, *, wait: bool = True, db: str | os.PathLike[str] | None = None,
        max_trials: int | None = None, parallel: int | None = None, seed: int | None = None,
        env: dict[str, str] | None = None, progress: bool = True) -> JobHandle:
    """Validate and create a job, then run it.

    ``job``: a job file's path, the job file's tables as a dict (relative paths from the working directory),
    or None for the built-in demo. ``max_trials``, ``parallel`` and ``seed`` override it, as `nasapp run`'s
    options do; ``db`` is the store (the default store when None); ``env`` adds environment variables for the
    runner and its trial processes.

    ``wait=True`` runs the search in this process with a live progress line and returns when it ends (an
    interrupt stops it, resumable). ``wait=False`` starts the runner as a detached background process (it
    outlives the notebook cell and the kernel; ``handle.pid``, output in ``handle.log``) and returns at once.
    """
    spec = run_spec(job, max_trials=max_trials, parallel=parallel, seed=seed)
    checked = ready_to_run(spec)
    store = open_store(db, create=True)
    job_id = add_job(store, checked)
    if wait:
        run_here(store, job_id, env=env, progress=progress)
        return JobHandle(store, job_id)
    log = launch_dir(store) / f"job-{job_id}-{int(time.time())}.log"
    process = launch_detached(["resume", str(job_id), "--db", str(store.path)], log, env=env)
    return JobHandle(store, job_id, process=process, log=log)


def run_here(store: Store, job_id: int, env: dict[str, str] | None = None, progress: bool = True) -> str:
    """Run the job in this process until it ends; returns its status. The first interrupt stops it gracefully
    (the runner cancels its running trials); one that comes before the runner can do so leaves it stopped."""
    from nasapp.engine.execution.progress import LiveLine
    from nasapp.engine.execution.runner import Runner
    from nasapp.engine.jobs.control import leave_stopped

    runner = Runner(store, job_id, worker_env=env)
    runner.claim()
    line = LiveLine() if progress else None
    runner.on_progress = line
    try:
        try:
            return runner.run()
        finally:
            if line is not None:
                line.close()
    except KeyboardInterrupt:
        leave_stopped(store, job_id)
        raise
