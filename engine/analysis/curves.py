"""What a chart of the analysis needs, as plain records: parallel-coordinates rows (every decision on [0, 1], and
the reward) and the learning curves of a bounded set of trials."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nasapp.engine.analysis.decisions import DecisionTable
from nasapp.store import Store

MAX_ROWS = 500
MAX_CURVES = 20


@dataclass(frozen=True)
class ParallelRow:
    trial: int
    reward: float
    values: dict[str, float | None]  # decision path -> its value on [0, 1]; None where the trial does not use it


@dataclass(frozen=True)
class LearningCurve:
    trial: int
    metric: str
    steps: list[float]
    values: list[float]


def parallel_rows(table: DecisionTable, direction: str, limit: int = MAX_ROWS) -> list[ParallelRow]:
    """The rows of the ``limit`` best trials of the table, best first."""
    rows = []
    for row in _best_rows(table, direction, limit):
        values = {d.path: None if math.isnan(v) else d.normalised(float(v))
                  for d, v in zip(table.decisions, table.values[row], strict=True)}
        rows.append(ParallelRow(table.numbers[row], float(table.rewards[row]), values))
    return rows


def learning_curves(store: Store, table: DecisionTable, metric: str, direction: str,
                    limit: int = MAX_CURVES) -> list[LearningCurve]:
    """The intermediate reports of ``metric`` by the ``limit`` best trials of the table, best first (a trial
    that reported none of it has no curve)."""
    curves = []
    for row in _best_rows(table, direction, limit):
        points = [(m["step"], m["values"][metric]) for m in store.metrics(table.trial_ids[row])
                  if isinstance(m["values"].get(metric), int | float)]
        if points:
            curves.append(LearningCurve(table.numbers[row], metric, [float(s) for s, _ in points],
                                        [float(v) for _, v in points]))
    return curves


def _best_rows(table: DecisionTable, direction: str, limit: int) -> list[int]:
    order = np.argsort(-table.rewards if direction == "max" else table.rewards, kind="stable")
    return [int(i) for i in order[:limit]]
