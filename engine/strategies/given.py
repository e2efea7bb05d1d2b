"""``given``: a list of architectures, asked in order (stage 2 retrains a search's best models this way); past
the end of the list, uniform random architectures not asked before. ``source_job`` records the job they came
from (stage 2 reads it back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from nasapp.engine.strategies.base import HistoryEvent, Strategy, StrategyEntry, StrategyOptions, asks_of
from nasapp.engine.strategies.random_search import RandomSearch


class GivenOptions(StrategyOptions):
    name: Literal["given"] = "given"
    archs: list[Any] = []
    source_job: int | None = None

    @property
    def random_start(self) -> int | None:
        return None


class Given(Strategy):
    name = "given"
    tool_only = True  # run by nasapp stage2; the dashboard's new-job screen does not offer it
    options: GivenOptions

    def __init__(self, space: Any, seed: int, options: GivenOptions | None = None) -> None:
        super().__init__(space, seed, options or GivenOptions())
        self.queue = [space.canonical(arch) for arch in reversed(self.options.archs)]  # popped from the end
        self.random = RandomSearch(space, seed)

    def propose(self) -> Any:
        arch = self.queue.pop() if self.queue else self.random.propose()
        self.random.seen.add(self.space.fingerprint(arch))
        return arch


    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Exact while the asks did not go past the list (proposing draws nothing random until then)."""
        asks = asks_of(history)
        used = min(len(asks), len(self.queue))
        del self.queue[len(self.queue) - used:]  # popped from the end
        self.random.seen.update(ask.fingerprint for ask in asks)
        if len(asks) > used:
            self.random.rng = np.random.default_rng(int(self.reseed(history).integers(2**31)))


ENTRY = StrategyEntry("given", "a given list of architectures in order, then random ones: how stage 2 retrains"
                      " a search's best models", GivenOptions, Given)
