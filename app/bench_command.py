"""`nasapp bench`: search strategies on a tabular benchmark, many seeds each, against random search."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import json_document, plain
from nasapp.engine.benchmarks.compare import StrategyResult, compare, document, strategy_options
from nasapp.engine.benchmarks.report import default_budgets, regret_chart
from nasapp.engine.benchmarks.table import TabularBenchmark, load_table
from nasapp.engine.errors import NasappError

MAX_SEEDS = 10_000
MAX_BUDGET = 1_000_000


def bench_command(table_path: Path, space: str, arch_column: str, metric_column: str, direction: str,
                  strategies: str, seeds: int, budget: int, at: str | None, options: list[str],
                  objectives: str | None, workers: int | None, as_json: bool, csv_out: Path | None,
                  out: Console, err: Console) -> None:
    _check_ranges(seeds, budget, workers, direction)
    budgets = _budgets(at, budget)
    objective_columns = _names(objectives)
    chosen = strategy_options(_names(strategies), options, objective_columns)
    proxy_columns = sorted({str(o.proxy) for o in chosen.values() if hasattr(o, "proxy")})
    table = load_table(table_path, space, arch_column, metric_column, direction, objective_columns, proxy_columns)
    if not as_json:
        out.print(plain(f"{table.path}: {len(table.values)} architectures, optimum {table.metric} ="
                        f" {table.optimum:g}; {seeds} seeds x {budget} trials per strategy"))
    results = compare(table, chosen, seeds, budget, budgets, workers, _progress(err, seeds))
    if objective_columns:
        from nasapp.engine.benchmarks.fronts import add_hypervolumes

        add_hypervolumes(table, results, budgets)
    if csv_out is not None:
        _write_csv(csv_out, table, results)
    if as_json:
        out.print(json_document(document(table, results, seeds, budget)), markup=False)
        return
    _print_table(out, table, results, budgets)
    out.print(regret_chart({r.name: r.curve for r in results}), markup=False)
    if csv_out is not None:
        out.print(plain(f"per-trial values written to {csv_out}"))


def _check_ranges(seeds: int, budget: int, workers: int | None, direction: str) -> None:
    if not 1 <= seeds <= MAX_SEEDS:
        raise NasappError(f"--seeds {seeds}: give 1 to {MAX_SEEDS}")
    if not 1 <= budget <= MAX_BUDGET:
        raise NasappError(f"--budget {budget}: give 1 to {MAX_BUDGET} trials")
    if workers is not None and workers < 1:
        raise NasappError(f"--workers {workers}: give 1 or more")
    if direction not in ("max", "min"):
        raise NasappError(f"--direction {direction!r}: give max (higher is better) or min")


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _budgets(text: str | None, budget: int) -> list[int]:
    if not text:
        return default_budgets(budget)
    try:
        budgets = sorted({int(part) for part in _names(text)})
    except ValueError:
        raise NasappError(f"--at {text!r}: give trial counts separated by commas, e.g. 50,100,200") from None
    if not budgets or budgets[0] < 1 or budgets[-1] > budget:
        raise NasappError(f"--at {text!r}: every count must be between 1 and --budget ({budget})")
    return budgets


def _progress(err: Console, seeds: int):
    live = sys.stderr.isatty()

    def report(name: str, done: int) -> None:
        if live:
            err.print(f"\r{name}: {done}/{seeds} seeds", end="", markup=False)
            if done == seeds:
                err.print("", markup=False)
        elif done == seeds:
            err.print(f"{name}: {seeds} seeds done", markup=False)

    return report


def _print_table(out: Console, table: TabularBenchmark, results: list[StrategyResult], budgets: list[int]) -> None:
    grid = Table(box=None, title=f"mean regret of {table.metric} (optimum {table.optimum:g}) ±95% CI, and the"
                                 " share of seeds that found the optimum", title_justify="left")
    grid.add_column("strategy")
    for b in budgets:
        grid.add_column(f"after {b}", justify="right")
    grid.add_column("seconds", justify="right")
    for result in results:
        cells = [f"{f.mean_regret:.3f} ±{(f.ci95[1] - f.ci95[0]) / 2:.3f} {f.hit_rate:4.0%}"
                 for f in (result.budgets[b] for b in budgets)]
        grid.add_row(result.name, *cells, f"{result.seconds:.1f}")
    out.print(grid)
    if results and "hypervolume" in results[0].extra:
        _print_hypervolumes(out, table, results, budgets)


def _print_hypervolumes(out: Console, table: TabularBenchmark, results: list[StrategyResult],
                        budgets: list[int]) -> None:
    (column,) = table.objectives
    grid = Table(box=None, title=f"mean hypervolume of the front, {table.metric} against {column} (normalised"
                                 " to the table's ranges; larger is better) [95% CI]", title_justify="left")
    grid.add_column("strategy")
    for b in budgets:
        grid.add_column(f"after {b}", justify="right")
    for result in results:
        figures = result.extra["hypervolume"]
        grid.add_row(result.name, *(f"{figures[str(b)]['mean']:.4f} [{figures[str(b)]['ci95'][0]:.4f},"
                                    f" {figures[str(b)]['ci95'][1]:.4f}]" for b in budgets))
    out.print(grid)


def _write_csv(path: Path, table: TabularBenchmark, results: list[StrategyResult]) -> None:
    """One row per trial: strategy, seed, trial, the table's value (empty: not in the table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["strategy", "seed", "trial", table.metric])
        for result in results:
            for run in result.runs:
                for number, value in enumerate(run.values):
                    writer.writerow([result.name, run.seed, number, "" if value is None else value])
