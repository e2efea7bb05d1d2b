"""Figures about a job's trials computed by SQLite from its indexes, not by reading every trial into Python.

`ls`, `show` and the end-of-run summary call these on jobs of any size: each is one or a few queries whose
cost does not grow with the number of trials (an index seek) or grows only inside SQLite (a count over an
index). Metrics are JSON text that may hold NaN, which SQLite's JSON functions refuse: every extraction asks
`json_valid` first (`metric_sql`), and a row whose metrics are not valid JSON is decoded in Python instead.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from nasapp.store.db import Store, trial_record
from nasapp.store.records import Trial

# The columns a summary shows of a trial: everything but the architecture (the largest column by far).
_BRIEF = ("id", "job_id", "number", "status", "reason", "message", "reward", "metrics", "attempts", "device",
          "created_at", "started_at", "finished_at")
# As migration 4 indexes it (the same text, so SQLite uses the index).
PRUNED_STEP_SQL = "(CASE WHEN json_valid(metrics) THEN json_extract(metrics, '$.pruned_at_step') END)"


def json_path(name: str) -> str:
    """The JSON path of a metric named ``name`` (quoted: names may hold dots or spaces)."""
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def metric_sql(name: str) -> str:
    """An SQL expression for metric ``name`` of a trial row (NULL when missing or the metrics are not valid
    JSON); ``reward`` is the reward column. Takes one parameter: ``json_path(name)`` (none for reward)."""
    if name == "reward":
        return "reward"
    return "(CASE WHEN json_valid(metrics) THEN json_extract(metrics, ?) END)"


def _brief_trial(values: tuple) -> Trial:
    row = dict(zip(_BRIEF, values, strict=True))
    row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return trial_record(row)


def _brief_select() -> str:
    return ", ".join(f'"{c}"' for c in _BRIEF)


def ended_in(store: Store, job_id: int, status: str, *, last: bool) -> Trial | None:
    """The first (or the last) trial of ``job_id`` to end in ``status``, without its architecture."""
    order = "DESC" if last else "ASC"
    row = store.conn.execute(
        f"SELECT {_brief_select()} FROM trials WHERE job_id = ? AND status = ? AND finished_at IS NOT NULL"
        f" ORDER BY finished_at {order}, number {order} LIMIT 1", (job_id, status)).fetchone()
    return _brief_trial(row) if row else None


def reasons(store: Store, job_id: int, status: str) -> dict[str, int]:
    """How many trials of ``job_id`` in ``status`` per reason (no reason counts as "error")."""
    cursor = store.conn.execute(
        "SELECT COALESCE(reason, 'error'), COUNT(*) FROM trials WHERE job_id = ? AND status = ? GROUP BY 1",
        (job_id, status))
    return dict(cursor.fetchall())


def pruned_step_range(store: Store, job_id: int) -> tuple[float | None, float | None]:
    """The earliest and the latest step early stopping pruned a trial of ``job_id`` at (None when unknown)."""
    found = []
    for order in ("ASC", "DESC"):
        row = store.conn.execute(
            f"SELECT {PRUNED_STEP_SQL} FROM trials WHERE job_id = ? AND status = 'pruned'"
            f" AND {PRUNED_STEP_SQL} IS NOT NULL ORDER BY {PRUNED_STEP_SQL} {order} LIMIT 1", (job_id,)).fetchone()
        found.append(float(row[0]) if row and isinstance(row[0], int | float) else None)
    return found[0], found[1]


def newest_pairs(store: Store, job_id: int, first: str, second: str, limit: int) -> list[tuple[float, float]]:
    """(first, second) metric pairs of those of the newest ``limit`` succeeded trials of ``job_id`` that report
    both, newest first."""
    a, b = metric_sql(first), metric_sql(second)
    params = [json_path(name) for name in (first, second) if name != "reward"]
    cursor = store.conn.execute(
        f"SELECT a, b FROM (SELECT {a} AS a, {b} AS b, number FROM (SELECT reward, metrics, number FROM trials"
        " WHERE job_id = ? AND status = 'succeeded' ORDER BY number DESC LIMIT ?))"
        " WHERE a IS NOT NULL AND b IS NOT NULL ORDER BY number DESC", (*params, job_id, limit))
    return [(float(x), float(y)) for x, y in cursor.fetchall()]


def metric_points(store: Store, job_id: int, x: str, y: str) -> tuple[int, list[tuple[int, float | None,
                                                                                        Any, Any]]]:
    """Every succeeded trial of ``job_id`` as (number, reward, x value, y value), by number, and how many
    succeeded trials there are: what `nasapp pareto` and the dashboard's charts are built from. Values come
    back as stored (None when missing; NaN and infinities as Python floats for rows whose metrics SQLite
    cannot read as JSON, which are decoded here)."""
    params = [json_path(name) for name in (x, y) if name != "reward"]
    try:  # one pass that parses each row's JSON once per metric: what a job without NaN metrics takes
        rows = store.conn.execute(
            f"SELECT number, reward, {_plain_sql(x)}, {_plain_sql(y)} FROM trials WHERE job_id = ?"
            " AND status = 'succeeded' ORDER BY number", (*params, job_id)).fetchall()
        return len(rows), rows
    except sqlite3.OperationalError as error:
        if "malformed JSON" not in str(error):
            raise
    ex, ey = metric_sql(x), metric_sql(y)
    points = [tuple(row) for row in store.conn.execute(
        f"SELECT number, reward, {ex}, {ey} FROM trials WHERE job_id = ? AND status = 'succeeded'"
        " AND json_valid(IFNULL(metrics, '{}')) ORDER BY number", (*params, job_id)).fetchall()]
    for number, reward, metrics in store.conn.execute(
            "SELECT number, reward, metrics FROM trials WHERE job_id = ? AND status = 'succeeded'"
            " AND NOT json_valid(IFNULL(metrics, '{}'))", (job_id,)).fetchall():
        values = json.loads(metrics) if metrics else {}
        points.append((number, reward, reward if x == "reward" else values.get(x),
                       reward if y == "reward" else values.get(y)))
    points.sort(key=lambda point: point[0])
    return len(points), points  # type: ignore[return-value]


def _plain_sql(name: str) -> str:
    """metric_sql without the json_valid guard: fails on a row SQLite cannot parse (the caller falls back)."""
    return "reward" if name == "reward" else "json_extract(metrics, ?)"


def trials_numbered(store: Store, job_id: int, numbers: list[int]) -> list[Trial]:
    """Trials ``numbers`` of ``job_id`` (whole records), in the order given (a front, a top K: a few)."""
    found = {trial.number: trial for trial in store.trials_among(job_id, "number", numbers)}
    return [found[n] for n in numbers if n in found]


def metric_names(store: Store, job_id: int, newest: int = 1000) -> list[str]:
    """The metric names the newest ``newest`` succeeded trials of ``job_id`` reported, sorted."""
    cursor = store.conn.execute(
        "SELECT DISTINCT j.key FROM (SELECT metrics FROM trials WHERE job_id = ? AND status = 'succeeded'"
        " AND json_valid(IFNULL(metrics, '{}')) ORDER BY number DESC LIMIT ?) AS t, json_each(t.metrics) AS j",
        (job_id, newest))
    return sorted(row[0] for row in cursor.fetchall())


def device_seconds(store: Store, job_id: int) -> dict[str, tuple[int, float]]:
    """Per device label a trial ran on ("cuda:0", "cpu0", ...): how many ended trials ran there and their
    summed time from start to end, in seconds (trials that never started or have not ended are left out)."""
    cursor = store.conn.execute(
        "SELECT COALESCE(device, '?'), COUNT(*), SUM(MAX(0, finished_at - started_at)) FROM trials"
        " WHERE job_id = ? AND started_at IS NOT NULL AND finished_at IS NOT NULL GROUP BY 1", (job_id,))
    return {device: (count, float(seconds or 0.0)) for device, count, seconds in cursor.fetchall()}
