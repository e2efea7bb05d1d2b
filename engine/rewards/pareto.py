"""The Pareto front of a job's trials over two metrics (e.g. latency against accuracy).

A trial dominates another when it is at least as good on both metrics and strictly better on one. The front
is every trial no other trial dominates; two trials with the same two values are both on it (neither
dominates the other). Computed in O(n log n) by engine/rewards/nondominated.py: sort by x (best first),
sweep, keep a trial when its y beats every y seen at a better x.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.rewards.nondominated import nondominated
from nasapp.engine.rewards.options import RewardSpec
from nasapp.store.records import Trial

DIRECTIONS = ("min", "max")
# Metrics where smaller is better, by name or by ending; every other metric is taken as "max".
_MIN_NAMES = ("loss", "error", "params", "flops", "macs", "energy")
_MIN_SUFFIXES = ("_ms", "_mb", "_s", "_bytes", "_loss", "_error", "params", "flops", "macs")


def metric_direction(name: str, reward_spec: RewardSpec | Mapping[str, Any] | None = None) -> str:
    """Whether ``name`` is better small ("min") or large ("max"): the reward's own metric follows
    ``reward.direction``; latency, memory, sizes, times, losses and errors are "min"; the rest "max"."""
    reward = reward_spec if isinstance(reward_spec, RewardSpec) else RewardSpec.model_validate(reward_spec or {})
    if name == "reward" or (not reward.formula and name == reward.metric):
        return reward.direction
    lowered = name.lower()
    if lowered in _MIN_NAMES or lowered.endswith(_MIN_SUFFIXES) or lowered.startswith(("latency", "memory")):
        return "min"
    return "max"


def metric_value(trial: Trial | Mapping[str, Any], name: str) -> float | None:
    """A trial's value of ``name`` (``reward`` is the trial's reward; anything else a metric), or None when
    it was not reported or is not a finite number. ``trial``: a Trial record, or a plain point with
    ``reward`` and ``metrics`` keys."""
    if isinstance(trial, Mapping):
        value = trial.get("reward") if name == "reward" else (trial.get("metrics") or {}).get(name)
    else:
        value = trial.metric(name)
    return finite_number(value)


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _check_directions(x_dir: str, y_dir: str) -> None:
    for key, direction in (("x_dir", x_dir), ("y_dir", y_dir)):
        if direction not in DIRECTIONS:
            raise NasappError(f"{key}: {direction!r} is not \"min\" or \"max\"")


def front_indices(pairs: Sequence[tuple[float, float]], x_dir: str = "min", y_dir: str = "max") -> list[int]:
    """The indices of the non-dominated pairs among finite (x, y) ``pairs``, by x ascending (ties keep their
    input order): a sort and one pass (engine/rewards/nondominated.py)."""
    _check_directions(x_dir, y_dir)
    x_sign = -1.0 if x_dir == "min" else 1.0  # turn both into "larger is better"
    y_sign = -1.0 if y_dir == "min" else 1.0
    front = nondominated([(x_sign * xv, y_sign * yv) for xv, yv in pairs])
    return sorted(front, key=lambda order: (pairs[order][0], order))


def pareto_front(points: Iterable[Any], x: str = "latency_ms", y: str = "accuracy",
                 x_dir: str = "min", y_dir: str = "max") -> list[Any]:
    """The non-dominated trials among ``points`` (Trial records or dicts with ``metrics``), sorted by x ascending
    (ties keep their input order). Trials lacking either metric, or with a non-finite value, are skipped."""
    _check_directions(x_dir, y_dir)
    kept, pairs = [], []
    for trial in points:
        xv, yv = metric_value(trial, x), metric_value(trial, y)
        if xv is not None and yv is not None:
            kept.append(trial)
            pairs.append((xv, yv))
    return [kept[i] for i in front_indices(pairs, x_dir, y_dir)]
