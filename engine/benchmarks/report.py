"""Figures of many seeded searches: mean best and regret at several budgets with 95% confidence intervals,
the share of seeds that reached the table's optimum, and the mean-regret curve."""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from scipy import stats

from nasapp.engine.benchmarks.harness import SearchRun
from nasapp.engine.benchmarks.table import TabularBenchmark

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # plotext ends lines with colour resets even when colourless


@dataclass(frozen=True)
class AtBudget:
    mean_best: float
    mean_regret: float
    ci95: tuple[float, float]  # of the mean regret (Student's t over seeds)
    hit_rate: float  # share of seeds whose best equals the optimum by this budget

    def to_json(self) -> dict[str, object]:
        return {"mean_best": round(self.mean_best, 6), "mean_regret": round(self.mean_regret, 6),
                "ci95": [round(self.ci95[0], 6), round(self.ci95[1], 6)], "hit_rate": round(self.hit_rate, 4)}


def best_so_far(run: SearchRun, direction: str) -> list[float]:
    """The best table value after each trial (NaN until a trial was found in the table)."""
    better = max if direction == "max" else min
    best, curve = math.nan, []
    for value in run.values:
        if value is not None:
            best = value if math.isnan(best) else better(best, value)
        curve.append(best)
    return curve


def regret_curves(table: TabularBenchmark, runs: list[SearchRun]) -> list[list[float]]:
    """Per seed, |optimum - best so far| after each trial (NaN before the first value)."""
    optimum = table.optimum
    return [[abs(optimum - best) for best in best_so_far(run, table.direction)] for run in runs]


def at_budget(table: TabularBenchmark, runs: list[SearchRun], budget: int) -> AtBudget:
    """The figures after ``budget`` trials (a seed that found nothing in the table counts as the worst row)."""
    worst = min(table.values.values()) if table.direction == "max" else max(table.values.values())
    bests = []
    for run in runs:
        best = best_so_far(run, table.direction)[budget - 1]
        bests.append(worst if math.isnan(best) else best)
    regrets = [abs(table.optimum - best) for best in bests]
    mean = statistics.fmean(regrets)
    return AtBudget(statistics.fmean(bests), mean, confidence_interval(regrets),
                    sum(regret == 0 for regret in regrets) / len(regrets))


def confidence_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """The Student-t interval of the mean of ``values`` (a point when there is one value or no spread), cut
    at 0 below: the values are regrets, never negative."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return max(0.0, mean - half), mean + half


def default_budgets(budget: int) -> list[int]:
    """A quarter, half and all of the budget (50, 100, 200 for 200), without repeats."""
    return sorted({max(1, budget // 4), max(1, budget // 2), budget})


def mean_curve(curves: list[list[float]]) -> list[float]:
    """The mean over seeds at each trial, skipping seeds with no value yet (NaN when none has one)."""
    means = []
    for column in zip(*curves, strict=True):
        known = [v for v in column if not math.isnan(v)]
        means.append(statistics.fmean(known) if known else math.nan)
    return means


def regret_chart(curves: dict[str, list[float]], width: int = 100, height: int = 24) -> str:
    """A plotext line chart of mean regret against trials, one line per strategy (log scale)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.clear_color()  # plain text: the chart is printed as it is, also into files and pipes
    for name, curve in curves.items():
        points = [(i + 1, v) for i, v in enumerate(curve) if not math.isnan(v) and v > 0]
        if points:
            plt.plot([p[0] for p in points], [p[1] for p in points], label=name, marker="braille")
    plt.yscale("log")
    plt.title("mean regret against trials (log scale; lower is better)")
    plt.xlabel("trials")
    return _ANSI.sub("", plt.build())
