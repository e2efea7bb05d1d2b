"""The reward per value of a decision: count, mean, quartiles and the best, for each option (or integer value, or
range of a float)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasapp.engine.analysis.decisions import Decision

MAX_LEVELS = 10  # integers with more distinct values, and floats, are cut into BINS ranges
BINS = 4


@dataclass(frozen=True)
class ChoiceStats:
    value: Any  # the option, the integer, or a range: "[0.1, 0.2)" (floats), "5..9" (integers, both included)
    count: int
    mean: float
    median: float
    best: float  # the highest reward, or the lowest when the reward is minimised
    q1: float
    q3: float


def choice_stats(decision: Decision, column: np.ndarray, rewards: np.ndarray, direction: str) -> list[ChoiceStats]:
    """One record per value the sampled trials used, in the decision's order (trials that do not use the
    decision are left out)."""
    used = ~np.isnan(column)
    x, y = column[used], rewards[used]
    levels = np.unique(x)
    if decision.categorical or len(levels) <= MAX_LEVELS:
        return [_stats(decision.label(level), y[x == level], direction) for level in levels]
    edges = _edges(decision)
    bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, BINS - 1)
    return [_stats(_range_label(decision, edges, b), y[bins == b], direction) for b in range(BINS) if (bins == b).any()]


def _stats(value: Any, rewards: np.ndarray, direction: str) -> ChoiceStats:
    q1, median, q3 = np.percentile(rewards, [25, 50, 75])
    best = rewards.max() if direction == "max" else rewards.min()
    return ChoiceStats(value, int(len(rewards)), float(rewards.mean()), float(median), float(best), float(q1),
                       float(q3))


def _edges(decision: Decision) -> np.ndarray:
    if decision.log:
        return np.geomspace(decision.low, decision.high, BINS + 1)
    return np.linspace(decision.low, decision.high, BINS + 1)


def _range_label(decision: Decision, edges: np.ndarray, b: int) -> str:
    if decision.kind == "floating":
        return f"[{edges[b]:.4g}, {edges[b + 1]:.4g}{']' if b == BINS - 1 else ')'}"
    last = int(decision.high) if b == BINS - 1 else int(np.ceil(edges[b + 1])) - 1
    return f"{int(np.ceil(edges[b]))}..{last}"
