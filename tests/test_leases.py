"""Device leases across jobs (store/leases.py, engine/execution/leasing.py): take, release, reclaim after a death,
fractional shares, priority and fair share, pause, and two real runners on one store sharing 2 CPU slots."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.leasing import SlotLeases, claims_for, slot_units, units_text, waiting_note
from nasapp.engine.execution.pool import Slot
from nasapp.engine.jobs.liveness import process_start_time, runner_alive
from nasapp.engine.jobs.spec import parse_job
from nasapp.store import Store, leases
from nasapp.store.leases import Claim

CPU = [Claim(0, ("cpu:0",), 1.0), Claim(1, ("cpu:1",), 1.0)]


def live_job(store: Store, token: str, pid: int | None = None) -> int:
    """A job whose runner lock `token` holds; the runner is this process (alive) unless `pid` is given."""
    job_id = store.create_job(f"job-{token}", {}, {}, 10, 0)
    pid = os.getpid() if pid is None else pid
    claimed, _ = store.claim_job(job_id, pid=pid, start_time=process_start_time(pid), token=token,
                                 may_take=lambda holder: True)
    assert claimed
    return job_id


def take(store: Store, job_id: int, token: str, claims: list[Claim], priority: int = 0) -> leases.Taken:
    return leases.take(store, job_id, token, claims, priority, runner_alive)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "s.db")
    yield opened
    opened.close()


def test_a_slot_is_leased_once_until_released(store: Store) -> None:
    a, b = live_job(store, "a"), live_job(store, "b")
    assert take(store, a, "a", CPU).slot == 0
    assert take(store, a, "a", CPU[1:]).slot == 1
    refused = take(store, b, "b", CPU)
    assert refused.slot is None and refused.holders == {"cpu:0": [a], "cpu:1": [a]}
    assert waiting_note(refused) == f"cpu cores 0–1 leased by job {a}"
    assert leases.waiting_notes(store)[b][0] == "b"
    leases.release(store, "a", 0)
    assert take(store, b, "b", CPU).slot == 0  # b waited and holds nothing: it goes first
    assert b not in leases.waiting_notes(store)


def test_a_dead_runner_s_leases_are_reclaimed_on_the_next_take(store: Store) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = live_job(store, "dead", pid=int(gone.stdout))
    assert take(store, dead, "dead", CPU).slot == 0
    other = live_job(store, "other")
    assert take(store, other, "other", CPU[:1]).slot == 0
    assert [row[2] for row in leases.leases(store)] == [other]


def test_a_lock_taken_over_or_released_frees_the_old_token_s_leases(store: Store) -> None:
    job = live_job(store, "old")
    assert take(store, job, "old", CPU).slot == 0
    store.claim_job(job, pid=os.getpid(), start_time=None, token="new", may_take=lambda holder: True)  # --force
    other = live_job(store, "other")
    assert take(store, other, "other", CPU[:1]).slot == 0
    assert store.release_job(other, "other", status="stopped")
    assert leases.leases(store) == []


def test_fractional_shares_fit_several_trials_on_one_gpu(store: Store) -> None:
    a, b, c = live_job(store, "a"), live_job(store, "b"), live_job(store, "c")
    half = [Claim(0, ("cuda:0",), 0.5)]
    assert take(store, a, "a", half).slot == 0
    assert take(store, b, "b", half).slot == 0
    full = take(store, c, "c", [Claim(0, ("cuda:0",), 0.25)])
    assert full.slot is None and waiting_note(full) == f"GPU 0 leased by job {a}; GPU 0 leased by job {b}"
    leases.release(store, "b", 0)
    assert take(store, c, "c", [Claim(0, ("cuda:0",), 0.25)]).slot == 0
    assert take(store, b, "b", [Claim(0, ("cuda:0",), 0.25)]).slot == 0  # 0.5 + 0.25 + 0.25 fits
    assert take(store, b, "b", [Claim(1, ("cuda:0",), 0.01)]).slot is None


def test_a_higher_priority_takes_a_freed_slot_first(store: Store) -> None:
    holder, low, high = live_job(store, "h"), live_job(store, "low"), live_job(store, "high")
    assert take(store, holder, "h", CPU[:1]).slot == 0
    assert take(store, low, "low", CPU[:1]).slot is None  # low waits first
    assert take(store, high, "high", CPU[:1], priority=5).slot is None
    leases.release(store, "h", 0)
    gave_way = take(store, low, "low", CPU[:1])
    assert gave_way.slot is None and gave_way.ahead == [high]
    assert take(store, high, "high", CPU[:1], priority=5).slot == 0


def test_at_equal_priority_the_job_holding_fewer_slots_goes_first(store: Store) -> None:
    a, b = live_job(store, "a"), live_job(store, "b")
    assert take(store, a, "a", CPU).slot == 0 and take(store, a, "a", CPU[1:]).slot == 1
    assert take(store, b, "b", CPU).slot is None
    leases.release(store, "a", 1)
    assert take(store, a, "a", CPU[1:]).slot is None  # a holds 1, b holds 0: a gives way
    assert take(store, b, "b", CPU).slot == 1


class FakeExecutor:
    def __init__(self, slots: int) -> None:
        self.busy: set[int] = set()
        self.slots = slots

    def idle_slots(self) -> list[int]:
        return [i for i in range(self.slots) if i not in self.busy]

    def device_units(self) -> list[tuple[str, ...]]:
        return [(f"cpu:{i}",) for i in range(self.slots)]

    def submit(self, message: dict[str, Any], slot: int | None = None) -> str:
        raise AssertionError("not used")


def test_slot_leases_keep_max_devices_release_idle_slots_and_stop_waiting_when_paused(store: Store) -> None:
    a, b = live_job(store, "a"), live_job(store, "b")
    ex_a, ex_b = FakeExecutor(2), FakeExecutor(2)
    mine = SlotLeases(store, a, "a", ex_a, CPU, max_devices=1, priority=0)
    theirs = SlotLeases(store, b, "b", ex_b, CPU, max_devices=None, priority=0)
    assert mine.take() == 0
    ex_a.busy.add(0)
    assert mine.take() is None and not mine.waiting  # at max_devices: not a wait on others
    assert theirs.take() == 1
    ex_b.busy.add(1)
    theirs._last_try = 0.0
    assert theirs.take() is None and theirs.waiting
    assert "cpu core 0 leased by job" in leases.waiting_notes(store)[b][1]
    theirs.stop_waiting()  # paused: no longer holds anyone back
    assert b not in leases.waiting_notes(store)
    ex_a.busy.clear()
    mine.release_idle()  # a's trial ended
    assert mine.held == set() and [row[2] for row in leases.leases(store)] == [b]


def test_slot_units_split_cores_and_share_round_robin_slots() -> None:
    cpu = [Slot(i, "cpu", None, 2) for i in range(2)]
    assert slot_units(cpu, [0, 1, 2, 3]) == [("cpu:0", "cpu:1"), ("cpu:2", "cpu:3")]
    many = [Slot(i, "cpu", None, 1) for i in range(4)]
    assert slot_units(many, [0, 1]) == [("cpu:0",), ("cpu:1",), ("cpu:0",), ("cpu:1",)]
    assert [c.share for c in claims_for(slot_units(many, [0, 1]), 1.0)] == [0.5] * 4
    gpus = [Slot(i, "cuda", i % 2) for i in range(2)]
    assert [c.share for c in claims_for(slot_units(gpus, None), 0.5)] == [0.5, 0.5]
    assert units_text(["cuda:0", "cuda:1", "cuda:2", "cuda:3"]) == "GPUs 0–3"
    assert units_text(["cpu:4", "cpu:0", "cpu:1"]) == "cpu cores 0–1, 4"


@pytest.mark.parametrize(("search", "key"), [({"devices_per_trial": 0}, "search.devices_per_trial"),
                                             ({"devices_per_trial": 1.5}, "search.devices_per_trial"),
                                             ({"max_devices": 0}, "search.max_devices"),
                                             ({"priority": "high"}, "search.priority")])
def test_bad_lease_keys_are_refused_in_one_line(search: dict[str, Any], key: str) -> None:
    raw = {"name": "x", "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"}, "search": search}
    with pytest.raises(NasappError) as error:
        parse_job(raw)
    assert key in str(error.value) and "\n" not in str(error.value).strip()


# ---- two real runners on one store ----------------------------------------------------------------------

def running_count(db: Path) -> dict[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(conn.execute("SELECT job_id, COUNT(*) FROM trials WHERE status = 'running' GROUP BY job_id"))
    except sqlite3.OperationalError:  # the first runner is still creating the store
        return {}
    finally:
        conn.close()


class Sampler(threading.Thread):
    """Samples the trials running across jobs (a read-only connection) until stopped; keeps the maximum."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.db, self.most, self.samples, self.excluded = db, 0, 0, set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            counts = running_count(self.db)
            self.most = max(self.most, sum(n for job, n in counts.items() if job not in self.excluded))
            self.samples += 1
            time.sleep(0.01)


