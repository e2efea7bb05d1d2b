"""A tabular NAS benchmark: a CSV file with one row per architecture of a space and the metrics it reached.

The architecture column holds the space's own text form where the prebuilt space has one (NAS-Bench-201's
``|nor_conv_3x3~0|+|...|`` strings), or the architecture as JSON. Rows are keyed by the space's fingerprint of
the architecture, so a strategy's proposal is looked up whatever form it takes. Two rows of the same
architecture (a table may list an isomorphic cell under one string twice) keep the first.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError, SpaceError
from nasapp.engine.spaces import Space


@dataclass(frozen=True)
class TabularBenchmark:
    """The rows of a table: ``values[fingerprint]`` is the metric (higher is better when ``direction`` is
    ``max``); ``objectives[column][fingerprint]`` the extra columns read for multi-objective searches."""

    path: Path
    space: Space
    metric: str
    direction: str
    values: dict[str, float]
    objectives: dict[str, dict[str, float]]
    proxies: dict[str, dict[str, float]] = field(default_factory=dict)  # columns a pre-screen scores with

    @property
    def optimum(self) -> float:
        return max(self.values.values()) if self.direction == "max" else min(self.values.values())

    def lookup(self, arch: Any) -> float | None:
        """The metric of ``arch``, or None when the table has no row for it."""
        return self.values.get(self.space.fingerprint(arch))

    def proxy_scores(self, column: str, archs: list[Any]) -> list[float]:
        """The ``column`` value of each architecture (NaN when the table has no row for it): a pre-screen's
        scorer in ``nasapp bench``."""
        values = self.proxies[column]
        return [values.get(self.space.fingerprint(arch), math.nan) for arch in archs]

    def objective_values(self, arch: Any) -> dict[str, float]:
        key = self.space.fingerprint(arch)
        return {name: column[key] for name, column in self.objectives.items() if key in column}


def resolve_space(name: str) -> tuple[Space, Callable[[str], Any] | None]:
    """A prebuilt space by name, or a user's space by ``module:name`` / ``file.py:name``; with the parser of
    the prebuilt space's own text form when it has one."""
    from nasapp.engine.spaces import space
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    if ":" not in name:
        prebuilt = get_prebuilt(name)
        return prebuilt.space, prebuilt.parse
    from nasapp.engine.jobs.refs import load_ref

    try:
        return space(load_ref(name)), None
    except (ImportError, OSError) as error:
        raise NasappError(f"--space {name}: {error}") from None


def load_table(path: Path, space_name: str, arch_column: str, metric_column: str, direction: str = "max",
               objective_columns: Sequence[str] = (), proxy_columns: Sequence[str] = ()) -> TabularBenchmark:
    """Read ``path``; every user mistake (no file, a missing column, a row that is not an architecture of the
    space or whose value is not a number) is a NasappError naming the file and row."""
    space, parse = resolve_space(space_name)
    path = Path(path)
    if not path.is_file():
        raise NasappError(f"no table {path}")
    values: dict[str, float] = {}
    objectives: dict[str, dict[str, float]] = {name: {} for name in objective_columns}
    proxies: dict[str, dict[str, float]] = {name: {} for name in proxy_columns}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column in (arch_column, metric_column, *objective_columns, *proxy_columns):
            if column not in columns:
                raise NasappError(f"{path}: no column {column!r}; its columns are {', '.join(columns) or 'none'}")
        for line, row in enumerate(reader, start=2):
            key = _fingerprint(space, parse, row[arch_column], path, line)
            if key in values:
                continue
            values[key] = _number(row[metric_column], metric_column, path, line)
            for name in objective_columns:
                objectives[name][key] = _number(row[name], name, path, line)
            for name in proxy_columns:
                proxies[name][key] = _number(row[name], name, path, line)
    if not values:
        raise NasappError(f"{path}: the table has no rows")
    return TabularBenchmark(path, space, metric_column, direction, values, objectives, proxies)


def _fingerprint(space: Space, parse: Callable[[str], Any] | None, text: str | None, path: Path, line: int) -> str:
    try:
        arch = parse(text) if parse is not None else json.loads(text or "")
        return space.fingerprint(arch)
    except (NasappError, SpaceError, ValueError) as error:
        shown = (text or "")[:80]
        raise NasappError(f"{path}:{line}: {shown!r} is not an architecture of the space: {error}") from None


def _number(text: str | None, column: str, path: Path, line: int) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise NasappError(f"{path}:{line}: column {column!r} holds {text!r}, not a finite number")
    return value
