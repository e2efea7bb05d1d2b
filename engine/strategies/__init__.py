"""Search strategies: the registry. Adding one = a module with its options, class and ENTRY + one line here."""

from __future__ import annotations

from typing import Any

from nasapp.engine.registry import Registry
from nasapp.engine.strategies import (
    copies,
    evolution,
    given,
    local_search,
    optuna_samplers,
    predictor,
    prescreen,
    random_search,
    rl,
)
from nasapp.engine.strategies.base import Asked, Strategy, StrategyEntry, StrategyOptions, TrialOutcome
from nasapp.engine.strategies.evolution import RegularizedEvolution
from nasapp.engine.strategies.random_search import RandomSearch

STRATEGIES: Registry[StrategyEntry] = Registry("strategy", "strategy.name", default="evolution")
STRATEGIES.register(random_search.ENTRY)
STRATEGIES.register(rl.ENTRY)
STRATEGIES.register(evolution.ENTRY)
STRATEGIES.register(local_search.ENTRY)
STRATEGIES.register(predictor.ENTRY)
STRATEGIES.register(optuna_samplers.TPE_ENTRY)
STRATEGIES.register(optuna_samplers.CMAES_ENTRY)
STRATEGIES.register(optuna_samplers.GP_ENTRY)
STRATEGIES.register(optuna_samplers.NSGA2_ENTRY)
STRATEGIES.register(prescreen.ENTRY)
STRATEGIES.register(copies.ENTRY)
STRATEGIES.register(given.ENTRY)

__all__ = ["STRATEGIES", "Asked", "RandomSearch", "RegularizedEvolution", "Strategy", "StrategyEntry",
           "StrategyOptions", "TrialOutcome", "make_strategy"]


def make_strategy(options: StrategyOptions | dict[str, Any], space: Any, seed: int) -> Strategy:
    """A strategy from its ``[strategy]`` table (validated options, or a plain table to validate)."""
    if not isinstance(options, StrategyOptions):
        STRATEGIES.get(options.get("name", STRATEGIES.default))  # an unknown name: NasappError listing the known
        options = STRATEGIES.validate(dict(options))
    return STRATEGIES.get(options.name).make(space, seed, options)