def trials_of(db: Path, job_id: int) -> list[tuple[int, str | None, float | None, float | None]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT number, device, started_at, finished_at FROM trials WHERE job_id = ?"
                            " ORDER BY number", (job_id,)).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_two_jobs_on_two_cpu_slots_share_them_and_a_killed_runner_frees_its_leases(tmp_path: Path) -> None:
    db, gate = tmp_path / "s.db", tmp_path / "gate"
    first = toy_job(tmp_path, trainer="held", max_trials=4, sleep=0.1, options=f'gate = "{gate}"')
    (tmp_path / "first.toml").write_text(first.read_text().replace('name = "toy"', 'name = "first"'))
    second = toy_job(tmp_path, max_trials=5, sleep=0.3)
    procs: list[subprocess.Popen] = []
    sampler = Sampler(db)
    try:
        a = start_nasapp("run", str(tmp_path / "first.toml"), "--db", str(db), log=tmp_path / "a.log", env=NO_TORCH)
        procs.append(a)
        wait_for(lambda: db.exists() and running_count(db).get(1) == 2, "job 1's two trials running", 60, proc=a,
                 log=tmp_path / "a.log")
        sampler.start()
        b = start_nasapp("run", str(second), "--db", str(db), log=tmp_path / "b.log", env=NO_TORCH)
        procs.append(b)
        wait_for(lambda: 2 in leases_waiting(db), "job 2 waiting for a lease", 60, proc=b, log=tmp_path / "b.log")
        listed = nasapp_cli("ls", "--db", str(db), env=NO_TORCH)
        assert "job 2 waiting: cpu cores" in listed.stdout and "leased by job 1" in listed.stdout, listed.stdout
        shown = nasapp_cli("show", "2", "--db", str(db), env=NO_TORCH)
        assert "waiting: cpu cores" in shown.stdout, shown.stdout
        assert running_count(db).get(2, 0) == 0

        Path(f"{gate}-0").touch()  # job 1's trial 0 ends: its lease goes to job 2, which holds none
        wait_for(lambda: running_count(db).get(2), "job 2's first trial running", 30, proc=b, log=tmp_path / "b.log")
        first_end = trials_of(db, 1)[0][3]
        second_start = min(t[2] for t in trials_of(db, 2) if t[2] is not None)
        assert first_end is not None and second_start >= first_end

        sampler.excluded.add(1)  # job 1's rows stay "running" after its runner dies (resume requeues them)
        killed_at = time.time()
        os.kill(a.pid, 9)
        a.wait(timeout=30)
        wait_for(lambda: b.poll() is not None, "job 2 to finish", 60)
        assert b.returncode == 0, (tmp_path / "b.log").read_text()
        devices_after = {t[1] for t in trials_of(db, 2) if t[2] is not None and t[2] > killed_at}
        assert devices_after == {"cpu0", "cpu1"}, trials_of(db, 2)  # the killed job's slot too
    finally:
        sampler.done.set()
        for proc in procs:
            stop_process(proc)
    sampler.join(timeout=5)
    assert sampler.samples > 10 and sampler.most == 2, (sampler.samples, sampler.most)  # 2 ran, never more


