"""Uniform random search with no duplicates until the space is exhausted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from nasapp.engine.strategies.base import HistoryEvent, Strategy, StrategyEntry, StrategyOptions, asks_of

_TRIES = 200
_ENUMERATE_BELOW = 100_000  # spaces this small fall back to drawing from the unseen ones


class RandomOptions(StrategyOptions):
    name: Literal["random"] = "random"

    @property
    def random_start(self) -> int | None:
        return None


class RandomSearch(Strategy):
    name = "random"

    def __init__(self, space: Any, seed: int, options: RandomOptions | None = None) -> None:
        super().__init__(space, seed, options or RandomOptions())
        self.seen: set[str] = set()

    def propose(self) -> Any:
        arch = self._fresh_sample()
        self.seen.add(self.space.fingerprint(arch))
        return arch

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Every asked architecture counts as seen; the generator is reseeded (base.py: the replay rule)."""
        self.seen.update(ask.fingerprint for ask in asks_of(history))
        self.reseed(history)

    def _fresh_sample(self) -> Any:
        for _ in range(_TRIES):
            arch = self.space.sample(self.rng)
            if self.space.fingerprint(arch) not in self.seen:
                return arch
        if self.space.is_finite() and self.space.size() <= _ENUMERATE_BELOW:
            unseen = [a for a in self.space.enumerate() if self.space.fingerprint(a) not in self.seen]
            if unseen:
                return unseen[int(self.rng.integers(len(unseen)))]
            self.seen.clear()  # exhausted: start another pass over the space
        return self.space.sample(self.rng)


ENTRY = StrategyEntry("random", "uniform random search, no repeats until the space is exhausted",
                      RandomOptions, RandomSearch)
