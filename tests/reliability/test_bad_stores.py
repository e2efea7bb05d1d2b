"""A `--db` that is not (or is no longer) a usable store: one line, exit 2, no traceback, and nothing created or
overwritten. Reading commands never create a store. Each store keys its job folders by an id of its own, so a
store made where a deleted one lived never writes into the old one's folders; the WAL is checkpointed on demand.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, toy_job

from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store


def one_line_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def toy_spec(name: str = "toy") -> dict:
    return {"name": name, "seed": 1, "space": {"ref": f"{TOY}:space"}, "trainer": {"ref": f"{TOY}:train"},
            "search": {"max_trials": 2, "parallel": 1, "devices": "cpu"}}


def make_store(db: Path, jobs: int = 1) -> Path:
    """A store with `jobs` created jobs, its WAL checkpointed into the file and closed (a plain file to damage)."""
    store = Store(db)
    for i in range(jobs):
        create_job(store, parse_job(toy_spec(f"job{i}")))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return db


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (what a refused command must leave as it was)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- paths that are not stores ------------------------------------------------------------------------

def _foreign_db(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, caption TEXT)")
        conn.execute("INSERT INTO photos (caption) VALUES ('holiday')")
        conn.commit()


BAD_PATHS = {
    "a folder": (lambda d: (d / "folder").mkdir() or d / "folder", "is a folder"),
    "a text file": (lambda d: (d / "notes.txt").write_text("my notes\n") and d / "notes.txt", "not a nasapp store"),
    "random bytes": (lambda d: (d / "noise.db").write_bytes(bytes(range(256)) * 40) and d / "noise.db",
                     "not a nasapp store"),
    "another program's SQLite file": (lambda d: _foreign_db(d / "photos.db") or d / "photos.db", "not a nasapp store"),
    "a path under a file": (lambda d: (d / "plain").write_text("x") and d / "plain" / "s.db",
                            "is a file, not a folder"),
    "/dev/null": (lambda d: Path("/dev/null"), "not a regular file"),
    "an empty argument": (lambda d: Path(""), "folder"),
}


@pytest.mark.parametrize("case", list(BAD_PATHS))
def test_a_db_that_is_not_a_store_is_one_line_and_left_alone(tmp_path, case):
    make, needle = BAD_PATHS[case]
    work = tmp_path / "work"
    work.mkdir()
    db = make(work)
    before = snapshot(work)
    one_line_error(nasapp_cli("ls", "--db", str(db), cwd=work), needle)
    if case in ("a text file", "another program's SQLite file", "a folder"):
        one_line_error(nasapp_cli("run", str(toy_job(tmp_path)), "--db", str(db), cwd=work, env=NO_TORCH), needle)
    assert snapshot(work) == before  # nothing created, nothing overwritten


def test_reading_commands_never_create_a_store_or_its_folders(tmp_path):
    db = tmp_path / "missing" / "dir" / "x.db"
    for args in (["ls"], ["show", "1"], ["pareto", "1"], ["export", "1", "--trial", "0"], ["stop", "1"]):
        one_line_error(nasapp_cli(*args, "--db", str(db), cwd=tmp_path), "no store at")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---- a read-only store ----------------------------------------------------------------------------------

@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process cannot write: a read-only bind mount as root (chmod does not stop root), else 0o555."""
    source = tmp_path / "source"
    source.mkdir()
    view = tmp_path / "view"
    view.mkdir()
    if os.geteuid() != 0:
        yield source, source
        source.chmod(0o755)
        return
    steps = [["mount", "--bind", str(source), str(view)], ["mount", "-o", "remount,bind,ro", str(view)]]
    for step in steps:
        if subprocess.run(step, capture_output=True).returncode != 0:
            subprocess.run(["umount", str(view)], capture_output=True)
            pytest.skip("cannot make a read-only bind mount here (needs root and mount permissions)")
    try:
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_a_read_only_store_reads_but_refuses_to_write(read_only_dir, tmp_path):
    source, view = read_only_dir
    make_store(source / "s.db")
    if os.geteuid() != 0:
        (source / "s.db").chmod(0o444)
        source.chmod(0o555)
    before = snapshot(source)
    listed = nasapp_cli("ls", "--json", "--db", str(view / "s.db"))
    assert listed.returncode == 0, listed.stderr
    assert [job["name"] for job in json.loads(listed.stdout)] == ["job0"]
    assert nasapp_cli("show", "1", "--db", str(view / "s.db")).returncode == 0
    one_line_error(nasapp_cli("run", str(toy_job(tmp_path)), "--db", str(view / "s.db"), env=NO_TORCH), "read-only")
    one_line_error(nasapp_cli("run", str(toy_job(tmp_path)), "--db", str(view / "new.db"), env=NO_TORCH),
                   "read-only")
    assert snapshot(source) == before


