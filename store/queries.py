"""Cheap read-only queries for live views (the TUI): change detection and incremental reads.

Everything here only reads. A dashboard polls these every tick, so each query touches only what changed
since the last tick: `data_version` tells whether anything was committed at all, `trial_rows(after_id=...)`
returns only new trials plus the few still open, `events_after` and `metrics_after` only new rows.
"""

from __future__ import annotations

import json
from typing import Any

from nasapp.store.db import FINISHED, TRIAL_STATES, Store, trial_record
from nasapp.store.records import TRIAL_COLUMNS, Trial

# Trial columns a table needs: everything but the architecture (the largest column by far).
TRIAL_LIST_COLUMNS = ("id", "job_id", "number", "status", "reason", "message", "reward", "metrics",
                      "attempts", "device", "created_at", "started_at", "finished_at")


def data_version(store: Store) -> int:
    """A number that changes whenever another connection commits to the database (SQLite data_version)."""
    return int(store.conn.execute("PRAGMA data_version").fetchone()[0])


def job_stats(store: Store) -> dict[int, dict[str, Any]]:
    """Per job: trial counts by status and the highest and lowest reward of its succeeded trials."""
    stats: dict[int, dict[str, Any]] = {}
    cursor = store.conn.execute(
        "SELECT job_id, status, COUNT(*), MAX(reward), MIN(reward) FROM trials GROUP BY job_id, status"
    )
    for job_id, status, count, high, low in cursor.fetchall():
        entry = stats.setdefault(job_id, {"counts": dict.fromkeys(TRIAL_STATES, 0),
                                          "best_max": None, "best_min": None})
        entry["counts"][status] = count
        if status == "succeeded":
            entry["best_max"], entry["best_min"] = high, low
    return stats


def stage2_job_ids(store: Store, job_id: int) -> list[int]:
    """Ids of the jobs that retrain job ``job_id``'s models (strategy ``given`` naming it as ``source_job``)."""
    cursor = store.conn.execute(
        "SELECT id FROM jobs WHERE json_extract(spec, '$.strategy.name') = 'given'"
        " AND json_extract(spec, '$.strategy.source_job') = ? ORDER BY id", (job_id,))
    return [row[0] for row in cursor.fetchall()]


def empty_stats() -> dict[str, Any]:
    return {"counts": dict.fromkeys(TRIAL_STATES, 0), "best_max": None, "best_min": None}


def finished_count(counts: dict[str, int]) -> int:
    return sum(counts.get(status, 0) for status in FINISHED)


def _trial_row(values: tuple) -> Trial:
    row = dict(zip(TRIAL_LIST_COLUMNS, values, strict=True))
    metrics = row["metrics"]
    row["metrics"] = json.loads(metrics) if metrics else {}
    return Trial(**row)


def trial_rows(store: Store, job_id: int, after_id: int = 0,
               ids: list[int] | tuple[int, ...] = ()) -> list[Trial]:
    """A job's trials without their architectures: those with id > after_id, plus the trials in `ids`.

    A live view keeps the largest id it has seen and the ids of trials that were not finished yet, so each
    tick reads only new trials and the ones that may have changed (trials change rows only until they end,
    or when a resume requeues them).
    """
    columns = ", ".join(f'"{c}"' for c in TRIAL_LIST_COLUMNS)
    rows = [_trial_row(values) for values in store.conn.execute(
        f"SELECT {columns} FROM trials WHERE id > ? AND job_id = ? ORDER BY id", (after_id, job_id)
    ).fetchall()]
    wanted = [i for i in ids if i <= after_id]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        rows.extend(_trial_row(values) for values in store.conn.execute(
            f"SELECT {columns} FROM trials WHERE job_id = ? AND id IN ({marks})", (job_id, *chunk)
        ).fetchall())
    return rows


def events_after(store: Store, job_id: int, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """A job's events with id > after_id, oldest first; at most the newest `limit` of them."""
    cursor = store.conn.execute(
        "SELECT id, ts, level, message FROM events WHERE job_id = ? AND id > ? ORDER BY id DESC LIMIT ?",
        (job_id, after_id, limit),
    )
    rows = [dict(zip(("id", "ts", "level", "message"), values, strict=True)) for values in cursor.fetchall()]
    return rows[::-1]


def metrics_after(store: Store, trial_id: int, after_id: int = 0) -> list[dict[str, Any]]:
    """A trial's intermediate reports with id > after_id, in step order."""
    cursor = store.conn.execute(
        'SELECT id, step, "values", ts FROM metrics WHERE trial_id = ? AND id > ? ORDER BY step, id',
        (trial_id, after_id),
    )
    return [{"id": i, "step": step, "values": json.loads(values), "ts": ts}
            for i, step, values, ts in cursor.fetchall()]


def succeeded_rewards(store: Store, job_id: int) -> list[tuple[int, float]]:
    """(id, reward) of a job's succeeded trials that have a reward, by trial number: what an analysis samples
    from before it reads any architecture (a job may hold 100,000 trials)."""
    cursor = store.conn.execute(
        "SELECT id, reward FROM trials WHERE job_id = ? AND status = 'succeeded' AND reward IS NOT NULL"
        " ORDER BY number", (job_id,))
    return [(trial_id, float(reward)) for trial_id, reward in cursor.fetchall()]


def trials_by_id(store: Store, job_id: int, ids: list[int] | tuple[int, ...]) -> list[Trial]:
    """The whole rows (architectures too) of a job's trials with these ids, by trial number."""
    columns = ", ".join(f'"{c}"' for c in TRIAL_COLUMNS)
    rows: list[Trial] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        cursor = store.conn.execute(
            f"SELECT {columns} FROM trials WHERE job_id = ? AND id IN ({', '.join('?' * len(chunk))})",
            (job_id, *chunk))
        rows.extend(_full_trial(values) for values in cursor.fetchall())
    return sorted(rows, key=lambda trial: trial.number)


def _full_trial(values: tuple) -> Trial:
    row = dict(zip(TRIAL_COLUMNS, values, strict=True))
    row["arch"] = json.loads(row["arch"])
    row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return trial_record(row)
