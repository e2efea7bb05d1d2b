"""kill -9 of the runner at seeded random points of the trial life cycle, each followed by `nasapp resume`, then
invariants checked in SQL: exactly max_trials finished, numbers 0..n-1 once each, nothing left running, and the
strategy proposed what an uninterrupted run with the same seed proposes. NASAPP_KILLS kills (default 8)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import NO_TORCH, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("NASAPP_KILLS", "8"))
SEED = 20240611  # the kill schedule's seed: the same points of the life cycle every run
FINISHED = ("succeeded", "failed", "pruned")


def kill_9(proc: subprocess.Popen) -> None:
    """kill -9 the runner itself, then its workers (its process group), and reap it."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stop_process(proc)


def sql(db: Path, query: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def finished(store: Store, job_id: int) -> int:
    return sum(1 for t in store.trials(job_id) if t.status in FINISHED)


PHASES = 4


def kill_at_a_point(rng: random.Random, phase: int, proc: subprocess.Popen, store: Store, job_id: int,
                    log: Path) -> str | None:
    """Wait for a point of the life cycle, then kill -9 the runner there. Returns where it died, or None when it
    finished the job first (nothing left to interrupt)."""
    started_at, started = time.time(), time.monotonic()
    done_before = finished(store, job_id)

    def mine() -> bool:  # this process holds the job's lock
        job = store.job(job_id)
        return job is not None and job.runner_pid == proc.pid

    def running() -> bool:  # and has started a trial
        return mine() and any((t.started_at or 0) > started_at for t in store.trials(job_id, "running"))

    if phase == 0:  # starting up: imports, opening the store, claiming the lock
        anchor, delay = started, rng.uniform(0.0, 0.6)
    elif phase == 1:  # just claimed: replaying the history, requeued trials waiting for a worker
        wait_for(lambda: proc.poll() is not None or mine(), "the claim", timeout=120)
        anchor, delay = time.monotonic(), rng.uniform(0.0, 0.03)
    elif phase == 2:  # a trial training (the toy trainer sleeps 0.1 s before each of its three reports)
        wait_for(lambda: proc.poll() is not None or running(), "a running trial", timeout=120)
        anchor, delay = time.monotonic(), rng.uniform(0.0, 0.3)
    else:  # a trial just finished: its tell, the next ask, the next dispatch
        wait_for(lambda: proc.poll() is not None or finished(store, job_id) > done_before, "a finished trial",
                 timeout=120)
        anchor, delay = time.monotonic(), rng.uniform(0.0, 0.05)
    wait_for(lambda: proc.poll() is not None or time.monotonic() >= anchor + delay, "the kill point",
             timeout=delay + 60)
    if proc.poll() is not None:
        assert proc.returncode == 0, log.read_text()
        return None
    kill_9(proc)
    if not mine():
        where = "before its claim"
    else:
        unfinished = [t for t in store.trials(job_id) if t.status not in FINISHED]
        mine_running = [t for t in unfinished if t.status == "running" and (t.started_at or 0) > started_at]
        where = (f"trial {mine_running[0].number} running" if mine_running else
                 f"trial {unfinished[0].number} {unfinished[0].status}, not started" if unfinished else
                 "between trials")
    return f"phase {phase} +{delay:.2f}s: {where} ({finished(store, job_id)} finished)"


def test_kill_9_at_random_points_then_resume_keeps_every_invariant(tmp_path):
    max_trials = KILLS + 6  # enough work that the kills land before the end
    job_file = toy_job(tmp_path, max_trials=max_trials, parallel=1, strategy="evolution", sleep=0.3)

    reference = Store(tmp_path / "reference.db")  # the same search, never interrupted
    reference_id = create_job(reference, load_job(job_file))
    assert Runner(reference, reference_id, worker_env=NO_TORCH).run() == "finished"
    expected = {t.number: (t.arch, t.reward) for t in reference.trials(reference_id)}

    db = tmp_path / "killed.db"
    rng = random.Random(SEED)
    log = tmp_path / "run-0.log"
    proc = start_nasapp("run", str(job_file), "--db", str(db), log=log, env=NO_TORCH)
    store = Store(db)
    kills: list[str] = []
    try:
        wait_for(lambda: store.jobs(), "the job row", timeout=120, proc=proc, log=log)
        job_id = store.jobs()[0].id
        for kill in range(KILLS):
            point = kill_at_a_point(rng, kill % PHASES, proc, store, job_id, log)
            if point is None:
                break
            kills.append(point)
            log = tmp_path / f"resume-{kill + 1}.log"
            proc = start_nasapp("resume", str(job_id), "--db", str(db), log=log, env=NO_TORCH)
        assert proc.wait(timeout=240) == 0, log.read_text()  # the last resume runs the job to its end
    finally:
        kill_9(proc)
    print(f"{len(kills)} kills:", *kills, sep="\n  ")
    assert len(kills) >= min(KILLS, 3), kills  # the schedule did interrupt the search

    rows = sql(db, "SELECT number, status, attempts FROM trials WHERE job_id = ? ORDER BY number", job_id)
    assert [number for number, _, _ in rows] == list(range(max_trials)), (rows, kills)  # none lost or doubled
    assert all(status in FINISHED for _, status, _ in rows), (rows, kills)  # nothing left running or queued
    assert sql(db, "SELECT COUNT(*) FROM trials WHERE job_id = ? AND status IN ('succeeded', 'failed', 'pruned')",
               job_id) == [(max_trials,)]
    tells = sql(db, "SELECT tell_seq FROM trials WHERE job_id = ?", job_id)
    assert len({t for (t,) in tells}) == max_trials  # one tell each
    assert sql(db, "SELECT status, runner_pid, runner_token FROM jobs WHERE id = ?", job_id) == [
        ("finished", None, None)]
    got = {t.number: (t.arch, t.reward) for t in store.trials(job_id)}
    assert got == expected, kills  # the same proposals, trial by trial, as the uninterrupted search
