"""The interface every search strategy implements, and the records it is told.

Lifecycle (the runner drives it; resume replays the same calls from the store, so a strategy never pickles
state and must be deterministic given its seed and this sequence of calls):

1. ``__init__(space, seed, options)``: ``options`` is the strategy's validated ``[strategy]`` table (its
   ``options`` model in the registry entry).
2. ``ask(n)``: ``n`` new architectures, no two alike (the base class calls :meth:`propose` and re-proposes
   duplicates; override ``ask`` when a batch is better chosen together).
3. ``report(number, step, metrics)``: an intermediate report of a running trial (for multi-fidelity
   strategies); optional, the default ignores it. Not replayed on resume.
4. ``tell(outcome)``: the :class:`TrialOutcome` of every asked architecture, exactly once, in completion order
   (not ask order when trials run in parallel). ``outcome.score`` is the reward as the strategy should see it:
   higher is always better (the runner negates rewards for ``direction = "min"``).
5. ``replay(history)`` (resume): a fresh strategy is given the job's stored asks (:class:`Asked`, each with the
   architecture that was proposed) and tells (:class:`TrialOutcome`) in the order they happened.

The replay rule (resume must stay bounded on a 100,000-trial job):

- A history of at most ``exact_replay_asks`` asks (1,000 unless a strategy lowers it) is replayed *exactly*:
  ``ask(1)`` for every ask and ``tell`` for every tell, as the search made them. Given its seed, the strategy
  is then in the state the uninterrupted search was in, and proposes what it would have proposed.
- A longer history goes to :meth:`Strategy.restore`, which rebuilds the state from the stored proposals and
  outcomes *without proposing* (no sampling, no model fitted per ask): it records what was asked (so nothing is
  asked again), applies the tells, and leaves any model to be fitted once, at the next ask. Its random
  generators are reseeded from the seed and the history's length (:meth:`Strategy.reseed`), so two resumes of
  one history propose the same, but not what the uninterrupted search would have proposed. A strategy whose
  ``ask`` draws nothing random and whose ``tell`` is cheap (``copies``) restores exactly.

The default ``restore`` is the exact loop: a strategy whose ``ask`` or ``tell`` costs more than a few
microseconds (a model, a sampler, a walk of the space) overrides ``restore``; ``tests/test_strategies_all.py``
checks that no registered strategy proposes or fits per replayed ask.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nasapp.engine.registry import Options

OutcomeState = Literal["succeeded", "failed", "pruned", "skipped", "constraint"]
_DUPLICATE_TRIES = 100


@dataclass(frozen=True)
class TrialOutcome:
    """How one asked architecture ended.

    ``state``: ``succeeded`` (``score`` set), ``failed`` (``reason`` says why: error, nan, oom, timeout, crash,
    latency, ...), ``constraint`` (trained, but over a hard limit such as ``reward.memory_limit_mb``),
    ``pruned`` (stopped early at step ``pruned_at`` by an early-stopping rule) or ``skipped`` (never trained:
    the latency gate predicted it far over target).
    """

    number: int
    arch: Any
    state: OutcomeState
    score: float | None = None
    reward: float | None = None
    reason: str | None = None
    pruned_at: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded" and self.score is not None


@dataclass(frozen=True)
class Asked:
    """A stored ask, as resume replays it: trial ``number`` was proposed as ``arch`` (``fingerprint`` its key)."""

    number: int
    arch: Any
    fingerprint: str


HistoryEvent = Asked | TrialOutcome  # a tell is the TrialOutcome the strategy was told


def asks_of(history: Sequence[HistoryEvent]) -> list[Asked]:
    return [event for event in history if isinstance(event, Asked)]


def untold(history: Sequence[HistoryEvent]) -> list[tuple[int, Asked]]:
    """The asks (with their ask index: the k-th ask is k) that no tell of the history answers yet."""
    told = {event.number for event in history if isinstance(event, TrialOutcome)}
    return [(k, ask) for k, ask in enumerate(asks_of(history)) if ask.number not in told]


class StrategyOptions(Options):
    """``[strategy]``: ``name`` picks the registered strategy; each strategy's model adds its own keys."""

    name: str = "evolution"

    @property
    def random_start(self) -> int | None:
        """How many trials the strategy proposes before outcomes steer it (its random start); None when
        outcomes never steer it. ``nasapp check`` reads it: steered trials move towards the better
        architectures, which tend to be the larger, costlier ones."""
        return 0


