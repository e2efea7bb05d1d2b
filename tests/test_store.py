"""Opening the store: a new file is created by one connection in one transaction, whoever else opens it.

Real SQLite files, real processes and threads; the moments that matter are arranged with events and a
pause inside the real migration, never with sleeps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import NASAPP

from nasapp.store import Store
from nasapp.store.migrations import MIGRATIONS, migrate, schema_version

LATEST = len(MIGRATIONS)

# A child that opens a fresh store each time it reads a path on stdin, and answers one JSON line.
OPENER = """
import json, sys
from nasapp.store import Store
from nasapp.store.migrations import schema_version
print("ready", flush=True)
for line in sys.stdin:
    try:
        store = Store(line.strip())
        answer = {"jobs": len(store.jobs()), "version": schema_version(store.conn)}
        store.close()
    except Exception as error:
        answer = {"error": repr(error)}
    print(json.dumps(answer), flush=True)
"""


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_processes_opening_one_new_file_at_the_same_moment_all_see_the_same_schema(tmp_path):
    openers = [subprocess.Popen([sys.executable, "-c", OPENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for _ in range(8)]
    try:
        for proc in openers:  # every child has imported the store and waits for a path
            assert proc.stdout.readline() == "ready\n"
        for number in range(6):
            path = tmp_path / f"new-{number}.db"
            for proc in openers:  # one line each, back to back: they all open the file at once
                proc.stdin.write(f"{path}\n")
                proc.stdin.flush()
            answers = [json.loads(proc.stdout.readline()) for proc in openers]
            assert answers == [{"jobs": 0, "version": LATEST}] * len(openers), answers
        for proc in openers:
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in openers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)


def test_threads_opening_one_new_file_at_the_same_moment_all_see_the_same_schema(tmp_path):
    threads = 8
    for number in range(15):
        path = tmp_path / f"new-{number}.db"
        barrier = threading.Barrier(threads)
        answers: list[object] = []

        def open_and_list(path: Path = path, barrier: threading.Barrier = barrier,
                          answers: list[object] = answers) -> None:
            barrier.wait(timeout=60)
            try:
                store = Store(path)
                answers.append((len(store.jobs()), schema_version(store.conn)))
                store.close()
            except Exception as error:
                answers.append(repr(error))

        started = [threading.Thread(target=open_and_list) for _ in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join(timeout=120)
        assert answers == [(0, LATEST)] * threads, answers


class PausedCreation:
    """The real `migrate` on a new file, paused inside its transaction just before it records the version.

    Every table exists by then, uncommitted; `release()` lets it commit.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.holding = threading.Event()
        self._release = threading.Event()
        self.error: BaseException | None = None
        self.conn.set_trace_callback(self._trace)
        self.thread = threading.Thread(target=self._run)

    def _trace(self, statement: str) -> None:
        if statement.startswith("INSERT OR REPLACE INTO meta"):
            self.holding.set()
            self._release.wait(timeout=120)

    def _run(self) -> None:
        try:
            migrate(self.conn)
        except BaseException as error:  # reported by the test
            self.error = error

    def __enter__(self) -> PausedCreation:
        self.thread.start()
        assert self.holding.wait(timeout=60), "the migration never reached its last statement"
        return self

    def release(self) -> None:
        self._release.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and self.error is None, self.error

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.thread.join(timeout=60)
        self.conn.close()


def test_a_reader_opening_a_store_being_created_waits_and_then_sees_it_empty(tmp_path):
    path = tmp_path / "nasapp.db"
    with PausedCreation(path) as creation:
        assert _tables(path) == set()  # a plain reader sees no schema at all: not half of one

        done = threading.Event()
        answer: list[object] = []

        def open_and_list() -> None:
            try:
                store = Store(path)
                answer.append((store.jobs(), schema_version(store.conn)))
                store.close()
            except Exception as error:
                answer.append(repr(error))
            done.set()

        reader = threading.Thread(target=open_and_list)
        reader.start()
        # It cannot finish while the creating transaction is open: it waits for it (busy timeout) and must not
        # come back early with "no such table" or an empty file of its own making.
        assert not done.wait(timeout=0.5), answer
        creation.release()
        reader.join(timeout=60)
    assert answer == [([], LATEST)]
    assert {"meta", "jobs", "trials", "metrics", "events", "commands"} <= _tables(path)


