"""Local search with restarts (White, Nolen, Zela, Hutter 2021: "Local search is state of the art for NAS
benchmarks").

The search climbs from a centre: it asks the centre's neighbours (``space.neighbours``: one discrete step away)
in a random order and moves the centre to the first neighbour that scores better (first improvement). When every
neighbour of the centre was tried and none is better, the centre is a local optimum: the search restarts from
the best of ``initial`` fresh random architectures. Floating dimensions are not neighbours' steps, so they keep
the values of the random start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nasapp.engine.strategies.base import (
    HistoryEvent,
    Strategy,
    StrategyEntry,
    StrategyOptions,
    TrialOutcome,
    asks_of,
    untold,
)
from nasapp.engine.strategies.random_search import RandomSearch


class LocalOptions(StrategyOptions):
    name: Literal["local"] = "local"
    initial: int = Field(10, ge=1)  # random architectures tried before each climb, which starts at the best

    @property
    def random_start(self) -> int | None:
        return self.initial


class LocalSearch(Strategy):
    name = "local"

    def __init__(self, space: Any, seed: int, options: LocalOptions | None = None) -> None:
        options = options or LocalOptions()
        super().__init__(space, seed, options)
        self.initial = options.initial
        self.random = RandomSearch(space, int(self.rng.integers(2**31)))
        self.asked: set[str] = set()
        self.centre: tuple[Any, float] | None = None
        self.queue: list[Any] = []  # the centre's neighbours not asked yet, in the order they will be
        self.pending = 0  # asks of the current phase not told yet
        self.restart: list[tuple[Any, float]] = []  # the current random phase's scored architectures
        self.random_left = self.initial

    def propose(self) -> Any:
        while self.queue:
            arch = self.queue.pop()
            if self.space.fingerprint(arch) not in self.asked:
                return self._asked(arch)
        if self.centre is not None and self.pending == 0:
            self._restart()  # a local optimum: every neighbour was tried and none improved
        if self.random_left > 0:
            self.random_left -= 1
        return self._asked(self.random.propose())

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Climb on from the best architecture found (its unasked neighbours next), or start a random phase when
        none succeeded; nothing asked before is asked again (base.py: the replay rule)."""
        keys = [ask.fingerprint for ask in asks_of(history)]
        self.asked.update(keys)
        self.random.seen.update(keys)
        self.random.rng = np.random.default_rng(int(self.reseed(history).integers(2**31)))
        self.pending = len(untold(history))
        scored = [(e.arch, float(e.score)) for e in history  # type: ignore[arg-type]
                  if isinstance(e, TrialOutcome) and e.succeeded]
        if scored:
            self._move(max(scored, key=lambda member: member[1]))

    def _asked(self, arch: Any) -> Any:
        self.asked.add(self.space.fingerprint(arch))
        self.pending += 1
        return arch

    def tell(self, outcome: TrialOutcome) -> None:
        self.pending = max(0, self.pending - 1)
        if outcome.succeeded:
            score = float(outcome.score)  # type: ignore[arg-type]
            if self.centre is None:
                self.restart.append((outcome.arch, score))
            elif score > self.centre[1]:
                self._move((outcome.arch, score))
        if self.centre is None:
            self._maybe_climb()

    def _maybe_climb(self) -> None:
        """End the random phase once ``initial`` scored (or every asked one was told): climb from the best."""
        if len(self.restart) < self.initial and (self.random_left > 0 or self.pending > 0):
            return
        if self.restart:
            self._move(max(self.restart, key=lambda member: member[1]))
        else:  # every random start failed: draw again
            self.random_left = self.initial

    def _move(self, centre: tuple[Any, float]) -> None:
        self.centre = centre
        self.restart = []
        neighbours = self.space.neighbours(centre[0])
        order = self.rng.permutation(len(neighbours))
        self.queue = [neighbours[int(i)] for i in order[::-1]]  # popped from the end: permutation order

    def _restart(self) -> None:
        self.centre = None
        self.queue = []
        self.random_left = self.initial


ENTRY = StrategyEntry("local", "local search: climb to the first better neighbour, restart from random at a local"
                      " optimum (White et al. 2021)", LocalOptions, LocalSearch)
