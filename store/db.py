"""The store: one SQLite file (WAL mode) holding jobs, trials, per-step metrics, events and commands.

Every method commits before it returns (the connection runs in autocommit mode), so a runner that dies
right after a call never loses what the call wrote. JSON goes into TEXT columns; nothing is pickled.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasapp.store.migrations import MIGRATIONS, migrate, schema_version
from nasapp.store.records import JOB_COLUMNS, TOOL_RUN_COLUMNS, TRIAL_COLUMNS, Job, ToolRun, Trial

FINISHED = ("succeeded", "failed", "pruned")
# skipped: rejected before training (its predicted latency was far over target); not part of the budget
TRIAL_STATES = ("queued", "running", "succeeded", "failed", "pruned", "cancelled", "skipped")
_JSON_COLUMNS = {"spec", "space", "arch", "metrics", "values", "args", "settings", "state"}


def nasapp_home() -> Path:
    return Path(os.environ.get("NASAPP_HOME") or Path.home() / ".nasapp")


def default_db_path() -> Path:
    return nasapp_home() / "nasapp.db"


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS & out.keys():
        if isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


def trial_record(row: dict[str, Any]) -> Trial:
    """A Trial from a decoded row holding any subset of the trial columns."""
    values = {k: row[k] for k in TRIAL_COLUMNS if k in row}
    if values.get("metrics") is None:
        values["metrics"] = {}
    return Trial(**values)


def history_of(trials: list[Trial]) -> list[tuple[int, str, Trial]]:
    """The asks and tells of a job's trials in the order they happened: [(seq, "ask" | "tell", trial), ...]."""
    events: list[tuple[int, str, Trial]] = []
    for trial in trials:
        events.append((trial.ask_seq or 0, "ask", trial))
        if trial.tell_seq is not None:
            events.append((trial.tell_seq, "tell", trial))
    events.sort(key=lambda e: e[0])
    return events


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _cell(value: Any) -> Any:
    return _json(value) if isinstance(value, dict | list | tuple) else value


BUSY_TIMEOUT_S = 30.0  # how long a connection waits for another one's write lock before it gives up


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "database is locked" in str(error)


def _use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch the file to WAL mode, retrying until `timeout_s` has passed.

    Changing the journal mode needs a moment of exclusive access, and SQLite answers "database is locked" at
    once, without waiting on the busy timeout, while another connection is creating or switching the same
    new file. Once the file is in WAL mode the pragma takes no lock, so only openers of a new file retry.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
CHECKPOINT_EVERY_S = 60.0  # how often `Store.maybe_checkpoint` copies the WAL into the database file


class StoreError(RuntimeError):
    """A store file that cannot be used as it is: not a store, missing (for reading), read-only (for writing),
    damaged, or on a full disk. The message names the file and says what to do; the CLI prints it as one line.
    (The store imports nothing of the project, so this is not a NasappError.)"""


