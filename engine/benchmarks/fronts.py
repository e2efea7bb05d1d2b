"""Multi-objective benchmarks: the hypervolume of the front each search found, the table's metric against one
objective column to minimise (FLOPs, latency).

The reference point is the table's *median* metric and its largest objective: the half of the table below the
median adds nothing (with the table's worst as reference, the many near-useless architectures of a NAS table
fill the box and every search, random included, scores about 0.98). Both axes are normalised by those ranges,
and the figure is the share of the table's own front's hypervolume that the search's front reaches: 1.0 means
it found every architecture of the true front.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

from nasapp.engine.benchmarks.compare import StrategyResult
from nasapp.engine.benchmarks.harness import SearchRun
from nasapp.engine.benchmarks.report import confidence_interval
from nasapp.engine.benchmarks.table import TabularBenchmark
from nasapp.engine.errors import NasappError


def hypervolume_2d(points: list[tuple[float, float]]) -> float:
    """The area dominated by ``points`` (larger is better on both axes) over the origin; points with a
    negative coordinate add nothing."""
    area, reach = 0.0, 0.0
    for x, y in sorted(points, reverse=True):  # by the first axis, best first
        if x > 0 and y > reach:
            area += x * (y - reach)
            reach = y
    return area


@dataclass(frozen=True)
class Box:
    """The normalisation of one table: the reference point, the spans, and the true front's hypervolume."""

    column: str
    sign: float  # +1 when the metric is maximised, -1 when minimised
    reference_metric: float
    metric_span: float
    worst_objective: float
    objective_span: float
    optimum: float = 1.0

    def point(self, value: float, objective: float) -> tuple[float, float]:
        return ((self.sign * value - self.reference_metric) / self.metric_span,
                (self.worst_objective - objective) / self.objective_span)


def table_box(table: TabularBenchmark) -> Box:
    (column,) = table.objectives
    sign = 1.0 if table.direction == "max" else -1.0
    metric = [sign * v for v in table.values.values()]
    objective = list(table.objectives[column].values())
    reference = statistics.median(metric)
    box = Box(column, sign, reference, (max(metric) - reference) or 1.0, max(objective),
              (max(objective) - min(objective)) or 1.0)
    front = [box.point(table.values[key], objective) for key, objective in table.objectives[column].items()
             if key in table.values]
    return dataclasses.replace(box, optimum=hypervolume_2d(front) or 1.0)


def run_hypervolume(box: Box, run: SearchRun, budget: int) -> float:
    """The share of the table's front hypervolume that ``run``'s first ``budget`` trials reach."""
    points = [box.point(value, extra[box.column])
              for value, extra in zip(run.values[:budget], run.objectives[:budget], strict=True)
              if value is not None and box.column in extra]
    return hypervolume_2d(points) / box.optimum


def add_hypervolumes(table: TabularBenchmark, results: list[StrategyResult], budgets: list[int]) -> None:
    """Put ``{"hypervolume": {budget: {"mean", "ci95"}}}`` into each result's ``extra``."""
    if len(table.objectives) != 1:
        raise NasappError("the hypervolume is computed for one objective column beside the metric; give one in"
                          f" --objectives (got {len(table.objectives)})")
    box = table_box(table)
    for result in results:
        figures = {}
        for budget in budgets:
            volumes = [run_hypervolume(box, run, budget) for run in result.runs]
            low, high = _interval(volumes)
            figures[str(budget)] = {"mean": round(statistics.fmean(volumes), 6), "ci95": [low, high]}
        result.extra["hypervolume"] = figures


def _interval(values: list[float]) -> tuple[float, float]:
    low, high = confidence_interval(values)
    return round(low, 6), round(high, 6)
