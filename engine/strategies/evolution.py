"""Regularized (aging) evolution, Real et al. 2019.

The first ``population`` asks are random. After that each ask samples ``sample_size`` members of the
population, mutates the best of them, and the oldest member leaves when a child's reward arrives.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nasapp.engine.strategies.base import Strategy
from nasapp.engine.strategies.random_search import RandomSearch


class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(self, space: Any, seed: int, population: int = 16, sample_size: int = 4) -> None:
        super().__init__(space, seed)
        self.population_size = population
        self.sample_size = min(sample_size, population)
        self.population: deque[tuple[Any, float]] = deque(maxlen=population)
        self.asked = 0
        self.initial = RandomSearch(space, int(self.rng.integers(2**31)))

    def ask(self) -> Any:
        self.asked += 1
        if len(self.population) < self.population_size and self.asked <= self.population_size:
            return self.initial.ask()
        if not self.population:  # every initial trial failed so far
            return self.initial.ask()
        picks = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)),
                                replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        return self.space.mutate(parent, self.rng)

    def tell(self, arch: Any, reward: float | None) -> None:
        if reward is not None:
            self.population.append((arch, reward))
