"""`search.parallel` is bounded by the machine, and a trial's timeout counts from its start (issue 9, defects 8
and 14)."""

from __future__ import annotations

import os
import time

import pytest
from helpers import FIXTURES, NO_TORCH, nasapp_cli, toy_job

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.local import LocalExecutor
from nasapp.engine.execution.pool import WORKERS_PER_CORE, Slot, WorkerPool
from nasapp.engine.jobs.spec import load_job
from nasapp.store import Store

pytestmark = pytest.mark.slow

SLOW_START = {"PYTHONPATH": str(FIXTURES / "slow_start")}  # its sitecustomize.py delays every worker's start


def limit() -> int:
    """The most workers a job with devices = "cpu" may ask for here."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return WORKERS_PER_CORE * cores


@pytest.mark.parametrize("where", ["job file", "--parallel"])
def test_a_parallel_beyond_the_machine_is_refused_with_one_line_and_no_worker(tmp_path, where):
    job = toy_job(tmp_path, parallel=100000 if where == "job file" else 1)
    override = ["--parallel", "100000"] if where == "--parallel" else []
    result = nasapp_cli("run", str(job), *override, "--db", str(tmp_path / "nasapp.db"), env=NO_TORCH, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "search.parallel" in lines[0] and "100000" in lines[0] and f"at most {limit()}" in lines[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("workers.log"))  # no worker was ever started
    assert not (tmp_path / "nasapp.db").exists()  # refused before the job was created


def test_parallel_up_to_the_limit_is_accepted_and_one_more_is_not(tmp_path):
    assert load_job(toy_job(tmp_path, parallel=limit())).search.parallel == limit()
    with pytest.raises(NasappError, match=rf"search.parallel = {limit() + 1}: at most {limit()} .*per CPU core"):
        load_job(toy_job(tmp_path, parallel=limit() + 1))


def test_the_trial_timeout_counts_from_the_trial_start_not_the_worker_start_up(tmp_path):
    """Workers take 8 s to start (as a slow `import torch` would); trials of a fast trainer with a 3 s timeout
    still succeed: the clock starts when the worker starts the trial."""
    job = toy_job(tmp_path, max_trials=2, parallel=1, extra="max_failure_rate = 1.0")
    job.write_text(job.read_text().replace("trial_timeout_s = 30", "trial_timeout_s = 3"))
    env = {**NO_TORCH, **SLOW_START, "NASAPP_TEST_SLOW_START_S": "8"}
    started = time.monotonic()
    result = nasapp_cli("run", str(job), "--db", str(tmp_path / "nasapp.db"), env=env, timeout=240)
    assert time.monotonic() - started > 8  # the workers' start really was slow
    trials = Store(tmp_path / "nasapp.db").trials(1)
    assert [(t.status, t.reason) for t in trials] == [("succeeded", None)] * 2, result.stdout + result.stderr
    assert result.returncode == 0


def test_a_worker_that_never_starts_its_trial_is_noticed(tmp_path):
    """Until its worker starts it a trial is not timed, but the pool gives up on a worker that does not start
    a trial within its start-up limit: the trial comes back as died, and the worker's processes are gone."""
    env = {**NO_TORCH, **SLOW_START, "NASAPP_TEST_SLOW_START_S": "600"}
    pool = WorkerPool([Slot(0, "cpu", threads=1)], tmp_path / "workers.log", env, start_limit_s=2)
    executor = LocalExecutor(pool)
    executor.start()
    try:
        worker = pool.workers[0]
        executor.submit({"trial_id": 5, "number": 0})
        assert executor.started_at() == {}  # sent, not started: not timed
        events: list[dict] = []
        deadline = time.monotonic() + 60
        while not events and time.monotonic() < deadline:
            events = executor.poll(0.2)
        assert events and events[0]["type"] == "died" and events[0]["trial"] == 5, events
        assert events[0]["reason"] == "crash" and "did not start" in events[0]["message"]
        assert worker.proc.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(worker.proc.pid, 0)  # its whole process group went with it
        replacement = pool.workers[0]
        assert replacement is not worker
    finally:
        executor.close()
    assert replacement.proc.poll() is not None  # close() ended the still-starting replacement
    with pytest.raises(ProcessLookupError):
        os.killpg(replacement.proc.pid, 0)
