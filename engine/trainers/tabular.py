"""The ``tabular`` prebuilt trainer: a trial's "training" is a look-up in a tabular benchmark (a CSV with one
row per architecture), so a real job, with its store, dashboard and resume, can replay NAS-Bench-201 or a
user's own table. `nasapp bench` drives the same tables without jobs, many seeds at once.

    [trainer]
    prebuilt = "tabular"
    options = { table = "nb201_cifar10.csv", space = "nb201", arch_column = "arch", metric_column = "test_accuracy" }

The trial's metrics are every numeric column of its row. An architecture the table lacks fails the trial
(reason ``not_in_table``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from nasapp.engine.benchmarks.table import TabularBenchmark, load_table
from nasapp.engine.errors import TrialFailed

_TABLES: dict[tuple[str, ...], tuple[TabularBenchmark, dict[str, dict[str, float]]]] = {}  # per worker


def train(arch: Any, ctx: Any) -> dict[str, float]:
    options = ctx.proxy.get("options") or {}
    table, columns = _table(options)
    key = table.space.fingerprint(arch)
    if key not in table.values:
        raise TrialFailed("not_in_table", f"{table.path} has no row for this architecture")
    metrics = {name: values[key] for name, values in columns.items() if key in values}
    ctx.report(ctx.proxy.get("steps", 1), **metrics)
    return metrics


def _table(options: dict[str, Any]) -> tuple[TabularBenchmark, dict[str, dict[str, float]]]:
    path = str(Path(options["table"]).expanduser())
    space, arch_column = options.get("space", "nb201"), options.get("arch_column", "arch")
    metric = options.get("metric_column", "accuracy")
    cache_key = (path, space, arch_column, metric)
    if cache_key not in _TABLES:
        numeric = [c for c in numeric_columns(Path(path)) if c not in (arch_column, metric)]
        table = load_table(Path(path), space, arch_column, metric, objective_columns=numeric)
        _TABLES[cache_key] = (table, {metric: table.values, **table.objectives})
    return _TABLES[cache_key]


def numeric_columns(path: Path) -> list[str]:
    """The columns whose first row holds a number."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        first = next(reader, None) or {}
    numeric = []
    for name, value in first.items():
        try:
            float(value or "")
            numeric.append(name)
        except ValueError:
            pass
    return numeric