def leases_waiting(db: Path) -> set[int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {row[0] for row in conn.execute("SELECT job_id FROM lease_waits WHERE note IS NOT NULL")}
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


@pytest.mark.slow
def test_the_dashboard_and_show_say_why_a_job_waits(tmp_path: Path) -> None:
    import asyncio

    from nasapp.app.screens.job import JobScreen
    from nasapp.app.tui import NasApp
    from nasapp.app.widgets import VirtualTable
    from nasapp.engine.jobs.spec import load_job
    from nasapp.engine.jobs.validation import create_job
    from nasapp.engine.results.summary import summarize

    db = tmp_path / "s.db"
    store = Store(db)
    spec = load_job(toy_job(tmp_path))
    holder, waiter = create_job(store, spec), create_job(store, spec)
    for job_id in (holder, waiter):
        store.claim_job(job_id, pid=os.getpid(), start_time=process_start_time(os.getpid()), token=f"t{job_id}",
                        may_take=lambda held: True)
        store.update_job(job_id, status="running")
    assert take(store, holder, f"t{holder}", CPU).slot == 0 and take(store, holder, f"t{holder}", CPU).slot == 1
    SlotLeases(store, waiter, f"t{waiter}", FakeExecutor(2), CPU, max_devices=None, priority=0).take()
    note = f"cpu cores 0–1 leased by job {holder}"
    assert summarize(store, store.job(waiter))["waiting"] == note
    assert summarize(store, store.job(holder))["waiting"] is None

    async def check() -> None:
        app = NasApp(db, refresh_s=0.2, export_root=tmp_path / "exports")
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(VirtualTable)
            status = {row.key: row.cells[2] for row in table.rows}
            assert status == {holder: "running", waiter: "waiting"}
            app.open_job(waiter)
            deadline = time.monotonic() + 20
            while not (isinstance(app.screen, JobScreen) and note in str(app.screen.summary.render())):
                assert time.monotonic() < deadline, "the job screen's header never said why the job waits"
                await pilot.pause(0.1)

    asyncio.run(check())
    store.close()
