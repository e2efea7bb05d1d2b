"""Regularized (aging) evolution, Real et al. 2019.

The first ``population`` asks are random. After that each ask samples ``sample_size`` members of the
population, mutates the best of them, and the oldest member leaves when a child's reward arrives.

With ``objectives`` (metrics to minimise alongside the reward, e.g. ``["latency_ms"]``) "best" is Pareto-aware:
the sampled member on the lowest non-dominated front of the population, the loneliest (largest crowding
distance) among equals, as NSGA-II ranks; trials that lack one of the metrics do not join the population.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from nasapp.engine.strategies.base import (
    HistoryEvent,
    MultiObjectiveOptions,
    Strategy,
    StrategyEntry,
    TrialOutcome,
    asks_of,
    objective_values,
)
from nasapp.engine.strategies.pareto_rank import pareto_order
from nasapp.engine.strategies.random_search import RandomSearch


class EvolutionOptions(MultiObjectiveOptions):
    name: Literal["evolution"] = "evolution"
    population: int = Field(16, ge=2)
    sample_size: int = Field(4, ge=1)

    @property
    def random_start(self) -> int | None:
        return self.population

    @model_validator(mode="after")
    def _sample_fits(self) -> EvolutionOptions:
        if self.sample_size > self.population:
            raise ValueError("strategy.sample_size must not exceed strategy.population")
        return self


class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(self, space: Any, seed: int, options: EvolutionOptions | None = None) -> None:
        options = options or EvolutionOptions()
        super().__init__(space, seed, options)
        self.population_size = options.population
        self.sample_size = min(options.sample_size, options.population)
        self.objectives = options.objectives
        # (arch, score) members; with objectives, (arch, point) where point is to maximise on every axis
        self.population: deque[tuple[Any, Any]] = deque(maxlen=options.population)
        self.asked = 0
        self.initial = RandomSearch(space, int(self.rng.integers(2**31)))

    def propose(self) -> Any:
        self.asked += 1
        if len(self.population) < self.population_size and self.asked <= self.population_size:
            return self.initial.propose()
        if not self.population:  # every initial trial failed so far
            return self.initial.propose()
        return self.space.mutate(self.tournament_winner(), self.rng)

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """The population is the last ``population`` members told (a tell is a deque append); the generators are
        reseeded (base.py: the replay rule)."""
        asks = asks_of(history)
        self.asked = len(asks)
        self.initial.seen.update(ask.fingerprint for ask in asks)
        for event in history:
            if isinstance(event, TrialOutcome):
                self.tell(event)
        self.initial.rng = np.random.default_rng(int(self.reseed(history).integers(2**31)))

    def tournament_winner(self) -> Any:
        """The best of ``sample_size`` members drawn without replacement (draws from ``self.rng``)."""
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                replace=False)
        if self.objectives:
            order = pareto_order([member[1] for member in self.population])
            return self.population[int(min(picks, key=lambda i: order[int(i)]))][0]
        return max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]

    def tell(self, outcome: TrialOutcome) -> None:
        if self.objectives:
            point = objective_values(outcome, self.objectives)
            if point is not None:
                self.population.append((outcome.arch, point))
        elif outcome.succeeded:
            self.population.append((outcome.arch, float(outcome.score)))  # type: ignore[arg-type]


ENTRY = StrategyEntry("evolution", "regularized (aging) evolution: mutate tournament winners (Real et al. 2019)",
                      EvolutionOptions, RegularizedEvolution)
