"""The Pareto front of a job's succeeded trials over two metrics: what `nasapp pareto`, the dashboard's
chart and `JobHandle.pareto()` show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.rewards.pareto import metric_direction, metric_value, pareto_front
from nasapp.store.records import Job, Trial

TIMED = ("latency_ms", "latency_p90_ms", "memory_mb", "macs", "flops")


@dataclass(frozen=True)
class Front:
    x: str
    y: str
    x_dir: str
    y_dir: str
    trials: list[Trial]  # every succeeded trial
    usable: list[Trial]  # those that reported both metrics
    front: list[Trial]  # the non-dominated ones, by x ascending


def job_front(store: Any, job: Job, x: str, y: str, x_dir: str | None = None, y_dir: str | None = None) -> Front:
    """The front of ``job`` (directions from the metric names unless given); a NasappError when no trial
    reported both metrics."""
    reward_spec = job_spec(job).reward
    x_dir = x_dir or metric_direction(x, reward_spec)
    y_dir = y_dir or metric_direction(y, reward_spec)
    trials = store.trials(job.id, "succeeded")
    usable = [t for t in trials if metric_value(t, x) is not None and metric_value(t, y) is not None]
    if not usable:
        raise no_points_error(job, trials, x, y)
    return Front(x, y, x_dir, y_dir, trials, usable, pareto_front(usable, x=x, y=y, x_dir=x_dir, y_dir=y_dir))


def no_points_error(job: Job, trials: list[Trial], x: str, y: str) -> NasappError:
    label = f"job {job.id}"
    if not trials:
        return NasappError(f"{label} has no succeeded trials yet")
    for name in (x, y):
        if all(metric_value(t, name) is None for t in trials):
            reported = sorted({k for t in trials for k in t.metrics})
            if name in TIMED:
                return NasappError(f"no trial of {label} reported {name}: set [latency] device = \"cpu-ort\""
                                   " in the job file")
            return NasappError(f"no trial of {label} reported {name}; its trials reported: "
                               f"{', '.join(reported) or 'nothing'}")
    return NasappError(f"no trial of {label} reported both {x} and {y}")


def front_document(store: Any, job: Job, x: str, y: str, x_dir: str | None = None,
                   y_dir: str | None = None) -> dict[str, Any]:
    """The front as one JSON-able document; raises NasappError when no trial reported both metrics."""
    found = job_front(store, job, x, y, x_dir, y_dir)

    def row(trial: Trial) -> dict[str, Any]:
        return {"trial": trial.number, x: metric_value(trial, x), y: metric_value(trial, y),
                "reward": trial.reward, "arch": trial.arch}

    return {
        "job": job.id, "name": job.name, "x": x, "y": y, "x_dir": found.x_dir, "y_dir": found.y_dir,
        "trials": len(found.trials), "considered": len(found.usable),
        "skipped": len(found.trials) - len(found.usable),
        "front": [row(t) for t in found.front], "points": [row(t) for t in found.usable],
    }


def staircase(front: list[tuple[float, float]], x_dir: str) -> list[tuple[float, float]]:
    """The front (sorted by x) as a step line: between two trials, the y you can still reach is the
    previous trial's when smaller x is better (the next trial's when larger x is better)."""
    steps = front[:1]
    for (x0, y0), (x1, y1) in zip(front, front[1:], strict=False):
        steps += [(x1, y0) if x_dir == "min" else (x0, y1), (x1, y1)]
    return steps
