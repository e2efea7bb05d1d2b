"""Nothing a trial started outlives it (issue 9, defect 2).

The hostile trainers (tests/fixtures/hostile.py) fork children that ignore SIGTERM/SIGINT/SIGHUP, never exit and
keep the worker's descriptors open; each process appends "pid starttime pgid" to a file. After a trial timeout,
`nasapp stop`, Ctrl-C or a kill -9 of the runner, every recorded process and every process of their groups (the
worker's watchdog among them) must be gone.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, NO_TORCH, TOY, nasapp_cli, start_nasapp, stop_process, wait_for, write_job

from nasapp.store import Store

pytestmark = pytest.mark.slow  # real searches with worker processes

HOSTILE = FIXTURES / "hostile.py"
_spec = importlib.util.spec_from_file_location("hostile_fixture", HOSTILE)
assert _spec is not None and _spec.loader is not None
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

START_S = 120  # generous: workers start on a busy 2-core box
GONE_S = 10  # SIGKILL is delivered at once, but a process takes a moment to exit


def hostile_job(tmp_path: Path, pids: Path, *, command: bool, timeout_s: float = 600, max_trials: int = 1,
                parallel: int = 1, then: str = "hang") -> Path:
    trainer = (f'command = ["{sys.executable}", "{HOSTILE}", "command"]' if command
               else f'ref = "{HOSTILE}:forks_and_hangs"')
    return write_job(tmp_path, f"""
        name = "hostile"
        seed = 1
        [space]
        ref = "{TOY}:space"
        [trainer]
        {trainer}
        options = {{ pids = "{pids}", then = "{then}" }}
        [strategy]
        name = "random"
        [search]
        max_trials = {max_trials}
        parallel = {parallel}
        devices = "cpu"
        trial_timeout_s = {timeout_s}
        max_failure_rate = 1.0
    """)


def survivors(pids: Path) -> list[int]:
    """Recorded processes still running, and any other live process of their process groups."""
    alive = set(hostile.alive_pids(pids))
    groups = {int(pgid) for pgid in _recorded_groups(pids)}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = hostile._stat_fields(entry)
        except OSError:
            continue
        if int(fields[2]) in groups and fields[0] not in ("Z", "X") and int(entry) != os.getpid():
            alive.add(int(entry))
    return sorted(alive)


def _recorded_groups(pids: Path) -> set[str]:
    """The process groups the recorded processes were in (the pgid is the 3rd field of each line)."""
    try:
        lines = pids.read_text().splitlines()
    except FileNotFoundError:
        return set()
    groups = {line.split()[2] for line in lines if len(line.split()) > 2}
    return groups - {str(os.getpgid(0))}  # never this test's own group (a worker in pytest's group: old code)


def describe(pids: Path) -> str:
    rows = []
    for pid in survivors(pids):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "?"
        rows.append(f"{pid}: {cmd}")
    return "; ".join(rows)


def assert_all_gone(pids: Path) -> None:
    assert hostile.recorded(pids), "the trainer recorded no process"
    try:
        wait_for(lambda: not survivors(pids), "every process of the trial to be gone", timeout=GONE_S)
    except AssertionError:
        raise AssertionError(f"processes of the trial outlived it: {describe(pids)}") from None


def cleanup(proc, pids: Path) -> None:
    stop_process(proc)
    for pid in survivors(pids):  # by PID: whatever the code under test failed to end
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Trials:
    """The job's trials in a store the runner may still be creating."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.store: Store | None = None

    def __call__(self):
        if self.store is None:
            if not self.db.exists():
                return []
            self.store = Store(self.db)
        return self.store.trials(1)  # the first job of a new store


def run_to_end(tmp_path: Path, job: Path, pids: Path) -> tuple[int, list]:
    """`nasapp run` the job to its end (or fail after a deadline); returns its exit code and trials."""
    db, log = tmp_path / "nasapp.db", tmp_path / "run.log"
    proc = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    try:
        wait_for(lambda: proc.poll() is not None, "the search to end", timeout=START_S + 60)
        trials = Trials(db)()
        assert_all_gone(pids)
        return proc.returncode, trials
    finally:
        cleanup(proc, pids)


def test_a_command_trainer_and_its_child_die_on_the_trial_timeout(tmp_path):
    pids = tmp_path / "pids"
    code, trials = run_to_end(tmp_path, hostile_job(tmp_path, pids, command=True, timeout_s=3), pids)
    assert code in (0, 1)  # ended by itself (1: no trial succeeded)
    assert [(t.status, t.reason) for t in trials] == [("failed", "timeout")]
    assert len(hostile.recorded(pids)) == 2  # the command and its child both started


def test_the_timeout_holds_when_a_forked_child_keeps_the_message_pipe_open(tmp_path):
    pids = tmp_path / "pids"
    code, trials = run_to_end(tmp_path, hostile_job(tmp_path, pids, command=False, timeout_s=3), pids)
    assert code in (0, 1)  # ended by itself (1: no trial succeeded)
    assert [(t.status, t.reason) for t in trials] == [("failed", "timeout")]
    assert len(hostile.recorded(pids)) == 3  # the worker, its forked child, its subprocess


def test_a_worker_that_dies_is_noticed_although_its_child_keeps_the_pipe_open(tmp_path):
    pids = tmp_path / "pids"
    job = hostile_job(tmp_path, pids, command=False, timeout_s=600, then="crash")
    code, trials = run_to_end(tmp_path, job, pids)
    assert code in (0, 1)  # ended by itself (1: no trial succeeded)
    assert [(t.status, t.reason) for t in trials] == [("failed", "crash")]
    assert "code 9" in trials[0].message


@pytest.mark.parametrize(("event", "command"), [
    ("stop", True), ("ctrl-c", True), ("kill -9", True), ("stop", False), ("kill -9", False),
])
def test_no_trainer_process_outlives_the_runner(tmp_path, event, command):
    """Two trials run (two worker groups); then the search is stopped, interrupted or its runner killed."""
    pids, db, log = tmp_path / "pids", tmp_path / "nasapp.db", tmp_path / "run.log"
    job = hostile_job(tmp_path, pids, command=command, max_trials=2, parallel=2)
    proc = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    try:
        per_trial = 2 if command else 3
        wait_for(lambda: len(hostile.recorded(pids)) >= 2 * per_trial, "both trials' processes to start",
                 timeout=START_S, proc=proc, log=log)
        if event == "stop":
            nasapp_cli("stop", "1", "--db", str(db), check=True, timeout=60)
        elif event == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground process group
        else:
            os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: proc.poll() is not None, "the runner to end", timeout=60)
        if event != "kill -9":
            assert proc.returncode == 130, log.read_text()
            assert {t.status for t in Trials(db)()} == {"cancelled"}
        assert_all_gone(pids)
    finally:
        cleanup(proc, pids)
