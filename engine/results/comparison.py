"""A job against random search on the same problem, for the report: which random job to compare with, and the
figures (best rewards at the same number of trials, the best so far of each as a step line).

The rule: ``--against JOB`` names the job; without it, the newest other job of the store whose strategy is
``random`` and that searched the same problem: the same space (its hash), data, trainer and reward. A job
that is itself random search is compared with nothing unless a job is named.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.store.aggregates import metric_points
from nasapp.store.records import Job

SAME_PROBLEM = ("data", "trainer", "reward")  # job-file tables that must match (besides the space)

Point = tuple[float, float]


@dataclass(frozen=True)
class Side:
    job: int
    name: str
    strategy: str
    trials: int  # succeeded trials with a reward
    best: float | None
    best_so_far: list[Point]  # (trial number, best reward so far) at each improvement and at the last trial
    rewards: list[float]  # by trial number


@dataclass(frozen=True)
class Comparison:
    ours: Side
    random: Side
    budget: int  # the trials both have
    ours_at_budget: float | None
    random_at_budget: float | None
    to_match: int | None  # how many of our trials it took to match random search's best (None: never)
    differences: list[str]  # job-file tables that differ (only when the job was named)


def space_hash(job: Job) -> str:
    """sha256 of the job's space as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(job.space, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def strategy_of(job: Job) -> str:
    return str(job.spec.get("strategy", {}).get("name", "?"))


def random_job(store: Any, job: Job) -> Job | None:
    """The newest other random-search job of the store on the same problem (None when there is none, or when
    ``job`` is itself random search)."""
    if strategy_of(job) == "random":
        return None
    candidates = [other for other in store.jobs() if other.id != job.id and strategy_of(other) == "random"
                  and not _differences(job, other)]
    return max(candidates, key=lambda other: (other.created_at, other.id), default=None)


def compare(store: Any, job: Job, other: Job, direction: str) -> Comparison:
    """Raises NasappError when ``other`` searched another space or with the opposite reward direction."""
    if space_hash(other) != space_hash(job):
        raise NasappError(f"job {other.id} searched another space than job {job.id}; compare jobs of one space")
    if other.spec.get("reward", {}).get("direction") != job.spec.get("reward", {}).get("direction"):
        raise NasappError(f"job {other.id} optimises its reward in the other direction than job {job.id}")
    ours, theirs = _side(store, job, direction), _side(store, other, direction)
    budget = min(ours.trials, theirs.trials)
    return Comparison(ours, theirs, budget, _best(ours.rewards[:budget], direction),
                      _best(theirs.rewards[:budget], direction), _to_match(ours.rewards, theirs.best, direction),
                      _differences(job, other))


def _differences(job: Job, other: Job) -> list[str]:
    found = ["space"] if space_hash(job) != space_hash(other) else []
    return found + [table for table in SAME_PROBLEM if job.spec.get(table) != other.spec.get(table)]


def _side(store: Any, job: Job, direction: str) -> Side:
    _, rows = metric_points(store, job.id, "reward", "reward")
    points = [(float(number), float(reward)) for number, reward, _, _ in rows
              if isinstance(reward, int | float) and math.isfinite(reward)]
    rewards = [reward for _, reward in points]
    return Side(job.id, job.name, strategy_of(job), len(points), _best(rewards, direction),
                best_so_far(points, direction), rewards)


def best_so_far(points: list[Point], direction: str) -> list[Point]:
    """The step line's corners: each improvement (drawn as a step up from the best before), and the last trial
    at the best reached."""
    line: list[Point] = []
    for number, reward in points:
        if not line or (reward > line[-1][1] if direction == "max" else reward < line[-1][1]):
            if line:
                line.append((number, line[-1][1]))
            line.append((number, reward))
    if line and points and points[-1][0] != line[-1][0]:
        line.append((points[-1][0], line[-1][1]))
    return line


def _best(rewards: list[float], direction: str) -> float | None:
    if not rewards:
        return None
    return max(rewards) if direction == "max" else min(rewards)


def _to_match(rewards: list[float], target: float | None, direction: str) -> int | None:
    if target is None:
        return None
    for count, reward in enumerate(rewards, start=1):
        if (reward >= target) if direction == "max" else (reward <= target):
            return count
    return None
