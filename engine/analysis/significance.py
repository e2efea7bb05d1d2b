"""Is a decision's effect on the reward more than noise? Kruskal-Wallis across a choice's options, Spearman's rank
correlation for integers, lengths and floats; over the trials that use the decision; Holm's correction across
all decisions, so "significant" holds for the family at the given level."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from nasapp.engine.analysis.decisions import Decision

ALPHA = 0.05


@dataclass(frozen=True)
class Significance:
    test: str  # "kruskal" | "spearman"
    statistic: float | None  # H, or Spearman's rho (sign: against the reward as stored); None when untestable
    p_value: float  # uncorrected; 1.0 when untestable (a single level, or fewer than 3 trials)
    p_holm: float
    significant: bool


def significance(decisions: list[Decision], values: np.ndarray, rewards: np.ndarray,
                 alpha: float = ALPHA) -> list[Significance]:
    raw = [_test(d, values[:, column], rewards) for column, d in enumerate(decisions)]
    corrected = holm([p for _, _, p in raw])
    return [Significance(test, statistic, p, p_holm, p_holm < alpha)
            for (test, statistic, p), p_holm in zip(raw, corrected, strict=True)]


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, made monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _test(decision: Decision, column: np.ndarray, rewards: np.ndarray) -> tuple[str, float | None, float]:
    used = ~np.isnan(column)
    x, y = column[used], rewards[used]
    test = "kruskal" if decision.categorical else "spearman"
    if len(x) < 3 or len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return test, None, 1.0
    if decision.categorical:
        groups = [y[x == level] for level in np.unique(x)]
        statistic, p = stats.kruskal(*groups)
    else:
        statistic, p = stats.spearmanr(x, y)
    if not math.isfinite(p):
        return test, None, 1.0
    return test, float(statistic), float(p)
