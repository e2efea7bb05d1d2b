"""A predictor-guided strategy in the manner of BANANAS (White et al. 2021) and NPENAS (Wei et al. 2022).

After ``initial`` random architectures, every ask:

1. fits an ensemble of small neural networks (:mod:`.ensemble`) to the scores seen so far, on the space's
   feature encoding (:mod:`.features`: one-hot choices, scaled numbers; any space works);
2. makes candidates around the *centre*, the best architecture that still has unasked neighbours: its unasked
   neighbours (one step away), the architectures a greedy walk on the model's predicted mean reaches from it
   (up to four steps away), and ``candidates`` random architectures; a random subset of ``candidates`` of
   all these is scored by the model;
3. asks for the candidate with the best acquisition: independent Thompson sampling (a draw from each
   candidate's predicted normal: the ensemble's mean and spread), or the upper confidence bound
   ``mean + exploration * spread``.

Why the centre: a model fitted to a few hundred points is often wrong exactly where it matters (an edge whose
effect depends on the others). Asking every neighbour of the best before moving on, as local search does,
guarantees the search does not stall next to an improvement the model underrates; the model decides the order,
and its walk lets the search jump several steps when it is confident. Failed, pruned and skipped architectures
are never asked again and are not fitted (their score is unknown).
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
)
from nasapp.engine.strategies.ensemble import MLPEnsemble
from nasapp.engine.strategies.features import Features
from nasapp.engine.strategies.random_search import RandomSearch

_RANDOM_SHARE = 1.0  # random architectures drawn per ask, as a share of `candidates`: the model's view far away
_WALK_STEPS = 4  # how far the walk on the model's prediction goes from the centre
# the model is fitted on at most this many scores: the best half and the most recent half (a fit's cost grows
# with its rows; a long search's recent scores say where it is, its best where to go)
MAX_FIT_ROWS = 500


class PredictorOptions(StrategyOptions):
    name: Literal["predictor"] = "predictor"
    initial: int = Field(10, ge=2)
    candidates: int = Field(100, ge=1)
    acquisition: Literal["its", "ucb"] = "its"
    exploration: float = Field(1.0, ge=0)  # ucb's weight of the ensemble's spread
    members: int = Field(5, ge=2)
    epochs: int = Field(200, ge=10)

    @property
    def random_start(self) -> int | None:
        return self.initial


class Predictor(Strategy):
    name = "predictor"
    options: PredictorOptions
    exact_replay_asks = 200  # an exact replay fits the ensemble once per ask

    def __init__(self, space: Any, seed: int, options: PredictorOptions | None = None) -> None:
        super().__init__(space, seed, options or PredictorOptions())
        self.features = Features(space)
        self.random = RandomSearch(space, int(self.rng.integers(2**31)))
        self.model = MLPEnsemble(self.options.members, epochs=self.options.epochs)
        self.asked: set[str] = set()
        self.scored: list[tuple[Any, float]] = []
        self.fitted_on = 0  # how many scores the model was last fitted to
        self.rows: dict[str, np.ndarray] = {}  # fingerprint -> feature row of a scored architecture
        self.candidate_rows: dict[str, np.ndarray] = {}  # the same for this ask's candidates

    def propose(self) -> Any:
        if len(self.scored) < self.options.initial:
            return self._asked(self.random.propose())
        if self.fitted_on != len(self.scored):
            fitted = fit_rows(self.scored)
            x = self._rows([(self.space.fingerprint(arch), arch) for arch, _ in fitted], self.rows)
            self.model.fit(x, np.array([score for _, score in fitted]), self.rng)
            self.fitted_on = len(self.scored)
        self.candidate_rows = {}
        found = self._candidates()
        if not found:
            return self._asked(self.random.propose())
        candidates = list(found.items())
        mean, spread = self.model.predict(self._rows(candidates, self.candidate_rows))
        if self.options.acquisition == "its":
            value = self.rng.normal(mean, spread)
        else:
            value = mean + self.options.exploration * spread
        return self._asked(candidates[int(np.argmax(value))][1])

    def _asked(self, arch: Any) -> Any:
        self.asked.add(self.space.fingerprint(arch))
        self.random.seen.add(self.space.fingerprint(arch))
        return arch

    def _rows(self, archs: list[tuple[str, Any]], cache: dict[str, np.ndarray]) -> np.ndarray:
        """The feature rows of (fingerprint, arch) pairs, encoding each architecture once into ``cache``."""
        missing = [(key, arch) for key, arch in archs if key not in cache]
        if missing:
            for (key, _), row in zip(missing, self.features([arch for _, arch in missing]), strict=True):
                cache[key] = row
        return np.stack([cache[key] for key, _ in archs])

    def _candidates(self) -> dict[str, Any]:
        """Unasked architectures by fingerprint: the neighbours of the best architecture that still has unasked
        neighbours, the architectures a walk on the model's prediction reaches from it (several steps away),
        and random architectures."""
        found: dict[str, Any] = {}
        for arch, _ in sorted(self.scored, key=lambda member: member[1], reverse=True):
            if self._add(found, self.space.neighbours(arch)):
                self._walk(found, arch)
                break
        for _ in range(max(1, int(self.options.candidates * _RANDOM_SHARE))):
            self._add(found, [self.space.sample(self.rng)])
        if len(found) > self.options.candidates:  # keep a random subset, in a deterministic order
            keys = list(found)
            keep = self.rng.choice(len(keys), size=self.options.candidates, replace=False)
            found = {keys[int(i)]: found[keys[int(i)]] for i in sorted(keep)}
        return found

    def _add(self, found: dict[str, Any], archs: list[Any]) -> dict[str, Any]:
        """Add the unasked ones of ``archs`` to ``found``; returns those (by fingerprint)."""
        added = {}
        for arch in archs:
            key = self.space.fingerprint(arch)
            if key not in self.asked and key not in found:
                found[key] = added[key] = arch
        return added

    def _walk(self, found: dict[str, Any], start: Any) -> None:
        """Greedy steps from ``start`` to the neighbour the model predicts best, ``_WALK_STEPS`` times."""
        current = start
        for _ in range(_WALK_STEPS):
            neighbours = [(self.space.fingerprint(a), a) for a in self.space.neighbours(current)]
            if not neighbours:
                return
            mean, _ = self.model.predict(self._rows(neighbours, self.candidate_rows))
            key, current = neighbours[int(np.argmax(mean))]
            if key not in self.asked:
                found.setdefault(key, current)

    def tell(self, outcome: TrialOutcome) -> None:
        self.asked.add(self.space.fingerprint(outcome.arch))
        if outcome.succeeded:
            self.scored.append((outcome.arch, float(outcome.score)))  # type: ignore[arg-type]

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Record the asks and the scores without fitting: the next ask fits the model once (base.py: the replay
        rule)."""
        asks = asks_of(history)
        keys = {ask.number: ask.fingerprint for ask in asks}
        self.asked.update(keys.values())
        self.random.seen.update(keys.values())
        for event in history:
            if isinstance(event, TrialOutcome):
                if event.number not in keys:  # told, never asked (the baseline)
                    self.asked.add(self.space.fingerprint(event.arch))
                if event.succeeded:
                    self.scored.append((event.arch, float(event.score)))  # type: ignore[arg-type]
        self.random.rng = np.random.default_rng(int(self.reseed(history).integers(2**31)))


def fit_rows(scored: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """What the model is fitted on: every score, or past MAX_FIT_ROWS the best half and the most recent half."""
    if len(scored) <= MAX_FIT_ROWS:
        return scored
    half = MAX_FIT_ROWS // 2
    recent = range(len(scored) - half, len(scored))
    older = sorted(range(len(scored) - half), key=lambda i: scored[i][1], reverse=True)[:half]
    return [scored[i] for i in sorted(older)] + [scored[i] for i in recent]


ENTRY = StrategyEntry("predictor", "BANANAS-style: a neural ensemble ranks the unasked neighbours of the best and"
                      " model-guided jumps; Thompson sampling picks", PredictorOptions, Predictor)
