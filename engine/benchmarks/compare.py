"""`nasapp bench` without the printing: strategies by name with option overrides, every seed of each searched
on the table, and the figures as one JSON-ready document."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasapp.engine.benchmarks.harness import SearchRun, run_seeds
from nasapp.engine.benchmarks.report import AtBudget, at_budget, mean_curve, regret_curves
from nasapp.engine.benchmarks.table import TabularBenchmark
from nasapp.engine.errors import NasappError
from nasapp.engine.strategies import STRATEGIES, StrategyOptions

BASELINE = "random"  # always compared against


@dataclass
class StrategyResult:
    name: str  # the label it is benchmarked under: the strategy's name, or LABEL of a LABEL=NAME entry
    options: StrategyOptions
    seconds: float  # wall seconds of all its seeds (in parallel)
    budgets: dict[int, AtBudget]
    curve: list[float]  # mean regret after each trial
    runs: list[SearchRun] = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. hypervolume figures of a multi-objective bench


def strategy_options(entries: list[str], overrides: list[str], objectives: list[str]) -> dict[str, StrategyOptions]:
    """The validated ``[strategy]`` table of each entry by its label, ``random`` first and always included.

    An entry is a strategy's name, or ``LABEL=NAME`` to benchmark a second setting of the same strategy under
    its own label (``tpe-uni=tpe`` with ``--option tpe-uni.multivariate=false``). ``overrides``:
    ``LABEL.KEY=VALUE`` (VALUE read as JSON when it parses, else as text), e.g. ``evolution.population=10``.
    ``objectives`` go to every strategy whose options take them.
    """
    labels = {BASELINE: BASELINE}
    for entry in entries:
        label, equals, name = entry.partition("=")
        label, name = label.strip(), (name.strip() if equals else label.strip())
        if not label or not name:
            raise NasappError(f"--strategies {entry!r}: give a strategy's name, or LABEL=NAME")
        STRATEGIES.get(name)  # an unknown name: the error lists the known ones
        if labels.get(label, name) != name:
            raise NasappError(f"--strategies: the label {label!r} names two strategies")
        labels[label] = name
    tables: dict[str, dict[str, Any]] = {label: {"name": name} for label, name in labels.items()}
    for text in overrides:
        target, key, value = _parse_override(text)
        if target not in tables:
            raise NasappError(f"--option {text}: {target!r} is not one of the strategies benchmarked"
                              f" ({', '.join(tables)})")
        tables[target][key] = value
    if objectives:
        for table in tables.values():
            if "objectives" in STRATEGIES.get(table["name"]).options.model_fields:
                table.setdefault("objectives", list(objectives))
    return {label: STRATEGIES.validate(table) for label, table in tables.items()}


def _parse_override(text: str) -> tuple[str, str, Any]:
    target, dot, rest = text.partition(".")
    key, equals, raw = rest.partition("=")
    if not dot or not equals or not target or not key:
        raise NasappError(f"--option {text!r}: write STRATEGY.KEY=VALUE, e.g. evolution.population=10")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return target, key, value


def compare(table: TabularBenchmark, options: dict[str, StrategyOptions], seeds: int, budget: int,
            budgets: list[int], workers: int | None = None,
            on_progress: Callable[[str, int], None] | None = None) -> list[StrategyResult]:
    """Search ``seeds`` seeds (0, 1, ...) of every strategy (by label), one strategy after another."""
    results = []
    for label, option in options.items():
        def done(n: int, name: str = label) -> None:
            if on_progress:
                on_progress(name, n)

        runs, seconds = run_seeds(table, option, list(range(seeds)), budget, workers, done)
        results.append(StrategyResult(label, option, seconds, {b: at_budget(table, runs, b) for b in budgets},
                                      mean_curve(regret_curves(table, runs)), runs))
    return results


def document(table: TabularBenchmark, results: list[StrategyResult], seeds: int, budget: int) -> dict[str, Any]:
    """What `nasapp bench --json` prints."""
    return {
        "table": str(table.path),
        "metric": table.metric,
        "direction": table.direction,
        "optimum": table.optimum,
        "rows": len(table.values),
        "seeds": seeds,
        "budget": budget,
        "strategies": {
            result.name: {
                "options": result.options.model_dump(),
                "seconds": round(result.seconds, 2),
                "budgets": {str(b): figures.to_json() for b, figures in result.budgets.items()},
                "not_in_table": sum(v is None for run in result.runs for v in run.values),
                **result.extra,
            }
            for result in results
        },
    }