def describe_sqlite_error(path: Path, error: sqlite3.Error) -> str:
    """One line saying what an SQLite error on the store at `path` means for the user and what to do."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    lowered = text.lower()
    if code == sqlite3.SQLITE_NOTADB or "not a database" in lowered:
        return f"{path} is not a nasapp store (not an SQLite database); give another --db"
    if code == sqlite3.SQLITE_CORRUPT or "malformed" in lowered:
        return (f"the store {path} is damaged ({text}); restore it from a backup, or give another --db"
                " (`sqlite3 FILE .recover` may save what is left)")
    if code == sqlite3.SQLITE_FULL or "disk is full" in lowered or (
            code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and _disk_full(path)):
        return (f"the disk holding the store {path} is full ({text}); free some space and try again (what was"
                " stored is kept; `nasapp resume JOB` continues an interrupted job)")
    if code == sqlite3.SQLITE_READONLY or "readonly" in lowered or "read-only" in lowered:
        return f"the store {path} is read-only ({text}); make it writable, or give another --db"
    if code == sqlite3.SQLITE_CANTOPEN or "unable to open" in lowered:
        return (f"cannot open the store {path} ({text}); check that the file and its folder exist and are"
                " readable and writable")
    if code == sqlite3.SQLITE_IOERR or "i/o error" in lowered:
        return (f"the store {path} could not be read or written ({text}): is the disk failing, full, or was the"
                f" store's -wal file deleted while it was open? Close every nasapp using it and try again")
    if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
        return f"the store {path} is locked by another process ({text}); try again in a moment"
    return f"the store {path}: {text}"


def _disk_full(path: Path) -> bool:
    """Is the disk holding `path` (nearly) full? SQLite reports a full disk as an I/O error at times."""
    try:
        return shutil.disk_usage(path.parent if str(path.parent) else ".").free < 64 * 1024
    except OSError:
        return False


_OPEN_STORES: dict[Path, int] = {}  # resolved path -> Store objects of this process that have it open


def _open_here(path: Path) -> int:
    return _OPEN_STORES.get(path.resolve(), 0)


def check_store_path(path: Path, create: bool) -> bool:
    """Refuse a path that is not, and cannot become, a store file before SQLite touches it; returns whether the
    store must be opened read-only. Creates the folders of a new store when `create` (only then)."""
    if not str(path).strip():
        raise StoreError("the store path is empty; give a file such as ./nasapp.db (--db)")
    try:
        if path.is_dir():
            raise StoreError(f"{path} is a folder, not a store file; give a file such as {path / 'nasapp.db'}")
        if path.exists() and not path.is_file():
            raise StoreError(f"{path} is not a regular file (a device, pipe or socket); give a store file such as"
                             " ./nasapp.db")
        if not path.exists():
            return _check_new_store(path, create)
        if not os.access(path, os.R_OK):
            raise StoreError(f"cannot read the store {path} (permission denied)")
        size = path.stat().st_size
        head = SQLITE_HEADER
        if size > 0 and _open_here(path) == 0:
            # Never while this process has the file open in SQLite: closing any descriptor of a file drops
            # every POSIX lock this process holds on it, SQLite's included, and another process may then
            # delete the WAL under our connection (the "closing a file descriptor" corruption hazard).
            with open(path, "rb") as file:
                head = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StoreError(f"cannot open the store {path}: {error.strerror or error}") from None
    if size == 0 and not create:
        raise StoreError(f"{path} is an empty file, not a nasapp store; nothing to read there")
    if size > 0 and head != SQLITE_HEADER:
        raise StoreError(f"{path} is not a nasapp store (not an SQLite database); give another --db"
                         " (nothing was written to it)")
    return not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)  # -wal and -shm go beside it


def _check_new_store(path: Path, create: bool) -> bool:
    if path.is_symlink():
        raise StoreError(f"{path} is a broken link; point --db at a store file")
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise StoreError(f"cannot use {path} as a store: {ancestor} is a file, not a folder")
            break
    if not create:
        raise StoreError(f"no store at {path} (nothing to read there; `nasapp run` creates one, --db chooses"
                         " another)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the folder {path.parent} for the store: {error.strerror or error}") from None
    if not os.access(path.parent, os.W_OK):
        raise StoreError(f"cannot create a store at {path}: its folder {path.parent} is read-only")
    return False


def _foreign_database(conn: sqlite3.Connection) -> bool:
    """Does the file hold tables but no nasapp schema (another program's SQLite database)?

    One read of the table list, so another process creating the schema meanwhile is seen whole or not at all
    (a nasapp store's first migration creates `meta` and `jobs` in one transaction)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return bool(tables) and not {"meta", "jobs"} <= tables


def connect(path: Path, timeout_s: float = BUSY_TIMEOUT_S, *, readonly: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode on an up-to-date schema, creating the file if it is new.

    Safe when several processes open one new file at the same moment: the schema is created by exactly one
    of them, in one transaction, and the others wait for it (see `migrate`). With `readonly` (a file or folder
    this process may not write) the connection only reads, and the schema must already be current.
    Another program's SQLite database is refused (StoreError) before anything is written to it.
    """
    if readonly:
        return _connect_readonly(path, timeout_s)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        if _foreign_database(conn):
            raise StoreError(f"{path} is an SQLite database but not a nasapp store (it holds other tables);"
                             " give another --db (nothing was written to it)")
        _use_wal(conn, timeout_s)
        conn.execute("PRAGMA synchronous=NORMAL")  # safe against process crashes in WAL mode
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_readonly(path: Path, timeout_s: float) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    conn = None
    for options in ("?mode=ro", "?mode=ro&immutable=1"):  # immutable: a WAL file in a folder we cannot write
        conn = sqlite3.connect(uri + options, uri=True, timeout=timeout_s, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            version = schema_version(conn)
            break
        except sqlite3.OperationalError as error:
            conn.close()
            if options.endswith("immutable=1") or (getattr(error, "sqlite_errorcode", 0) & 0xFF) not in (
                    sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
                raise
    assert conn is not None
    try:
        if version == 0:
            what = "holds other tables" if _foreign_database(conn) else "is empty"
            raise StoreError(f"{path} is not a nasapp store (it {what}) and it is read-only")
        if version < len(MIGRATIONS):
            raise StoreError(f"the store {path} is read-only and was written by an older nasapp: make it writable"
                             " once so this nasapp can upgrade it")
        if version > len(MIGRATIONS):
            raise StoreError(f"the store {path} was written by a newer nasapp (schema {version}); upgrade nasapp")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _runs_folder(conn: sqlite3.Connection, path: Path, readonly: bool) -> str:
    """The store's folder for trial artefacts, relative to the database's folder, recorded in `meta`.

    A new store gets `runs/<file stem>-<random id>`, so a store created where a deleted one lived never writes
    into the old one's job folders, and two stores in one folder never share them. A store made before this
    existed keeps `runs/` (its jobs' folders are there); the choice is recorded once, on first open.
    """
    found = conn.execute("SELECT value FROM meta WHERE key = 'runs_dir'").fetchone()
    if found:
        return str(found[0])
    store_id = secrets.token_hex(6)
    legacy = conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is not None
    if readonly:
        return "runs" if legacy else f"runs/{path.stem}-{store_id}"
    conn.execute("BEGIN IMMEDIATE")
    try:
        legacy = conn.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is not None  # inside the lock
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?)", (store_id,))
        stored_id = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0]
        folder = "runs" if legacy else f"runs/{path.stem}-{stored_id}"
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('runs_dir', ?)", (folder,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return str(conn.execute("SELECT value FROM meta WHERE key = 'runs_dir'").fetchone()[0])


class Store:
    def __init__(self, path: str | os.PathLike[str] | None = None, *, create: bool = True) -> None:
        """Open the store at `path` (the default store when None).

        `create`: make the file (and its folders) when there is none; reading commands pass False, so they never
        create a store. A file or folder this process may not write opens read-only (`readonly`): reading
        works, writing raises. Anything that is not a usable store raises StoreError naming the file.
        """
        if path is not None and not os.fspath(path).strip():
            raise StoreError("the store path is empty; give a file such as ./nasapp.db (--db)")
        self.path = Path(path) if path is not None else default_db_path()
        self.readonly = check_store_path(self.path, create)
        try:
            self.conn = connect(self.path, readonly=self.readonly)
        except sqlite3.Error as error:
            raise StoreError(describe_sqlite_error(self.path, error)) from None
        except RuntimeError as error:  # migrate: a newer schema
            raise StoreError(f"the store {self.path}: {error}") from None
        try:
            self._runs_dir = self.path.parent / _runs_folder(self.conn, self.path, self.readonly)
        except sqlite3.Error as error:
            self.conn.close()
            raise StoreError(describe_sqlite_error(self.path, error)) from None
        self._last_checkpoint = time.monotonic()
        key = self.path.resolve()
        _OPEN_STORES[key] = _OPEN_STORES.get(key, 0) + 1

    def close(self) -> None:
        self.conn.close()
        key = self.path.resolve()
        if _OPEN_STORES.get(key, 0) > 1:
            _OPEN_STORES[key] -= 1
        else:
            _OPEN_STORES.pop(key, None)

    @functools.cached_property
    def db(self) -> Any:
        """sqlite_utils' view of the same connection, made on first use: importing sqlite_utils imports numpy,
        which a reading command such as `nasapp ls` never needs."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    @property
    def store_id(self) -> str | None:
        """A random id given to the store when it was created (or first opened by a nasapp that has ids)."""
        found = self.conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return str(found[0]) if found else None

    def checkpoint(self) -> None:
        """Copy the committed pages of the WAL file into the database file now (PASSIVE: it never waits for or
        blocks readers and writers; pages a reader still needs are copied by a later checkpoint). After it, a
        lost -wal file loses at most what was written since."""
        if not self.readonly:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def maybe_checkpoint(self, every_s: float = CHECKPOINT_EVERY_S) -> bool:
        """`checkpoint()` when `every_s` seconds have passed since the last one; cheap to call from a loop."""
        now = time.monotonic()
        if now - self._last_checkpoint < every_s:
            return False
        self._last_checkpoint = now
        self.checkpoint()
        return True

    # ---- folders -------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """This store's folder of job folders: `runs/<store>-<id>/` beside the database (`runs/` for a store
        made before stores had ids). The only place, with `job_dir` and `trial_dir`, that builds these paths."""
        return self._runs_dir

    def job_dir(self, job_id: int) -> Path:
        return self.runs_dir / f"job-{job_id}"

    def trial_dir(self, job_id: int, number: int) -> Path:
        return self.job_dir(job_id) / f"trial-{number:05d}"

    # ---- queries -------------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [_decode(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]  # type: ignore[misc]

    def _one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _jobs(self, sql: str, params: tuple = ()) -> list[Job]:
        return [Job(**{k: row[k] for k in JOB_COLUMNS}) for row in self._rows(sql, params)]

    def _trials(self, sql: str, params: tuple = ()) -> list[Trial]:
        return [trial_record(row) for row in self._rows(sql, params)]

    # Plain INSERT/UPDATE statements on the hot path (a runner writes a few rows per trial):
    # sqlite_utils' insert()/update() inspect the schema and re-read the row on every call.
    def _insert(self, table: str, row: dict[str, Any]) -> int:
        columns = ", ".join(f'"{column}"' for column in row)
        marks = ", ".join("?" * len(row))
        cursor = self.conn.execute(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})',
                                   [_cell(value) for value in row.values()])
        return int(cursor.lastrowid)  # type: ignore[arg-type]

    def _update(self, table: str, row_id: int, fields: dict[str, Any]) -> None:
        sets = ", ".join(f'"{column}" = ?' for column in fields)
        cursor = self.conn.execute(f'UPDATE "{table}" SET {sets} WHERE id = ?',
                                   [*(_cell(value) for value in fields.values()), row_id])
        if cursor.rowcount == 0:
            from sqlite_utils.db import NotFoundError

            raise NotFoundError(f"no row {row_id} in {table}")

    # ---- jobs ----------------------------------------------------------------------------------
    def create_job(self, name: str, spec: dict, space: dict, max_trials: int, seed: int) -> int:
        now = time.time()
        row = {
            "name": name, "status": "created", "spec": _json(spec), "space": _json(space),
            "max_trials": max_trials, "seed": seed, "created_at": now, "updated_at": now,
        }
        return self._insert("jobs", row)

    def job(self, job_id: int) -> Job | None:
        found = self._jobs("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return found[0] if found else None

    def find_job(self, ref: str | int) -> Job | None:
        """A job by id, or else the newest job with that name (so a job named "12345" is found by its name
        unless a job has the id 12345). Ids beyond SQLite's integers are no job's id."""
        text = str(ref)
        if text.isascii() and text.isdigit() and int(text) < 2**63:
            found_id = self.job(int(text))
            if found_id is not None:
                return found_id
        found = self._jobs("SELECT * FROM jobs WHERE name = ? ORDER BY id DESC LIMIT 1", (text,))
        return found[0] if found else None

    def jobs(self) -> list[Job]:
        return self._jobs("SELECT * FROM jobs ORDER BY id")

    def update_job(self, job_id: int, **fields: Any) -> None:
        for key in _JSON_COLUMNS & fields.keys():
            fields[key] = _json(fields[key])
        fields["updated_at"] = time.time()
        self._update("jobs", job_id, fields)

    # ---- tool runs ---------------------------------------------------------------------------------
    def create_tool_run(self, kind: str, name: str, settings: dict[str, Any]) -> int:
        now = time.time()
        row = {"kind": kind, "name": name, "status": "running", "settings": _json(settings), "state": _json({}),
               "created_at": now, "updated_at": now}
        return self._insert("tool_runs", row)

    def tool_run(self, run_id: int) -> ToolRun | None:
        row = self._one("SELECT * FROM tool_runs WHERE id = ?", (run_id,))
        return ToolRun(**{k: row[k] for k in TOOL_RUN_COLUMNS}) if row else None

    def tool_runs(self) -> list[ToolRun]:
        return [ToolRun(**{k: row[k] for k in TOOL_RUN_COLUMNS})
                for row in self._rows("SELECT * FROM tool_runs ORDER BY id")]

    def update_tool_run(self, run_id: int, **fields: Any) -> None:
        for key in _JSON_COLUMNS & fields.keys():
            fields[key] = _json(fields[key])
        fields["updated_at"] = time.time()
        self._update("tool_runs", run_id, fields)

    # ---- trials --------------------------------------------------------------------------------
    def add_trial(self, job_id: int, number: int, arch: Any, fingerprint: str, ask_seq: int) -> int:
        row = {
            "job_id": job_id, "number": number, "arch": _json(arch), "fingerprint": fingerprint,
            "status": "queued", "ask_seq": ask_seq, "attempts": 0, "created_at": time.time(),
        }
        return self._insert("trials", row)

    def trial(self, trial_id: int) -> Trial | None:
        found = self._trials("SELECT * FROM trials WHERE id = ?", (trial_id,))
        return found[0] if found else None

    def trial_by_number(self, job_id: int, number: int) -> Trial | None:
        found = self._trials("SELECT * FROM trials WHERE job_id = ? AND number = ?", (job_id, number))
        return found[0] if found else None

    def trials(self, job_id: int, status: str | None = None) -> list[Trial]:
        if status is None:
            return self._trials("SELECT * FROM trials WHERE job_id = ? ORDER BY number", (job_id,))
        return self._trials(
            "SELECT * FROM trials WHERE job_id = ? AND status = ? ORDER BY number", (job_id, status)
        )

    def trials_among(self, job_id: int, column: str, values: list[int] | tuple[int, ...],
                     columns: tuple[str, ...] | None = None) -> list[Trial]:
        """The job's trials whose ``column`` ("id" or "number") is among ``values``, in no particular order;
        only ``columns`` of each (every column when None). Read in chunks: SQLite caps a statement's parameters."""
        assert column in ("id", "number"), column
        selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        found: list[Trial] = []
        for start in range(0, len(values), 500):
            chunk = list(values[start:start + 500])
            found += self._trials(f"SELECT {selected} FROM trials WHERE job_id = ? AND {column} IN"
                                  f" ({', '.join('?' * len(chunk))})", (job_id, *chunk))
        return found

    def start_trial(self, trial_id: int, device: str) -> None:
        self.conn.execute(
            "UPDATE trials SET status = 'running', device = ?, started_at = ?, attempts = attempts + 1,"
            " reason = NULL, message = NULL WHERE id = ?",
            (device, time.time(), trial_id),
        )

    def finish_trial(
        self, trial_id: int, status: str, *, reward: float | None = None, metrics: dict | None = None,
        reason: str | None = None, message: str | None = None, tell_seq: int | None = None,
    ) -> None:
        assert status in TRIAL_STATES, status
        self._update("trials", trial_id, {
            "status": status, "reward": reward, "metrics": _json(metrics or {}), "reason": reason,
            "message": message, "tell_seq": tell_seq, "finished_at": time.time(),
        })

    def requeue_unfinished(self, job_id: int) -> list[Trial]:
        """Trials that were queued, running or cancelled go back to queued (resume runs them again)."""
        self.conn.execute(
            "UPDATE trials SET status = 'queued', reason = NULL, message = NULL, tell_seq = NULL"
            " WHERE job_id = ? AND status IN ('queued', 'running', 'cancelled')",
            (job_id,),
        )
        return self.trials(job_id, "queued")

    def counts(self, job_id: int) -> dict[str, int]:
        counts = dict.fromkeys(TRIAL_STATES, 0)
        counts.update(self.conn.execute(
            "SELECT status, COUNT(*) FROM trials WHERE job_id = ? GROUP BY status", (job_id,)).fetchall())
        return counts

    def best_trials(self, job_id: int, k: int = 1, direction: str = "max",
                    fingerprints: list[str] | None = None) -> list[Trial]:
        """The ``k`` best succeeded trials, best first; only those of ``fingerprints`` when given."""
        order = "DESC" if direction == "max" else "ASC"
        among = f" AND fingerprint IN ({', '.join('?' * len(fingerprints))})" if fingerprints is not None else ""
        return self._trials(
            "SELECT * FROM trials WHERE job_id = ? AND status = 'succeeded' AND reward IS NOT NULL"
            f"{among} ORDER BY reward {order}, number LIMIT ?",
            (job_id, *(fingerprints or []), k),
        )

    def history(self, job_id: int) -> list[tuple[int, str, Trial]]:
        """The job's asks and tells in the order they happened: [(seq, "ask" | "tell", trial), ...]."""
        return history_of(self.trials(job_id))

    # ---- metrics, events, commands ------------------------------------------------------------
    def add_metrics(self, trial_id: int, step: int, values: dict[str, float]) -> None:
        row = {"trial_id": trial_id, "step": step, "values": _json(values), "ts": time.time()}
        self._insert("metrics", row)

    def job_metrics(self, job_id: int) -> list[tuple[int, int, dict[str, Any]]]:
        """Every intermediate report of a job's trials as (trial_id, step, values), in report order."""
        cursor = self.conn.execute(
            'SELECT m.trial_id, m.step, m."values" FROM metrics m JOIN trials t ON t.id = m.trial_id'
            " WHERE t.job_id = ? ORDER BY m.id", (job_id,))
        return [(trial_id, step, json.loads(values)) for trial_id, step, values in cursor.fetchall()]

    def metrics(self, trial_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM metrics WHERE trial_id = ? ORDER BY step, id", (trial_id,))

    def add_event(self, job_id: int, message: str, level: str = "info") -> None:
        self._insert("events", {"job_id": job_id, "ts": time.time(), "level": level, "message": message})

    def add_command(self, job_id: int, command: str, args: dict | None = None, *, runner_token: str | None) -> int:
        """A command for the runner holding `runner_token` (read from the job when deciding to send it).

        Only that runner acts on it: a runner that claims the job later expires it (see `take_commands`).
        """
        row = {"job_id": job_id, "command": command, "args": _json(args or {}), "created_at": time.time(),
               "runner_token": runner_token}
        return self._insert("commands", row)

    def pending_commands(self, job_id: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM commands WHERE job_id = ? AND handled_at IS NULL ORDER BY id", (job_id,)
        )

    def mark_command_handled(self, command_id: int) -> None:
        self._update("commands", command_id, {"handled_at": time.time()})

    def take_commands(self, job_id: int, runner_token: str, max_age_s: float) -> tuple[list[dict[str, Any]], int]:
        """The job's unhandled commands addressed to `runner_token` and sent less than `max_age_s` ago, in the
        order they were sent, and how many others there were; all of them are marked handled. The others
        (addressed to another runner, or too old to act on) are expired without effect."""
        now = time.time()
        mine: list[dict[str, Any]] = []
        expired = 0
        for command in self.pending_commands(job_id):
            if command["runner_token"] == runner_token and now - command["created_at"] <= max_age_s:
                mine.append(command)
            else:
                expired += 1
            self.conn.execute("UPDATE commands SET handled_at = ? WHERE id = ?", (now, command["id"]))
        return mine, expired

    # ---- the runner lock (one runner per job) --------------------------------------------------------
    _LOCK_CLEARED = ("runner_pid = NULL, runner_token = NULL, runner_start_time = NULL, runner_since = NULL,"
                     " heartbeat_at = NULL")

    def claim_job(self, job_id: int, *, pid: int, start_time: int | None, token: str,
                  may_take: Callable[[Job], bool]) -> tuple[bool, Job | None]:
        """Take the job's runner lock, atomically: one `BEGIN IMMEDIATE` transaction reads the lock and writes
        this runner's (pid, process start time, token, claim time, first heartbeat), so of two runners
        claiming at the same moment exactly one gets it.

        A free lock (no runner_pid) is taken; a held one only when `may_take(holder)` says so (the holder is
        gone, or the user forces it). Taking it expires the job's unhandled commands: they were sent to an
        earlier runner. Returns (claimed, the job as it was before: the holder when refused).
        """
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            job = self.job(job_id)
            claimed = job is not None and (job.runner_pid is None or may_take(job))
            if claimed:
                now = time.time()
                self.conn.execute(
                    "UPDATE jobs SET runner_pid = ?, runner_start_time = ?, runner_token = ?, runner_since = ?,"
                    " heartbeat_at = ?, updated_at = ? WHERE id = ?", (pid, start_time, token, now, now, now, job_id))
                self.conn.execute("UPDATE commands SET handled_at = ? WHERE job_id = ? AND handled_at IS NULL",
                                  (now, job_id))
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return claimed, job

    def heartbeat(self, job_id: int, token: str) -> bool:
        """Refresh the lock's heartbeat; False when this token no longer holds the lock (another runner took it)."""
        now = time.time()
        cursor = self.conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND runner_token = ?",
                                   (now, job_id, token))
        self.conn.execute("UPDATE leases SET heartbeat_at = ? WHERE runner_token = ?", (now, token))
        return cursor.rowcount == 1

    def release_job(self, job_id: int, token: str | None, **fields: Any) -> bool:
        """Release the lock `token` holds, writing `fields` (status, message, ...) in the same statement.
        False, and nothing written, when `token` does not hold it (None: a lock without a token, or none).
        The device leases and the wait of `token` go with it (store/leases.py)."""
        if token is not None:
            self.conn.execute("DELETE FROM leases WHERE runner_token = ?", (token,))
            self.conn.execute("DELETE FROM lease_waits WHERE runner_token = ?", (token,))
        for key in _JSON_COLUMNS & fields.keys():
            fields[key] = _json(fields[key])
        fields["updated_at"] = time.time()
        sets = ", ".join(f'"{column}" = ?' for column in fields)
        cursor = self.conn.execute(
            f"UPDATE jobs SET {self._LOCK_CLEARED}, {sets} WHERE id = ? AND runner_token IS ?",
            [*(_cell(value) for value in fields.values()), job_id, token])
        return cursor.rowcount == 1
