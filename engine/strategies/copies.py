"""``copies``: the same architecture, trial after trial (each trial has its own seed), for measuring how much a
proxy task's score varies between training runs (``nasapp proxy variance``).

The architecture is ``arch`` when given, else one sampled with the strategy's seed. When a copy of it fails
with a reason in ``resample_on`` (out of memory, NaN), a new architecture is sampled and copied from then on:
the model measured is one that trains. Deterministic given the seed and the outcomes, so resume replays it.
Unlike every other strategy it proposes repeats by design (``proposes_repeats``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from nasapp.engine.strategies.base import HistoryEvent, Strategy, StrategyEntry, StrategyOptions, TrialOutcome
from nasapp.engine.strategies.random_search import RandomSearch


class CopiesOptions(StrategyOptions):
    name: Literal["copies"] = "copies"
    copies: int = Field(5, ge=2)  # how many succeeded copies the run wants (read by nasapp proxy variance)
    arch: Any = None  # the architecture to copy; None: sample one
    resample_on: list[str] = ["oom", "nan"]  # failure reasons that mean "this model does not train"

    @property
    def random_start(self) -> int | None:
        return None


class Copies(Strategy):
    name = "copies"
    tool_only = True  # run by nasapp proxy variance; the dashboard's new-job screen does not offer it
    options: CopiesOptions
    proposes_repeats = True

    def __init__(self, space: Any, seed: int, options: CopiesOptions | None = None) -> None:
        super().__init__(space, seed, options or CopiesOptions())
        given = self.options.arch
        self.current = space.canonical(given) if given is not None else space.sample(self.rng)
        self.resamples = RandomSearch(space, int(self.rng.integers(2**31)))  # draws no model twice
        self.resamples.seen.add(space.fingerprint(self.current))

    def propose(self) -> Any:
        return self.current

    def ask(self, n: int = 1) -> list[Any]:
        return [self.current] * n

    def tell(self, outcome: TrialOutcome) -> None:
        if (outcome.state == "failed" and outcome.reason in self.options.resample_on
                and self.space.fingerprint(outcome.arch) == self.space.fingerprint(self.current)):
            self.current = self.resamples.propose()


    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Exact: an ask draws nothing, so the tells alone rebuild the state."""
        for event in history:
            if isinstance(event, TrialOutcome):
                self.tell(event)


ENTRY = StrategyEntry("copies", "the same architecture in every trial (its own seed each), resampled when it"
                      " runs out of memory or diverges: for nasapp proxy variance", CopiesOptions, Copies)
