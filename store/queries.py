"""Cheap read-only queries for live views (the TUI): change detection, incremental and windowed reads.

Everything here only reads. A dashboard polls these every tick, so each query touches only what changed
since the last tick: `data_version` tells whether anything was committed at all, `trial_rows(after_id=...)`
returns only new trials plus the few still open, `events_after` and `metrics_after` only new rows. A job
screen opens with a few summaries (`status_summary`, `recent_metrics`, `chart_rows`) and shows its table
through `ordered_trial_ids` (filter and sort in SQL) and `trials_by_ids` (the rows on screen).
"""

from __future__ import annotations

import json
import time
from typing import Any

from nasapp.store.aggregates import json_path
from nasapp.store.db import FINISHED, TRIAL_STATES, Store
from nasapp.store.records import Trial

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


def trials_by_ids(store: Store, job_id: int, ids: list[int] | tuple[int, ...]) -> list[Trial]:
    """The trials of job `job_id` among `ids` (without architectures), in no particular order."""
    return store.trials_among(job_id, "id", ids, TRIAL_LIST_COLUMNS)


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
    return rows + trials_by_ids(store, job_id, [i for i in ids if i <= after_id])


def status_summary(store: Store, job_id: int) -> dict[str, tuple[int, float | None, float | None, int]]:
    """Per status of a job's trials: (count, highest reward, lowest reward, longest note).

    The note is the failure reason and message joined by ": " (the trials table's last column); succeeded
    trials carry none, so only the others are read for it (the counts come from an index alone)."""
    notes = dict(store.conn.execute(
        "SELECT status, MAX(COALESCE(LENGTH(reason), 0) + COALESCE(LENGTH(message), 0)"
        " + CASE WHEN reason <> '' AND message <> '' THEN 2 ELSE 0 END)"
        " FROM trials WHERE job_id = ? AND status <> 'succeeded' GROUP BY status", (job_id,)).fetchall())
    cursor = store.conn.execute(
        "SELECT status, COUNT(*), MAX(reward), MIN(reward) FROM trials WHERE job_id = ? GROUP BY status", (job_id,))
    return {status: (count, high, low, notes.get(status) or 0) for status, count, high, low in cursor.fetchall()}


def max_trial_id(store: Store, job_id: int) -> int:
    row = store.conn.execute("SELECT MAX(id) FROM trials WHERE job_id = ?", (job_id,)).fetchone()
    return int(row[0] or 0)


def open_trial_ids(store: Store, job_id: int) -> list[int]:
    """The job's trials not finished yet (queued or running)."""
    cursor = store.conn.execute(
        "SELECT id FROM trials WHERE job_id = ? AND status IN ('queued', 'running') ORDER BY id", (job_id,))
    return [row[0] for row in cursor.fetchall()]


def recent_metrics(store: Store, job_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """The metrics of the job's newest `limit` trials that have any (which metrics the job reports)."""
    cursor = store.conn.execute(
        "SELECT metrics FROM trials WHERE job_id = ? AND metrics IS NOT NULL AND metrics <> '{}'"
        " ORDER BY number DESC LIMIT ?", (job_id, limit))
    return [json.loads(row[0]) for row in cursor.fetchall()]


def _sort_expression(column: str) -> tuple[str, tuple]:
    """A trials-table column's sort value in SQL (NULL: empty) and its parameters."""
    if column == "reward":
        return "reward", ()
    if column.startswith("m:"):  # numbers only, as the table's cells show them
        # metrics SQLite cannot read as JSON (NaN) sort as empty: CASE, unlike AND, never evaluates the rest
        return ("CASE WHEN json_valid(metrics) THEN CASE WHEN json_type(metrics, ?) IN ('integer', 'real')"
                " THEN json_extract(metrics, ?) END END", (json_path(column[2:]),) * 2)
    if column == "time":
        return ("CASE WHEN started_at IS NOT NULL THEN MAX(0, CASE WHEN status IN ('running', 'queued')"
                " THEN ? ELSE COALESCE(finished_at, ?) END - started_at) END", (time.time(),) * 2)
    if column == "note":
        return "COALESCE(NULLIF(reason, ''), NULLIF(message, ''))", ()
    if column in ("status", "device"):
        return column, ()
    raise ValueError(f"no trials column {column!r}")


# A condition of the trials table's filter: (field, operator, value). field: "reward", "number", "status",
# "m:NAME" (a metric), "a:PATH" (an architecture's value at a JSON path: "$.blocks[3].kernel") or "n:PATH"
# (the length of an architecture's list there: a repeat's length).
Condition = tuple[str, str, Any]
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")


def _condition_sql(condition: Condition) -> tuple[str, tuple]:
    field, operator, value = condition
    if operator not in OPERATORS:
        raise ValueError(f"no operator {operator!r}")
    if field in ("reward", "number", "status"):
        return f"{field} {operator} ?", (value,)
    if field.startswith("m:"):
        # metrics SQLite cannot read as JSON (NaN) match nothing: CASE, unlike AND, never evaluates the rest
        return (f"CASE WHEN json_valid(metrics) THEN json_extract(metrics, ?) {operator} ? END",
                (json_path(field[2:]), value))
    if field.startswith("a:"):
        return f"CASE WHEN json_valid(arch) THEN json_extract(arch, ?) {operator} ? END", (field[2:], value)
    if field.startswith("n:"):
        return f"CASE WHEN json_valid(arch) THEN json_array_length(arch, ?) {operator} ? END", (field[2:], value)
    raise ValueError(f"no trials field {field!r}")


def _where(job_id: int, status: str | None, conditions: tuple[Condition, ...]) -> tuple[str, tuple]:
    clauses, args = ["job_id = ?"], [job_id]
    if status is not None:
        clauses.append("status = ?")
        args.append(status)
    for condition in conditions:
        sql, values = _condition_sql(condition)
        clauses.append(f"({sql})")
        args.extend(values)
    return " AND ".join(clauses), tuple(args)


def ordered_trial_ids(store: Store, job_id: int, status: str | None, column: str, descending: bool,
                      conditions: tuple[Condition, ...] = ()) -> list[int]:
    """A job's trial ids, only those in `status` unless None and those meeting every condition (see
    Condition), sorted by a trials-table column ("number", "status", "reward", "m:NAME" for a metric, "time",
    "device", "note"): empty values last either way, ties in trial-number order. The trials table keeps this
    list and reads the rows it shows by id."""
    where, args = _where(job_id, status, conditions)
    if column == "number":
        order = "number DESC" if descending else "number"
        rows = store.conn.execute(f"SELECT id FROM trials WHERE {where} ORDER BY {order}", args).fetchall()
        return [row[0] for row in rows]
    expression, values = _sort_expression(column)
    sql = (f"SELECT id FROM (SELECT id, number, {expression} AS v FROM trials WHERE {where})"
           f" ORDER BY v IS NULL, v {'DESC' if descending else 'ASC'}, number")
    return [row[0] for row in store.conn.execute(sql, (*values, *args)).fetchall()]


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