# ---- damaged stores -------------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "garbage pages", "garbage header"])
def test_a_damaged_store_is_one_line(tmp_path, damage):
    db = make_store(tmp_path / "s.db", jobs=30)
    data = bytearray(db.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage pages":
        data[4096:] = b"\xa5" * (len(data) - 4096)
    else:
        data[16:100] = b"\xff" * 84  # the header after "SQLite format 3"
    db.write_bytes(bytes(data))
    for args in (["ls"], ["show", "1"]):
        one_line_error(nasapp_cli(*args, "--db", str(db)))
    one_line_error(nasapp_cli("run", str(toy_job(tmp_path)), "--db", str(db), env=NO_TORCH))


def test_a_wal_file_deleted_while_a_store_is_open_is_never_a_traceback(tmp_path):
    db = tmp_path / "s.db"
    store = Store(db)
    create_job(store, parse_job(toy_spec("kept")))
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.add_event(1, "in the WAL only")  # committed to the WAL, not yet to the file
    Path(f"{db}-wal").unlink()
    try:
        for args in (["ls", "--json"], ["show", "1", "--json"], ["run", str(toy_job(tmp_path))]):
            result = nasapp_cli(*args, "--db", str(db), env=NO_TORCH)
            if result.returncode != 0:
                one_line_error(result)
            elif args[0] != "run":
                assert "kept" in result.stdout
    finally:
        store.close()


@pytest.mark.slow  # a real search and a full disk
def test_a_full_disk_stops_run_and_resume_with_one_line_and_keeps_the_data(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    store = None
    try:
        db = disk / "s.db"
        job = toy_job(tmp_path, max_trials=3, parallel=1)
        nasapp_cli("run", str(job), "--db", str(db), check=True, env=NO_TORCH)
        store = Store(db)  # stays open: keeps the -wal and -shm files, so the failures are writes, not opens
        resumable = create_job(store, parse_job(toy_spec("to resume")))
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty WAL: the next write needs new space
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):  # until ENOSPC
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        try:
            one_line_error(nasapp_cli("run", str(job), "--db", str(db), env=NO_TORCH), "full")
            one_line_error(nasapp_cli("resume", str(resumable), "--db", str(db), env=NO_TORCH), "full")
        finally:
            filler.unlink()
            store.close()
        listed = {j["id"]: j for j in json.loads(nasapp_cli("ls", "--json", "--db", str(db), check=True).stdout)}
        assert listed[1]["status"] == "finished" and listed[1]["counts"]["succeeded"] == 3
        assert listed[resumable]["status"] != "running" and set(listed) == {1, resumable}
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        if store is not None:
            store.close()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)  # lazy: even while a file is open


# ---- 13: each store its own job folders; checkpoints ------------------------------------------------------

def test_a_store_made_where_a_deleted_one_lived_gets_new_job_folders(tmp_path):
    """Before: the new store's job 1 wrote into the old store's runs/job-1/."""
    db = tmp_path / "nasapp.db"
    old = Store(db)
    old_dir = old.trial_dir(1, 0)
    assert old_dir.is_relative_to(tmp_path / "runs")
    old.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    new = Store(db)
    assert new.trial_dir(1, 0) != old_dir and new.store_id
    beside = Store(tmp_path / "other.db")  # two stores in one folder never share folders either
    assert len({old_dir.parent.parent, new.runs_dir, beside.runs_dir}) == 3
    reopened = Store(db)
    assert reopened.runs_dir == new.runs_dir and reopened.store_id == new.store_id
    for store in (new, beside, reopened):
        store.close()


def test_a_store_from_before_store_ids_keeps_its_runs_folder(tmp_path):
    db = make_store(tmp_path / "nasapp.db", jobs=1)
    with closing(sqlite3.connect(db)) as conn:  # as an older nasapp left it: no id, folders in runs/job-N
        conn.execute("DELETE FROM meta WHERE key IN ('store_id', 'runs_dir')")
        conn.commit()
    store = Store(db)
    assert store.trial_dir(1, 0) == tmp_path / "runs" / "job-1" / "trial-00000"
    store.close()


@pytest.mark.slow  # two real (toy) searches
def test_a_lost_database_never_mixes_its_runs_with_the_next_store(tmp_path):
    db = tmp_path / "nasapp.db"
    job = toy_job(tmp_path, max_trials=2, parallel=1)
    nasapp_cli("run", str(job), "--db", str(db), check=True, env=NO_TORCH)
    first = {p: p.read_bytes() for p in (tmp_path / "runs").rglob("trial.log")}
    assert len(first) == 2
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    nasapp_cli("run", str(job), "--db", str(db), check=True, env=NO_TORCH)
    logs = list((tmp_path / "runs").rglob("trial.log"))
    assert len(logs) == 4 and all(path.read_bytes() == data for path, data in first.items())


def test_a_checkpoint_puts_the_wal_into_the_database_file(tmp_path):
    """After `checkpoint()` the database file alone (its -wal file lost) holds everything written before."""
    db = tmp_path / "s.db"
    store = Store(db)
    reader = Store(db)  # another connection stays open, as a dashboard's would: the WAL is not merged on close
    job_id = create_job(store, parse_job(toy_spec("checkpointed")))
    assert store.maybe_checkpoint(every_s=3600) is False  # not due yet
    store.checkpoint()
    assert store.maybe_checkpoint(every_s=0) is True
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)  # the file without its -wal
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT name FROM jobs WHERE id = ?", (job_id,)).fetchone() == ("checkpointed",)
    store.close()
    reader.close()
