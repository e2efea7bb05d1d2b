"""Multi-objective benchmarks: the hypervolume of the front each search found, the table's metric against one
objective column to minimise (FLOPs, latency).

Both axes are normalised by the table's range, so 1.0 would be a single architecture that is the table's best on
the metric and its smallest on the objective; the reference point is the table's worst on both. The figure is
the area the found front dominates within that box (larger is better).
"""

from __future__ import annotations

import statistics

from nasapp.engine.benchmarks.compare import StrategyResult
from nasapp.engine.benchmarks.harness import SearchRun
from nasapp.engine.benchmarks.report import confidence_interval
from nasapp.engine.benchmarks.table import TabularBenchmark
from nasapp.engine.errors import NasappError


def hypervolume_2d(points: list[tuple[float, float]]) -> float:
    """The area dominated by ``points`` (both coordinates in [0, 1], larger is better) over the origin."""
    area, reach = 0.0, 0.0
    for x, y in sorted(points, reverse=True):  # by the first axis, best first
        if y > reach:
            area += x * (y - reach)
            reach = y
    return area


def run_hypervolume(table: TabularBenchmark, run: SearchRun, budget: int) -> float:
    (column,) = table.objectives
    metric, objective = list(table.values.values()), list(table.objectives[column].values())
    sign = 1.0 if table.direction == "max" else -1.0
    worst_metric = min(sign * v for v in metric)
    metric_span = (max(sign * v for v in metric) - worst_metric) or 1.0
    worst_objective, best_objective = max(objective), min(objective)
    objective_span = (worst_objective - best_objective) or 1.0
    points = []
    for value, extra in zip(run.values[:budget], run.objectives[:budget], strict=True):
        if value is not None and column in extra:
            points.append(((sign * value - worst_metric) / metric_span,
                           (worst_objective - extra[column]) / objective_span))
    return hypervolume_2d(points)


def add_hypervolumes(table: TabularBenchmark, results: list[StrategyResult], budgets: list[int]) -> None:
    """Put ``{"hypervolume": {budget: {"mean", "ci95"}}}`` into each result's ``extra``."""
    if len(table.objectives) != 1:
        raise NasappError("the hypervolume is computed for one objective column beside the metric; give one in"
                          f" --objectives (got {len(table.objectives)})")
    for result in results:
        figures = {}
        for budget in budgets:
            volumes = [run_hypervolume(table, run, budget) for run in result.runs]
            low, high = _interval(volumes)
            figures[str(budget)] = {"mean": round(statistics.fmean(volumes), 6), "ci95": [low, high]}
        result.extra["hypervolume"] = figures


def _interval(values: list[float]) -> tuple[float, float]:
    low, high = confidence_interval(values)
    return round(low, 6), round(high, 6)
