"""One runner per job: two `resume`s at the same instant start one runner, a killed runner's lock is taken over,
`--force` takes a live one, a reused pid is not taken for the runner, and a command sent to a runner that died
never reaches the next one. Real processes and a real SQLite file; every process is ended by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import NASAPP, NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs import liveness
from nasapp.engine.jobs.liveness import STALE_AFTER_S, process_start_time, runner_alive
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store
from nasapp.store.records import Job

RACES = int(os.environ.get("NASAPP_RACES", "20"))

# `nasapp ARGS...` behind a barrier: imports everything a resume needs, says so by creating READY, waits for GO,
# then runs the real CLI entry point in this same process (its pid is the runner's). Two of these released by
# one GO file call the CLI within a millisecond or two of each other, however long each took to start.
BARRIER = """
import os, sys, time
from nasapp.app.cli import main
import nasapp.engine.execution.runner, nasapp.engine.results.summary, nasapp.app.progress  # noqa: F401
ready, go = sys.argv[1], sys.argv[2]
open(ready, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
sys.argv = ["nasapp", *sys.argv[3:]]
main()
"""


def start_behind_barrier(tmp_path: Path, name: str, go: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    ready, log = tmp_path / f"{name}.ready", tmp_path / f"{name}.log"
    ready.unlink(missing_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-P", "-c", BARRIER, str(ready), str(go), *args], stdout=out,
                                stderr=subprocess.STDOUT, text=True, env={**os.environ, **NO_TORCH},
                                start_new_session=True)
    return proc, ready, log


def gated_job(tmp_path: Path, gate: Path, *, max_trials: int = 4, parallel: int = 2, free: int = 0) -> Path:
    """Trials numbered `free` and on wait for the file `gate`: a runner holds them running until it appears."""
    return toy_job(tmp_path, trainer="gated", max_trials=max_trials, parallel=parallel,
                   options=f'free = {free}, gate = "{gate}"')


def held(store: Store, job_id: int, running: int) -> Job | None:
    """The job once its runner holds the lock and `running` trials are running."""
    job = store.job(job_id)
    if job is not None and job.runner_pid and len(store.trials(job_id, "running")) == running:
        return job
    return None


def started_by(store: Store, job_id: int, pid: int, attempts: dict[int, int], running: int = 2) -> Job | None:
    """The job once the runner `pid` holds its lock and has started `running` trials since `attempts` was taken."""
    job = store.job(job_id)
    trials = store.trials(job_id, "running")
    if (job is not None and job.runner_pid == pid and len(trials) == running
            and all(t.attempts > attempts.get(t.number, 0) for t in trials)):
        return job
    return None


def kill_9(proc: subprocess.Popen) -> None:
    """kill -9 the runner itself (as a user or the OOM killer would), then its workers, and reap it."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stop_process(proc)


def start_run(tmp_path: Path, job: Path, db: Path) -> tuple[subprocess.Popen, Store, int]:
    """`nasapp run JOB` in its own session; returns it, the store and the job's id once the job row exists."""
    log = tmp_path / "run.log"
    proc = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    store = Store(db)
    wait_for(lambda: store.jobs(), "the job row", timeout=120, proc=proc, log=log)
    return proc, store, store.jobs()[0].id


def finished_numbers(store: Store, job_id: int) -> list[int]:
    return sorted(t.number for t in store.trials(job_id) if t.status in ("succeeded", "failed", "pruned"))


# ---- the liveness check ----------------------------------------------------------------------------------

def fake_job(**lock) -> Job:
    now = time.time()
    return Job(id=1, name="x", status="running", spec={}, space={}, max_trials=1, seed=0, message=None,
               created_at=now, updated_at=now, started_at=now, finished_at=None,
               **{"runner_pid": None, **lock})


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_a_reused_pid_with_another_start_time_is_not_taken_for_the_runner():
    me, start = os.getpid(), process_start_time(os.getpid())
    assert start is not None and start > 0
    fresh = time.time()
    assert runner_alive(fake_job(runner_pid=me, runner_start_time=start, runner_token="t", heartbeat_at=fresh))
    # the same pid, but a process that started at another time: the runner that held it is gone, whatever its
    # heartbeat says
    assert not runner_alive(fake_job(runner_pid=me, runner_start_time=start + 1, runner_token="t",
                                     heartbeat_at=fresh))
    assert not runner_alive(fake_job(runner_pid=None))  # no lock: no runner


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_a_dead_or_zombie_runner_is_dead_and_a_lock_from_before_migration_2_still_counts():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = wait_for(lambda: process_start_time(child.pid), "the child's start time", timeout=30)
        lock = {"runner_pid": child.pid, "runner_start_time": start, "runner_token": "t", "heartbeat_at": time.time()}
        assert runner_alive(fake_job(**lock))
        os.kill(child.pid, signal.SIGKILL)
        # not reaped yet: a zombie, whose pid still exists, is a dead runner
        wait_for(lambda: process_start_time(child.pid) is None, "the child to be a zombie", timeout=30)
        assert os.path.exists(f"/proc/{child.pid}") and not runner_alive(fake_job(**lock))
    finally:
        stop_process(child)
    assert not runner_alive(fake_job(runner_pid=child.pid, runner_start_time=start, runner_token="t"))
    # a runner_pid written before the lock had start times (or by a tool that sets only it): the pid decides
    assert runner_alive(fake_job(runner_pid=os.getpid()))


def test_where_the_pid_cannot_be_checked_the_heartbeat_decides(monkeypatch):
    monkeypatch.setattr(liveness, "_PROC", "/nonexistent-proc")  # a system without /proc
    now = time.time()
    lock = {"runner_pid": os.getpid(), "runner_start_time": 123, "runner_token": "t"}
    assert runner_alive(fake_job(**lock, heartbeat_at=now - 1))
    assert not runner_alive(fake_job(**lock, heartbeat_at=now - STALE_AFTER_S - 1))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    assert not runner_alive(fake_job(**{**lock, "runner_pid": dead.pid}, heartbeat_at=now))  # gone is gone


# ---- the lock in the store ---------------------------------------------------------------------------------

def test_a_second_runner_is_refused_with_the_holder_named_a_dead_one_is_taken_over_and_force_takes_a_live_one(
        tmp_path):
    db = tmp_path / "lock.db"
    store, other = Store(db), Store(db)
    job_id = create_job(store, load_job(toy_job(tmp_path)))
    first = Runner(store, job_id)
    first.claim()
    job = store.job(job_id)
    assert (job.runner_pid, job.runner_token, job.runner_start_time) == (
        os.getpid(), first.token, process_start_time(os.getpid()))
    assert job.heartbeat_at and job.runner_since

    with pytest.raises(NasappError, match=rf"job {job_id} is already being run by runner pid {os.getpid()} "
                                          r"\(since .*, last heartbeat \d+ s ago\).*--force"):
        Runner(other, job_id).claim()
    assert store.job(job_id).runner_token == first.token  # untouched

    # the holder's pid now belongs to another process (another start time): the lock is stale, taken over
    store.update_job(job_id, runner_start_time=job.runner_start_time - 1)
    second = Runner(other, job_id)
    second.claim()
    assert store.job(job_id).runner_token == second.token != first.token
    assert "took over the job from runner pid" in store.db.execute(
        "SELECT message FROM events ORDER BY id DESC LIMIT 1").fetchone()[0]

    forced = Runner(store, job_id)
    forced.claim(force=True)  # the holder (this process) is alive: only --force takes it
    assert store.job(job_id).runner_token == forced.token
    assert not store.heartbeat(job_id, second.token) and store.heartbeat(job_id, forced.token)
    assert not store.release_job(job_id, second.token, status="failed")  # a runner that lost it writes nothing
    assert store.release_job(job_id, forced.token)
    job = store.job(job_id)
    assert job.status == "created" and (job.runner_pid, job.runner_token, job.heartbeat_at) == (None, None, None)


def test_commands_reach_only_the_runner_they_were_sent_to(tmp_path):
    store = Store(tmp_path / "commands.db")
    job_id = create_job(store, load_job(toy_job(tmp_path)))
    old = store.add_command(job_id, "stop", runner_token="dead-runner")
    mine = store.add_command(job_id, "pause", runner_token="me")
    stale = store.add_command(job_id, "resume", runner_token="me")
    store.db.execute("UPDATE commands SET created_at = created_at - 3600 WHERE id = ?", [stale])
    taken, expired = store.take_commands(job_id, "me", max_age_s=300)
    assert [c["id"] for c in taken] == [mine] and expired == 2
    assert store.pending_commands(job_id) == []  # the others are expired, not left to pile up
    assert store.db.execute("SELECT COUNT(*) FROM commands WHERE handled_at IS NULL").fetchone()[0] == 0
    assert old  # written, but never acted on


# ---- real processes ----------------------------------------------------------------------------------------

def race_once(tmp_path: Path, store: Store, job_id: int, race: int) -> None:
    """Two `nasapp resume` of the interrupted job, released by one barrier: exactly one runs and starts the held
    trial once; the other exits 2 naming it. Both are killed -9 at the end (the job is interrupted again)."""
    db = store.path
    attempts = {t.number: t.attempts for t in store.trials(job_id)}
    go = tmp_path / f"go-{race}"
    pair = [start_behind_barrier(tmp_path, f"resume-{race}-{side}", go, "resume", str(job_id), "--db", str(db))
            for side in "ab"]

    def ended() -> list[tuple[subprocess.Popen, Path, Path]]:
        return [x for x in pair if x[0].poll() is not None]

    def started_twice() -> bool:  # both runners started a trial: the defect itself, no need to wait longer
        return any(t.attempts > attempts.get(t.number, 0) + 1 for t in store.trials(job_id))

    try:
        for proc, ready, log in pair:
            wait_for(ready.exists, "the resume to reach the barrier", timeout=120, proc=proc, log=log)
        go.touch()
        wait_for(lambda: ended() or started_twice(), "one resume to be refused", timeout=60)
        assert len(ended()) == 1 and not started_twice(), (
            race, store.trials(job_id), [log.read_text() for _, _, log in pair])
        ((loser, _, loser_log),) = ended()
        ((winner, _, winner_log),) = [x for x in pair if x[0] is not loser]
        text = loser_log.read_text()
        assert loser.returncode == 2, text
        assert f"already being run by runner pid {winner.pid}" in text and "Traceback" not in text, text
        job = wait_for(lambda: started_by(store, job_id, winner.pid, attempts, running=1), "the winner's trial",
                       timeout=60, proc=winner, log=winner_log)
        assert job.status == "running"
        now = {t.number: t.attempts for t in store.trials(job_id)}
        for t in store.trials(job_id, "running"):  # started once, by this race's one runner
            assert now[t.number] == attempts.get(t.number, 0) + 1, (race, now, attempts)
    finally:
        for proc, _, _ in pair:
            kill_9(proc)


@pytest.mark.slow
def test_two_resumes_at_the_same_instant_start_exactly_one_runner(tmp_path):
    """NASAPP_RACES races (default 20), each on the job interrupted with a trial held running (its last runner
    killed -9): exactly one runner runs each time, the job is never marked failed, no trial runs twice."""
    gate, db = tmp_path / "gate", tmp_path / "race.db"
    proc, store, job_id = start_run(tmp_path, gated_job(tmp_path, gate, max_trials=3, parallel=1), db)
    try:
        wait_for(lambda: held(store, job_id, 1), "the first runner holding a trial", timeout=120, proc=proc,
                 log=tmp_path / "run.log")
    finally:
        kill_9(proc)
    for race in range(RACES):
        race_once(tmp_path, store, job_id, race)
    events = store.db.execute("SELECT level, message FROM events WHERE job_id = ?", [job_id]).fetchall()
    assert not [m for level, m in events if level == "error" or "job failed" in m], events
    assert store.job(job_id).status != "failed"

    gate.touch()  # the job still finishes, to exactly its budget
    nasapp_cli("resume", str(job_id), "--db", str(db), check=True, env=NO_TORCH)
    assert finished_numbers(store, job_id) == list(range(3)) and len(store.trials(job_id)) == 3
    assert store.job(job_id).status == "finished" and store.job(job_id).runner_pid is None


@pytest.mark.slow
def test_a_killed_runners_lock_is_taken_over_at_once_and_force_takes_a_live_ones(tmp_path):
    gate, db = tmp_path / "gate", tmp_path / "stale.db"
    proc, store, job_id = start_run(tmp_path, gated_job(tmp_path, gate), db)
    try:
        wait_for(lambda: held(store, job_id, 2), "the runner holding 2 trials", timeout=120, proc=proc,
                 log=tmp_path / "run.log")
    finally:
        kill_9(proc)
    assert store.job(job_id).runner_pid == proc.pid  # the kill left its lock behind; liveness sees it dead
    assert '"status": "interrupted"' in nasapp_cli("show", str(job_id), "--json", "--db", str(db)).stdout

    first = start_nasapp("resume", str(job_id), "--db", str(db), log=tmp_path / "first.log", env=NO_TORCH)
    second = None
    try:  # taken over without waiting for the dead runner's heartbeat to grow stale
        attempts = {t.number: t.attempts for t in store.trials(job_id)}
        wait_for(lambda: started_by(store, job_id, first.pid, attempts), "the resume running 2 trials",
                 timeout=STALE_AFTER_S, proc=first, log=tmp_path / "first.log")
        refused = nasapp_cli("resume", str(job_id), "--db", str(db), env=NO_TORCH)
        assert refused.returncode == 2 and f"already being run by runner pid {first.pid}" in refused.stderr
        assert "--force" in nasapp_cli("resume", "--help").stdout

        second = start_nasapp("resume", str(job_id), "--force", "--db", str(db), log=tmp_path / "second.log",
                              env=NO_TORCH)
        attempts = {t.number: t.attempts for t in store.trials(job_id)}
        wait_for(lambda: started_by(store, job_id, second.pid, attempts), "the forced resume running 2 trials",
                 timeout=60, proc=second, log=tmp_path / "second.log")
        # the first runner notices at its next heartbeat and stops without marking the job
        assert first.wait(timeout=60) == 2
        assert "another runner took this job over" in (tmp_path / "first.log").read_text()
        assert store.job(job_id).status == "running" and store.job(job_id).runner_pid == second.pid
        gate.touch()
        assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    assert finished_numbers(store, job_id) == list(range(4)) and len(store.trials(job_id)) == 4
    job = store.job(job_id)
    assert job.status == "finished" and job.runner_pid is None and job.runner_token is None


@pytest.mark.slow
def test_a_stop_sent_to_a_runner_that_died_does_not_stop_the_next_one(tmp_path):
    gate, db = tmp_path / "gate", tmp_path / "command.db"
    proc, store, job_id = start_run(tmp_path, gated_job(tmp_path, gate), db)
    stop = resumed = None
    try:
        wait_for(lambda: held(store, job_id, 2), "the runner holding 2 trials", timeout=120, proc=proc,
                 log=tmp_path / "run.log")
        os.kill(proc.pid, signal.SIGSTOP)  # frozen: alive, but it will not read the command before it is killed
        stop = subprocess.Popen([str(NASAPP), "stop", str(job_id), "--db", str(db)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: store.db.execute("SELECT COUNT(*) FROM commands").fetchone()[0], "the stop command",
                 timeout=60, proc=stop)
        kill_9(proc)
        stop.communicate(timeout=60)
        attempts = {t.number: t.attempts for t in store.trials(job_id)}
        resumed = start_nasapp("resume", str(job_id), "--db", str(db), log=tmp_path / "resume.log", env=NO_TORCH)
        # its loop reads the commands table before it starts trials: running trials prove it read past the stop
        wait_for(lambda: started_by(store, job_id, resumed.pid, attempts), "the resumed runner running 2 trials",
                 timeout=60, proc=resumed, log=tmp_path / "resume.log")
        assert not store.pending_commands(job_id)  # the stale stop was expired, not left for a later runner
        gate.touch()
        assert resumed.wait(timeout=120) == 0, (tmp_path / "resume.log").read_text()
    finally:
        kill_9(proc)
        for p in (stop, resumed):
            if p is not None:
                stop_process(p)
    assert store.job(job_id).status == "finished" and finished_numbers(store, job_id) == list(range(4))
