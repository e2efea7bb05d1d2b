"""The store: one SQLite file (WAL mode) holding jobs, trials, per-step metrics, events and commands.

Every method commits before it returns (the connection runs in autocommit mode), so a runner that dies
right after a call never loses what the call wrote. JSON goes into TEXT columns; nothing is pickled.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from nasapp.store.migrations import migrate
from nasapp.store.records import JOB_COLUMNS, TRIAL_COLUMNS, Job, Trial

FINISHED = ("succeeded", "failed", "pruned")
# skipped: rejected before training (its predicted latency was far over target); not part of the budget
TRIAL_STATES = ("queued", "running", "succeeded", "failed", "pruned", "cancelled", "skipped")
_JSON_COLUMNS = {"spec", "space", "arch", "metrics", "values", "args"}


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


def connect(path: Path, timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """An autocommit connection in WAL mode on an up-to-date schema, creating the file if it is new.

    Safe when several processes open one new file at the same moment: the schema is created by exactly one
    of them, in one transaction, and the others wait for it (see `migrate`).
    """
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        _use_wal(conn, timeout_s)
        conn.execute("PRAGMA synchronous=NORMAL")  # safe against process crashes in WAL mode
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Store:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self._runs_dir = self.path.parent / "runs"

    def close(self) -> None:
        self.conn.close()

    # ---- folders -------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self._runs_dir

    def trial_dir(self, job_id: int, number: int) -> Path:
        return self.runs_dir / f"job-{job_id}" / f"trial-{number:05d}"

    # ---- queries -------------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [_decode(row) for row in self.db.query(sql, params)]  # type: ignore[misc]

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
            raise sqlite_utils.db.NotFoundError(f"no row {row_id} in {table}")

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
        """A job by id, or the newest job with that name."""
        text = str(ref)
        if text.isdigit():
            return self.job(int(text))
        found = self._jobs("SELECT * FROM jobs WHERE name = ? ORDER BY id DESC LIMIT 1", (text,))
        return found[0] if found else None

    def jobs(self) -> list[Job]:
        return self._jobs("SELECT * FROM jobs ORDER BY id")

    def update_job(self, job_id: int, **fields: Any) -> None:
        for key in _JSON_COLUMNS & fields.keys():
            fields[key] = _json(fields[key])
        fields["updated_at"] = time.time()
        self._update("jobs", job_id, fields)

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
        for row in self.db.query(
            "SELECT status, COUNT(*) AS n FROM trials WHERE job_id = ? GROUP BY status", (job_id,)
        ):
            counts[row["status"]] = row["n"]
        return counts

    def best_trials(self, job_id: int, k: int = 1, direction: str = "max") -> list[Trial]:
        order = "DESC" if direction == "max" else "ASC"
        return self._trials(
            "SELECT * FROM trials WHERE job_id = ? AND status = 'succeeded' AND reward IS NOT NULL"
            f" ORDER BY reward {order}, number LIMIT ?",
            (job_id, k),
        )

    def history(self, job_id: int) -> list[tuple[int, str, Trial]]:
        """The job's asks and tells in the order they happened: [(seq, "ask" | "tell", trial), ...]."""
        events: list[tuple[int, str, Trial]] = []
        for trial in self.trials(job_id):
            events.append((trial.ask_seq or 0, "ask", trial))
            if trial.tell_seq is not None:
                events.append((trial.tell_seq, "tell", trial))
        events.sort(key=lambda e: e[0])
        return events

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

    def add_command(self, job_id: int, command: str, args: dict | None = None) -> int:
        row = {"job_id": job_id, "command": command, "args": _json(args or {}), "created_at": time.time()}
        return self._insert("commands", row)

    def pending_commands(self, job_id: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM commands WHERE job_id = ? AND handled_at IS NULL ORDER BY id", (job_id,)
        )

    def mark_command_handled(self, command_id: int) -> None:
        self._update("commands", command_id, {"handled_at": time.time()})
