"""Replaying a tabular benchmark as the trainer: one complete search per (strategy, seed), seeds in parallel.

A search asks its strategy for one architecture at a time (as a job with ``parallel = 1`` does), looks it up
in the table and tells the strategy how it ended: ``succeeded`` with the table's value as score (negated for
``direction = "min"``, so higher is better), or ``failed`` (reason ``not_in_table``) when the table has no row
for it. Seeds run in worker processes forked from this one, so the table is read once.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import threadpoolctl

from nasapp.engine.benchmarks.table import TabularBenchmark
from nasapp.engine.strategies import StrategyOptions, TrialOutcome, make_strategy


@dataclass(frozen=True)
class SearchRun:
    """One search: the table value of each trial in order (None: not in the table) and its CPU seconds."""

    strategy: str
    seed: int
    values: list[float | None]
    objectives: list[dict[str, float]]
    seconds: float


def run_search(table: TabularBenchmark, options: StrategyOptions, seed: int, budget: int) -> SearchRun:
    strategy = make_strategy(options, table.space, seed)
    if getattr(strategy, "needs_scorer", False):  # a pre-screen: its proxy is a column of the table
        column = options.proxy  # type: ignore[attr-defined]
        strategy.scorer = lambda archs: table.proxy_scores(column, archs)  # type: ignore[attr-defined]
    sign = 1.0 if table.direction == "max" else -1.0
    values: list[float | None] = []
    objectives: list[dict[str, float]] = []
    started = time.process_time()
    for number in range(budget):
        arch = strategy.ask(1)[0]
        value = table.lookup(arch)
        extra = table.objective_values(arch)
        if value is None:
            outcome = TrialOutcome(number, arch, "failed", reason="not_in_table")
        else:
            outcome = TrialOutcome(number, arch, "succeeded", score=sign * value, reward=value,
                                   metrics={table.metric: value, **extra})
        strategy.tell(outcome)
        values.append(value)
        objectives.append(extra)
    return SearchRun(options.name, seed, values, objectives, time.process_time() - started)


# The table a worker process searches, set once by the pool's initializer (forked workers get it for free).
_TABLE: TabularBenchmark | None = None


def _set_table(table: TabularBenchmark) -> None:
    global _TABLE
    _TABLE = table
    # one BLAS thread per worker: the workers already fill the cores, and OpenBLAS threads of a forked process
    # fighting the other workers' made model-based strategies ten times slower
    threadpoolctl.threadpool_limits(1)


def _search_in_worker(task: tuple[StrategyOptions, int, int]) -> SearchRun:
    assert _TABLE is not None
    return run_search(_TABLE, *task)


def run_seeds(table: TabularBenchmark, options: StrategyOptions, seeds: list[int], budget: int,
              workers: int | None = None,
              on_done: Callable[[int], None] | None = None) -> tuple[list[SearchRun], float]:
    """Every seed's search of one strategy, in ``workers`` processes (default: one per core); returns the
    runs in seed order and the wall seconds they took. ``on_done(n)`` is called as searches finish."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(seeds)))
    started = time.perf_counter()
    tasks = [(options, seed, budget) for seed in seeds]
    if workers == 1:
        runs = []
        for task in tasks:
            runs.append(run_search(table, *task))
            if on_done:
                on_done(len(runs))
        return runs, time.perf_counter() - started
    with ProcessPoolExecutor(workers, mp_context=_fork_context(), initializer=_set_table,
                             initargs=(table,)) as pool:
        runs = []
        for run in pool.map(_search_in_worker, tasks):
            runs.append(run)
            if on_done:
                on_done(len(runs))
    return runs, time.perf_counter() - started


def _fork_context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)