class MultiObjectiveOptions(StrategyOptions):
    """The options of a strategy that can be Pareto-aware: ``objectives`` names metrics to minimise alongside
    the reward (``["latency_ms"]``, ``["flops"]``); empty (the default) searches on the reward alone."""

    objectives: list[str] = []


def objective_values(outcome: TrialOutcome, objectives: list[str]) -> tuple[float, ...] | None:
    """The outcome as a point to maximise on every axis: ``(score, -metric_1, -metric_2, ...)``; None when it
    did not succeed or lacks one of the metrics (it then cannot be placed on a front)."""
    if not outcome.succeeded:
        return None
    point = [float(outcome.score)]  # type: ignore[arg-type]
    for name in objectives:
        value = outcome.metrics.get(name)
        if value is None or value != value:  # missing or NaN
            return None
        point.append(-float(value))
    return tuple(point)


class Strategy(ABC):
    """Proposes architectures (``ask``) and learns from how they ended (``tell``). See the module docstring."""

    name: str = ""
    exact_replay_asks = 1_000  # histories with at most this many asks replay exactly (see the module docstring)

    def __init__(self, space: Any, seed: int, options: StrategyOptions | None = None) -> None:
        self.space = space
        self.seed = seed
        self.options = options
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def propose(self) -> Any:
        """One new architecture."""

    def ask(self, n: int = 1) -> list[Any]:
        """``n`` architectures, pairwise different (when the space has that many)."""
        batch: list[Any] = []
        seen: set[str] = set()
        for _ in range(n):
            arch = self.propose()
            for _ in range(_DUPLICATE_TRIES):
                if self.space.fingerprint(arch) not in seen:
                    break
                arch = self.propose()
            seen.add(self.space.fingerprint(arch))
            batch.append(arch)
        return batch

    def tell(self, outcome: TrialOutcome) -> None:  # noqa: B027 - optional for strategies that learn nothing
        """Learn from one finished (or failed, pruned, skipped) architecture."""

    def report(self, number: int, step: int, metrics: Mapping[str, float]) -> None:  # noqa: B027
        """An intermediate report of trial ``number`` (optional; the default ignores it)."""

    def replay(self, history: Sequence[HistoryEvent]) -> None:
        """Resume: bring a fresh strategy to where the stored asks and tells left the search (the rule is in the
        module docstring): exactly for a short history, through :meth:`restore` for a long one."""
        if len(asks_of(history)) <= self.exact_replay_asks:
            self.replay_exactly(history)
        else:
            self.restore(history)

    def replay_exactly(self, history: Sequence[HistoryEvent]) -> None:
        """The calls the search made, again: ``ask(1)`` per ask (its result is the stored arch, given the seed)."""
        for event in history:
            if isinstance(event, Asked):
                self.ask(1)
            else:
                self.tell(event)

    def restore(self, history: Sequence[HistoryEvent]) -> None:
        """Rebuild the state of a long history in bounded time, without proposing (override it; this default is
        the exact replay, whose cost grows with the history times the cost of an ask)."""
        self.replay_exactly(history)

    def reseed(self, history: Sequence[HistoryEvent]) -> np.random.Generator:
        """After a restore: ``self.rng`` drawn afresh from the seed and the number of asks (deterministic given the
        history); returns it, for seeding any other generator the strategy holds."""
        self.rng = np.random.default_rng([self.seed % 2**63, len(asks_of(history))])
        return self.rng


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: ``make(space, seed, options)`` builds one from its validated options."""

    name: str
    description: str
    options: type[StrategyOptions]
    make: Callable[[Any, int, Any], Strategy]
