"""End-to-end runs through the real runner, worker subprocesses and a real SQLite file."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store, Trial

pytestmark = pytest.mark.slow  # every test here runs a real search with worker processes


def run_job(tmp_path: Path, job_file: Path) -> tuple[Store, int, str]:
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job_file))
    status = Runner(store, job_id, worker_env=NO_TORCH).run()
    return store, job_id, status


def test_a_search_runs_to_max_trials_and_stores_everything(tmp_path):
    store, job_id, status = run_job(tmp_path, toy_job(tmp_path, max_trials=6))
    assert status == "finished"
    trials = store.trials(job_id)
    assert [t.number for t in trials] == list(range(6))
    assert all(t.status == "succeeded" for t in trials)
    assert len({t.fingerprint for t in trials}) == 6  # random search: no duplicates
    for t in trials:
        assert t.reward == t.metrics["accuracy"]
        assert [m["step"] for m in store.metrics(t.id)] == [1, 2, 3]  # intermediate reports streamed
        log = store.trial_dir(job_id, t.number) / "trial.log"
        assert "trained" in log.read_text()  # the trainer's stdout went to the trial's log
    assert store.job(job_id).status == "finished"


def test_workers_are_persistent_and_run_many_trials(tmp_path):
    store, job_id, _ = run_job(tmp_path, toy_job(tmp_path, max_trials=8, parallel=2))
    devices = {t.device for t in store.trials(job_id)}
    assert devices == {"cpu0", "cpu1"}
    log = (store.runs_dir / f"job-{job_id}" / "workers.log").read_text()
    assert "Traceback" not in log


def test_a_segfault_or_os_exit_fails_only_that_trial(tmp_path):
    job = toy_job(tmp_path, trainer="crashy", space="small_space", max_trials=8, parallel=2,
                  extra="max_failure_rate = 0.5")
    store, job_id, status = run_job(tmp_path, job)
    assert status == "finished"
    by_x = {t.arch["x"]: t for t in store.trials(job_id)}
    assert by_x[3].status == "failed" and by_x[3].reason == "crash"
    assert "SIGSEGV" in by_x[3].message
    assert by_x[5].status == "failed" and by_x[5].reason == "crash"
    assert "code 7" in by_x[5].message
    counts = store.counts(job_id)
    assert counts["succeeded"] == 6 and counts["failed"] == 2


def test_trial_timeout_fails_the_trial_with_reason_timeout(tmp_path):
    job = toy_job(tmp_path, trainer="sleeper", max_trials=1, parallel=1)
    job.write_text(job.read_text().replace("trial_timeout_s = 30", "trial_timeout_s = 1.5"))
    store, job_id, status = run_job(tmp_path, job)
    (trial,) = store.trials(job_id)
    assert trial.status == "failed" and trial.reason == "timeout"


def test_failure_policy_stops_the_job_and_points_to_a_log(tmp_path):
    store, job_id, status = run_job(tmp_path, toy_job(tmp_path, trainer="always_fails", max_trials=30))
    assert status == "failed"
    job = store.job(job_id)
    assert "max_failure_rate" in job.message and "trial.log" in job.message
    counts = store.counts(job_id)
    assert 10 <= counts["failed"] < 30
    failed = store.trials(job_id, "failed")[0]
    assert failed.reason == "error" and "ValueError: broken trainer" in failed.message
    assert "Traceback" in (store.trial_dir(job_id, failed.number) / "trial.log").read_text()


def test_known_failure_reasons_are_kept(tmp_path):
    store, job_id, _ = run_job(tmp_path, toy_job(tmp_path, trainer="nan_trainer", max_trials=2,
                                                 extra="max_failure_rate = 1.0"))
    assert {(t.reason, t.status) for t in store.trials(job_id)} == {("nan", "failed")}


def test_command_trainer_end_to_end(tmp_path):
    job = toy_job(tmp_path, max_trials=8, extra="max_failure_rate = 1.0")
    text = job.read_text().replace(
        f'ref = "{FIXTURES / "toy.py"}:train"',
        f'command = ["{sys.executable}", "{FIXTURES / "command_trainer.py"}"]',
    )
    job.write_text(text)
    store, job_id, status = run_job(tmp_path, job)
    assert status == "finished"
    for t in store.trials(job_id):
        if t.arch["x"] == 4:
            assert t.status == "failed" and "code 3" in t.message and "refusing" in t.message
        else:
            assert t.status == "succeeded"
            assert t.metrics["params"] == t.arch["x"]
            assert [m["step"] for m in store.metrics(t.id)] == [1, 2]


def _finished(store: Store, job_id: int) -> list[Trial]:
    return [t for t in store.trials(job_id) if t.status in ("succeeded", "failed")]


def _held(store: Store, free: int, running: int):
    """The job, once `free` trials have finished and `running` more are running (held at the gate)."""
    jobs = store.jobs()
    if not jobs:
        return None
    job_id = jobs[0].id
    if len(_finished(store, job_id)) >= free and len(store.trials(job_id, "running")) == running:
        return jobs[0]
    return None


def test_kill_9_then_resume_ends_with_exactly_max_trials(tmp_path):
    gate = tmp_path / "gate"  # trials 5 and on wait for this file: the search cannot end before the kill
    job = toy_job(tmp_path, trainer="gated", max_trials=16, parallel=2, strategy="evolution",
                  options=f'free = 5, gate = "{gate}"')
    db = tmp_path / "kill.db"
    proc = start_nasapp("run", str(job), "--db", str(db), log=tmp_path / "run.log", env=NO_TORCH)
    try:
        store = Store(db)  # opened while the runner may still be creating the file
        job_id = wait_for(lambda: _held(store, 5, 2), "5 trials finished and 2 running", proc=proc,
                          log=tmp_path / "run.log").id
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    before = {t.number: (t.arch, t.metrics) for t in _finished(store, job_id)}
    assert len(before) == 5 and store.job(job_id).status == "running"  # as the killed runner left it
    assert nasapp_cli("ls", "--db", str(db)).stdout.count("interrupted") == 1

    gate.touch()
    nasapp_cli("resume", str(job_id), "--db", str(db), check=True, env=NO_TORCH)
    trials = store.trials(job_id)
    finished = _finished(store, job_id)
    assert len(finished) == 16 and len(trials) == 16
    assert sorted(t.number for t in trials) == list(range(16))
    for t in finished:  # nothing finished before the kill was lost or changed
        if t.number in before:
            assert (t.arch, t.metrics) == before[t.number]
    assert store.job(job_id).status == "finished"


def test_resume_replays_history_into_the_same_search(tmp_path):
    """With one worker the search is serial: an interrupted and resumed run proposes what a straight one does."""
    job = toy_job(tmp_path, max_trials=12, parallel=1, strategy="evolution")
    straight_store, straight_id, _ = run_job(tmp_path, job)
    straight = [t.arch for t in straight_store.trials(straight_id)]

    store = Store(tmp_path / "resumed.db")
    job_id = create_job(store, load_job(job, max_trials=5))
    Runner(store, job_id, worker_env=NO_TORCH).run()
    store.update_job(job_id, max_trials=12, spec={**store.job(job_id).spec,
                                                  "search": {**store.job(job_id).spec["search"],
                                                             "max_trials": 12}})
    Runner(store, job_id, worker_env=NO_TORCH).run()
    assert [t.arch for t in store.trials(job_id)] == straight


def test_ctrl_c_cancels_running_trials_and_resume_finishes_the_total(tmp_path):
    gate = tmp_path / "gate"  # trials 3 and on wait for this file: they are running when Ctrl-C comes
    job = toy_job(tmp_path, trainer="gated", max_trials=10, parallel=2, options=f'free = 3, gate = "{gate}"')
    db = tmp_path / "int.db"
    log = tmp_path / "run.log"
    proc = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    try:
        store = Store(db)
        job_id = wait_for(lambda: _held(store, 3, 2), "3 trials finished and 2 running", proc=proc, log=log).id
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, log.read_text()
    finally:
        stop_process(proc)
    assert store.job(job_id).status == "stopped"
    cancelled = store.trials(job_id, "cancelled")
    assert len(cancelled) == 2 and all(t.reason == "cancelled" for t in cancelled)
    assert not store.trials(job_id, "running")

    gate.touch()
    nasapp_cli("resume", str(job_id), "--db", str(db), check=True, env=NO_TORCH)
    assert len(_finished(store, job_id)) == 10 and len(store.trials(job_id)) == 10


def test_workers_keep_off_the_cores_reserved_for_latency(tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores")
    job = toy_job(tmp_path, trainer="affinity", max_trials=2,
                  extra='[latency]\ndevice = "cpu-ort"\npin_cores = [1]')
    store, job_id, _ = run_job(tmp_path, job)
    for t in store.trials(job_id):
        assert t.metrics["first_core"] != 1.0 and t.metrics["cores"] == len(os.sched_getaffinity(0)) - 1
