"""Search strategies behind one ask/tell interface."""

from __future__ import annotations

from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.strategies.base import Strategy
from nasapp.engine.strategies.evolution import RegularizedEvolution
from nasapp.engine.strategies.random_search import RandomSearch

__all__ = ["Strategy", "RandomSearch", "RegularizedEvolution", "make_strategy"]


def make_strategy(name: str, space: Any, seed: int, options: dict[str, Any] | None = None) -> Strategy:
    options = options or {}
    if name == "random":
        return RandomSearch(space, seed)
    if name == "evolution":
        return RegularizedEvolution(space, seed, population=options.get("population", 16),
                                    sample_size=options.get("sample_size", 4))
    raise NasappError(f"unknown strategy '{name}'; choose one of: random, evolution")