def test_nasapp_ls_on_a_store_being_created_waits_and_lists_no_jobs(tmp_path):
    path = tmp_path / "nasapp.db"
    with PausedCreation(path) as creation:
        ls = subprocess.Popen([str(NASAPP), "ls", "--json", "--db", str(path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        try:
            creation.release()
            out, err = ls.communicate(timeout=120)
        finally:
            if ls.poll() is None:
                ls.kill()
                ls.wait(timeout=60)
    assert ls.returncode == 0 and json.loads(out) == [], err


def test_an_up_to_date_store_opens_while_another_connection_writes(tmp_path):
    path = tmp_path / "nasapp.db"
    Store(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a runner in the middle of a write
    try:
        opened = threading.Event()
        answer: list[object] = []

        def open_and_list() -> None:
            store = Store(path)
            answer.append(store.jobs())
            store.close()
            opened.set()

        reader = threading.Thread(target=open_and_list, daemon=True)
        reader.start()
        assert opened.wait(timeout=60), "opening a current store waited for another connection's write lock"
        assert answer == [[]]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_failed_migration_leaves_nothing_behind(tmp_path):
    path = tmp_path / "nasapp.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE commands (x)")  # in the way of migration 1's last table
    with pytest.raises(sqlite3.OperationalError, match="table commands already exists"):
        migrate(conn)
    assert not conn.in_transaction and schema_version(conn) == 0
    conn.close()
    assert _tables(path) == {"commands"}


def test_a_store_newer_than_this_nasapp_is_refused(tmp_path):
    path = tmp_path / "nasapp.db"
    Store(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(LATEST + 1),))
    conn.close()
    with pytest.raises(RuntimeError, match=f"database schema {LATEST + 1} is newer than this nasapp"):
        Store(path)


def test_opening_the_store_twice_in_one_process_keeps_the_first_connection_s_locks(tmp_path):
    """Reading the file's header with plain file IO while this process has it open in SQLite dropped SQLite's
    POSIX locks: another process closing its connection then deleted the WAL under the dashboard, which saw no
    more commits (a resumed job stayed "stopped" on its screen) or a malformed database."""
    import subprocess
    import sys

    path = tmp_path / "twice.db"
    first = Store(path)
    Store(path).close()  # the dashboard's export thread opens its own connection like this
    writer = f"from nasapp.store import Store; s = Store({str(path)!r}); s.create_job('x', {{}}, {{}}, 1, 0); s.close()"
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=60)
    assert (tmp_path / "twice.db-wal").exists()  # the writer was not the last connection: it kept the WAL
    assert [job.name for job in first.jobs()] == ["x"]
    first.close()


def test_an_interrupted_jobs_clock_stops_at_its_runners_last_heartbeat():
    """A runner killed at t = 130 (its last heartbeat): the job ran 30 s, however long ago that was; a live
    job's clock runs to now, an ended one's to its end."""
    from nasapp.engine.jobs.liveness import elapsed_s, process_start_time
    from nasapp.store.records import Job

    def job(status: str, pid: int | None, **times: float) -> Job:
        return Job(1, "j", status, {}, {}, 5, 0, None, pid, created_at=90.0, updated_at=times.get("updated", 131.0),
                   started_at=100.0, finished_at=times.get("finished"), heartbeat_at=times.get("heartbeat"),
                   runner_start_time=process_start_time(pid) if pid == os.getpid() else None)

    dead = 2**22 + 12345  # above Linux's pid_max: no such process
    assert elapsed_s(job("running", dead, heartbeat=130.0), now=10_000.0) == 30.0
    assert elapsed_s(job("running", os.getpid(), heartbeat=130.0), now=160.0) == 60.0
    assert elapsed_s(job("finished", None, finished=145.0), now=10_000.0) == 45.0
