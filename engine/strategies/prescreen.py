"""``prescreen``: a zero-cost pre-screen in front of any strategy.

Every trial, the *base* strategy proposes ``pool`` architectures; a zero-cost proxy (:mod:`nasapp.engine.proxies`)
scores them at initialisation, and only the best-scoring one is trained. The others are told to the base
strategy as ``skipped`` (reason ``prescreen``, with their proxy value in the metrics), so it knows they were
passed over and never proposes them again. Higher proxy values are taken as better, for the sizes too
(``params``, ``flops``: on NAS-Bench-201 larger cells train to higher accuracy).

The strategy needs a *scorer*, ``scorer(archs) -> list[float]``, set on it before the first ``ask``: the runner
sets one that builds each architecture with the job's prebuilt space on one batch of the job's data
(:func:`nasapp.engine.proxies.job_scorer.job_scorer`); ``nasapp bench`` sets one that reads a column of the
table. Scores are deterministic, so a resume replays the same choices (it scores the replayed pools again).
A long history is restored without scoring (base.py: the replay rule): the base strategy is restored from the
trained architectures alone (the passed-over ones were never stored).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from nasapp.engine.errors import NasappError
from nasapp.engine.strategies.base import (
    HistoryEvent,
    Strategy,
    StrategyEntry,
    StrategyOptions,
    TrialOutcome,
    asks_of,
    untold,
)

Scorer = Callable[[list[Any]], list[float]]


class PrescreenOptions(StrategyOptions):
    name: Literal["prescreen"] = "prescreen"
    base: dict[str, Any] = {"name": "evolution"}  # the screened strategy's own [strategy] table
    proxy: str = "synflow"
    pool: int = Field(10, ge=2, le=10_000)  # proposals scored per architecture trained

    @field_validator("base")
    @classmethod
    def _base_is_a_strategy(cls, base: dict[str, Any]) -> dict[str, Any]:
        from nasapp.engine.strategies import STRATEGIES

        if base.get("name", STRATEGIES.default) == "prescreen":
            raise ValueError("a pre-screen cannot screen another pre-screen")
        STRATEGIES.get(base.get("name", STRATEGIES.default))
        return STRATEGIES.validate(dict(base)).model_dump()


class Prescreen(Strategy):
    name = "prescreen"
    options: PrescreenOptions
    needs_scorer = True
    exact_replay_asks = 100  # an exact replay scores a pool per ask (the job scorer builds each model)

    def __init__(self, space: Any, seed: int, options: PrescreenOptions | None = None) -> None:
        from nasapp.engine.strategies import make_strategy

        super().__init__(space, seed, options or PrescreenOptions())
        self.base = make_strategy(self.options.base, space, seed)
        self.scorer: Scorer | None = None
        self.base_asks = 0  # how many architectures the base strategy was asked for
        self.asks = 0
        self.base_number: dict[int, int] = {}  # our ask number -> the base strategy's ask number of it
        self.chosen: set[str] = set()  # fingerprints of the architectures this pre-screen passed on

    def propose(self) -> Any:
        return self.ask(1)[0]

    def ask(self, n: int = 1) -> list[Any]:
        if self.scorer is None:
            raise NasappError("the prescreen strategy has no proxy scorer: it needs a prebuilt space (the proxy"
                              " builds each candidate with the space's builder) or a table column in nasapp bench")
        return [self._screened() for _ in range(n)]

    def _screened(self) -> Any:
        assert self.scorer is not None
        pool = self.base.ask(self.options.pool)
        scores = [value if math.isfinite(value) else -math.inf for value in self.scorer(pool)]
        # the best-scoring architecture not trained before (a base strategy may propose one again)
        best = max(range(len(pool)),
                   key=lambda i: (self.space.fingerprint(pool[i]) not in self.chosen, scores[i], -i))
        self.chosen.add(self.space.fingerprint(pool[best]))
        metric = f"zc_{self.options.proxy}"
        for i, arch in enumerate(pool):
            if i != best:
                self.base.tell(TrialOutcome(self.base_asks + i, arch, "skipped", reason="prescreen",
                                            metrics={metric: scores[i]} if math.isfinite(scores[i]) else {}))
        self.base_number[self.asks] = self.base_asks + best
        self.base_asks += len(pool)
        self.asks += 1
        return pool[best]

    def tell(self, outcome: TrialOutcome) -> None:
        number = self.base_number.pop(outcome.number, None)
        if number is not None:
            self.base.tell(dataclasses.replace(outcome, number=number))

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """The base strategy restored from the trained architectures (its k-th ask is ours); nothing is scored."""
        asks = asks_of(history)
        self.base.restore(history)
        self.chosen.update(ask.fingerprint for ask in asks)
        self.asks = self.base_asks = len(asks)
        self.base_number = {k: k for k, _ in untold(history)}

    def report(self, number: int, step: int, metrics: Any) -> None:
        if number in self.base_number:
            self.base.report(self.base_number[number], step, metrics)


ENTRY = StrategyEntry("prescreen", "zero-cost pre-screen: the base strategy proposes a pool, a proxy (synflow,"
                      " params, ...) scores it at initialisation, only the best is trained", PrescreenOptions,
                      Prescreen)
