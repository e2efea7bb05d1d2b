"""The Pareto front of a job's succeeded trials over two metrics: what `nasapp pareto`, the dashboard's
chart and `JobHandle.pareto()` show."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.rewards.pareto import finite_number, front_indices, metric_direction, metric_value
from nasapp.store.aggregates import metric_names, metric_points, trials_numbered
from nasapp.store.records import Job, Trial

TIMED = ("latency_ms", "latency_p90_ms", "memory_mb", "macs", "flops")


class Point(NamedTuple):  # a tuple: 100,000 of them are made per front
    """A succeeded trial as a front sees it: its number, reward and two finite metric values."""

    number: int
    reward: float | None
    x: float
    y: float


@dataclass(frozen=True)
class Front:
    x: str
    y: str
    x_dir: str
    y_dir: str
    total: int  # the job's succeeded trials
    points: list[Point]  # those that reported both metrics, by number
    front: list[Trial]  # the non-dominated ones (whole records), by x ascending


def _points(rows: list[tuple]) -> list[Point]:
    """The rows (number, reward, x, y) whose x and y are finite numbers, as Points."""
    isfinite = math.isfinite
    return [Point(number, reward, float(xv), float(yv)) for number, reward, xv, yv in rows
            if type(xv) in _NUMBERS and type(yv) in _NUMBERS and isfinite(xv) and isfinite(yv)]


_NUMBERS = (float, int)  # what SQLite gives back for a JSON number (a bool comes back as an int 0/1)


def job_front(store: Any, job: Job, x: str, y: str, x_dir: str | None = None, y_dir: str | None = None) -> Front:
    """The front of ``job`` (directions from the metric names unless given); a NasappError when no trial
    reported both metrics. Reads two numbers per trial (SQL), and whole records only for the front's trials."""
    reward_spec = job_spec(job).reward
    x_dir = x_dir or metric_direction(x, reward_spec)
    y_dir = y_dir or metric_direction(y, reward_spec)
    total, rows = metric_points(store, job.id, x, y)
    points = _points(rows)
    if not points:
        raise no_points_error(store, job, total, rows, x, y)
    best = front_indices([(p.x, p.y) for p in points], x_dir, y_dir)
    return Front(x, y, x_dir, y_dir, total, points, trials_numbered(store, job.id, [points[i].number for i in best]))


def no_points_error(store: Any, job: Job, total: int, rows: list[tuple], x: str, y: str) -> NasappError:
    label = f"job {job.id}"
    if not total:
        return NasappError(f"{label} has no succeeded trials yet")
    for index, name in ((2, x), (3, y)):
        if all(finite_number(row[index]) is None for row in rows):
            if name in TIMED:
                return NasappError(f"no trial of {label} reported {name}: set [latency] device = \"cpu-ort\""
                                   " in the job file")
            reported = metric_names(store, job.id)
            return NasappError(f"no trial of {label} reported {name}; its trials reported: "
                               f"{', '.join(reported) or 'nothing'}")
    return NasappError(f"no trial of {label} reported both {x} and {y}")


def front_document(store: Any, job: Job, x: str, y: str, x_dir: str | None = None,
                   y_dir: str | None = None) -> dict[str, Any]:
    """The front as one JSON-able document (the front's trials with their architectures, every other point
    without); raises NasappError when no trial reported both metrics."""
    found = job_front(store, job, x, y, x_dir, y_dir)
    front = [{"trial": t.number, x: metric_value(t, x), y: metric_value(t, y), "reward": t.reward, "arch": t.arch}
             for t in found.front]
    return {
        "job": job.id, "name": job.name, "x": x, "y": y, "x_dir": found.x_dir, "y_dir": found.y_dir,
        "trials": found.total, "considered": len(found.points), "skipped": found.total - len(found.points),
        "front": front, "points": [{"trial": p.number, x: p.x, y: p.y, "reward": p.reward} for p in found.points],
    }


def staircase(front: list[tuple[float, float]], x_dir: str) -> list[tuple[float, float]]:
    """The front (sorted by x) as a step line: between two trials, the y you can still reach is the
    previous trial's when smaller x is better (the next trial's when larger x is better)."""
    steps = front[:1]
    for (x0, y0), (x1, y1) in zip(front, front[1:], strict=False):
        steps += [(x1, y0) if x_dir == "min" else (x0, y1), (x1, y1)]
    return steps
