"""Numbered schema migrations. Append a new entry to MIGRATIONS; never edit an applied one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        spec TEXT NOT NULL,
        space TEXT NOT NULL,
        max_trials INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        message TEXT,
        runner_pid INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE TABLE trials (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        number INTEGER NOT NULL,
        arch TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        message TEXT,
        reward REAL,
        metrics TEXT,
        ask_seq INTEGER NOT NULL,
        tell_seq INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        device TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        UNIQUE (job_id, number)
    );
    CREATE INDEX trials_job_status ON trials (job_id, status);
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        trial_id INTEGER NOT NULL REFERENCES trials(id),
        step INTEGER NOT NULL,
        "values" TEXT NOT NULL,
        ts REAL NOT NULL
    );
    CREATE INDEX metrics_trial ON metrics (trial_id, step);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        ts REAL NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_job ON events (job_id, id);
    CREATE TABLE commands (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        command TEXT NOT NULL,
        args TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        handled_at REAL
    );
    CREATE INDEX commands_pending ON commands (job_id, handled_at);
    """,
    # 2: one runner per job. The runner lock on jobs (runner_pid was already there): the holder's process start
    # time (Linux: field 22 of /proc/PID/stat, so a reused pid is not mistaken for it), a token unique to each
    # runner, when it claimed the lock and its last heartbeat. A command is addressed to the runner token that
    # held the lock when it was sent; no other runner acts on it.
    """
    ALTER TABLE jobs ADD COLUMN runner_token TEXT;
    ALTER TABLE jobs ADD COLUMN runner_start_time INTEGER;
    ALTER TABLE jobs ADD COLUMN runner_since REAL;
    ALTER TABLE jobs ADD COLUMN heartbeat_at REAL;
    ALTER TABLE commands ADD COLUMN runner_token TEXT;
    """,
    # 3: runs of the tools made of several jobs (`nasapp proxy select`: one job per round). A run's settings
    # and its state (the ids of its jobs so far) are JSON; its jobs are ordinary jobs.
    """
    CREATE TABLE tool_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        settings TEXT NOT NULL,
        state TEXT NOT NULL,
        message TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 4: summaries from indexes, so `ls`, `show` and the dashboards cost the same at 100 or 100,000 trials: the
    # best K by reward, the first and last trial to end in a state (failures), the earliest and latest step
    # early stopping pruned at. Metrics may hold NaN, which SQLite's JSON functions refuse (a plain json_extract
    # in an index would make storing such a trial fail): the expression asks json_valid first.
    """
    CREATE INDEX trials_job_status_reward ON trials (job_id, status, reward);
    CREATE INDEX trials_job_status_finished ON trials (job_id, status, finished_at);
    CREATE INDEX trials_job_status_pruned_step ON trials (job_id, status,
        (CASE WHEN json_valid(metrics) THEN json_extract(metrics, '$.pruned_at_step') END));
    """,
    # 5: device leases shared by the runners of one store (store/leases.py). A lease is one device unit ("cuda:0",
    # "cpu:3") of one pool slot, a share of it (0..1), held by a runner token; a slot's lease is one row per
    # unit. A runner that has work but no free device records why in lease_waits (the order of who goes next).
    """
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        share REAL NOT NULL,
        job_id INTEGER NOT NULL REFERENCES jobs(id),
        runner_token TEXT NOT NULL,
        slot INTEGER NOT NULL,
        taken_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    );
    CREATE INDEX leases_device ON leases (device);
    CREATE INDEX leases_token ON leases (runner_token, slot);
    CREATE TABLE lease_waits (
        job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
        runner_token TEXT NOT NULL,
        priority INTEGER NOT NULL,
        devices TEXT NOT NULL,
        note TEXT,
        since REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
]


META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the file; 0 while it holds no schema. Reads only: it never takes a write lock."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return 0
        raise
    return int(row[0]) if row else 0


def _check_not_newer(version: int) -> None:
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema {version} is newer than this nasapp ({len(MIGRATIONS)}): upgrade nasapp"
        )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to the newest schema; returns the version it ends at.

    Each migration, with the `meta` table and the version row, is one `BEGIN IMMEDIATE` transaction, so a
    connection that reads the file meanwhile sees either no schema or all of it, never half. Two processes
    that open a new file at once both get here: the second waits for the first's write lock (busy timeout),
    then finds the version already recorded and does nothing. A connection whose schema is current takes no
    write lock at all.
    """
    version = schema_version(conn)
    _check_not_newer(version)
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)  # inside the lock: another connection may have migrated meanwhile
            _check_not_newer(found)
            if found < number:
                conn.execute(META)
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(number),)
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
