"""Optuna's samplers as strategies: ``tpe``, ``cmaes``, ``gp`` and ``nsga2``.

One adapter drives an in-memory Optuna study with ask/tell: each ask walks the space as Optuna parameters
(:mod:`.optuna_space`), each tell ends the Optuna trial of that ask (succeeded: COMPLETE with the score, the
study maximises; pruned: PRUNED; failed, constraint, skipped: FAIL). The sampler's seed is the strategy's seed
and Optuna sees the same calls again on resume, so the proposals replay exactly.

Optuna does not avoid repeats (plain TPE on NAS-Bench-201 spends a quarter of 200 trials on them); the adapter
does. An Optuna trial that repeats an architecture asked before is ended at once as FAIL, which the samplers
ignore (telling the old result again would weigh it twice and make the next repeat likelier), and the adapter
asks instead for an unseen neighbour of that architecture (one step away, ``space.neighbours``), or an unseen
random one when it has none, handed to Optuna as an enqueued trial so the sampler learns from it. So a repeat
costs one sampler call, and the search moves where the sampler wanted to go. Repeats happen only once the space
has no unseen architecture.

Resume: a short history replays exactly (the same calls, so the same proposals). A long one (more asks than
``exact_replay_asks``, per sampler in :data:`EXACT_REPLAY_ASKS`) is restored without asking the sampler: the most
recent :data:`RESTORE_WINDOW` outcomes are added to a fresh study in bulk (``study.add_trials``: the sampler's
cost per ask grows with the study; GP's with its cube), asks still unanswered become RUNNING trials that later
tells end, and the sampler is seeded from the seed and the history's length. NSGA-II's trials are given
generations in order, so it goes on from the last full generation; CMA-ES starts a new distribution.

Optuna is imported when a strategy is built, not when the registry is (it costs half a second).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from nasapp.engine.strategies.base import (
    HistoryEvent,
    MultiObjectiveOptions,
    Strategy,
    StrategyEntry,
    StrategyOptions,
    TrialOutcome,
    asks_of,
    objective_values,
    untold,
)
from nasapp.engine.strategies.optuna_space import arch_params, param_distributions, suggest_arch

if TYPE_CHECKING:
    import optuna

_SAMPLE_TRIES = 200
_ENUMERATE_BELOW = 100_000  # spaces this small fall back to drawing from the unseen ones
# the longest history replayed exactly; GP's ask takes seconds past a hundred trials, TPE's grows with the study
EXACT_REPLAY_ASKS = {"tpe": 500, "cmaes": 500, "gp": 40, "nsga2": 1_000}
RESTORE_WINDOW = {"tpe": 1_000, "cmaes": 1_000, "gp": 50, "nsga2": 1_000}  # outcomes a restored study holds


class StartupOptions(StrategyOptions):
    """Samplers that propose at random until ``n_startup_trials`` trials have ended (Optuna's default: 10)."""

    n_startup_trials: int = Field(10, ge=0)

    @property
    def random_start(self) -> int | None:
        return self.n_startup_trials


class TPEOptions(StartupOptions):
    name: Literal["tpe"] = "tpe"
    # one joint density over the parameters (group-decomposed for conditional ones), where Optuna's default
    # is independent; on NAS-Bench-201 (30 seeds) regret after 100 trials 0.027 against 0.069, optimum by 200
    # in 30/30 searches against 29/30 (docs/BENCHMARKS.md)
    multivariate: bool = True


class CmaEsOptions(StartupOptions):
    name: Literal["cmaes"] = "cmaes"
    n_startup_trials: int = Field(1, ge=0)
    popsize: int | None = Field(None, ge=2)  # None: CMA-ES's own 4 + 3 ln(dimensions)
    with_margin: bool = False  # CMA-ES with margin: keeps integer dimensions from collapsing on one value


class GPOptions(StartupOptions):
    name: Literal["gp"] = "gp"


class NSGA2Options(MultiObjectiveOptions):
    name: Literal["nsga2"] = "nsga2"
    # Optuna's default is 50; 20 suits NAS budgets (NAS-Bench-201, 200 trials, 20 seeds: regret 0.002 against
    # 0.138 with 50)
    population_size: int = Field(20, ge=2)

    @property
    def random_start(self) -> int | None:
        return self.population_size


@dataclass(frozen=True)
class _Ending:
    """How an Optuna trial ends: its state and, when COMPLETE, its values."""

    state: str  # an optuna.trial.TrialState name: COMPLETE, PRUNED or FAIL (RUNNING: restored, not told)
    values: tuple[float, ...] | None = None


def _optuna() -> Any:
    """Optuna, quiet: no INFO line per trial and no experimental-feature warnings in ``nasapp run`` output."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def make_sampler(options: StrategyOptions, seed: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a ``tpe``, ``cmaes``, ``gp`` or ``nsga2`` options model, seeded."""
    samplers = _optuna().samplers
    seed = seed % 2**32  # numpy's RandomState range
    if isinstance(options, TPEOptions):
        return samplers.TPESampler(seed=seed, n_startup_trials=options.n_startup_trials,
                                   multivariate=options.multivariate, group=options.multivariate,
                                   constant_liar=True)
    if isinstance(options, CmaEsOptions):
        return samplers.CmaEsSampler(seed=seed, n_startup_trials=options.n_startup_trials, popsize=options.popsize,
                                     with_margin=options.with_margin, warn_independent_sampling=False)
    if isinstance(options, GPOptions):
        return samplers.GPSampler(seed=seed, n_startup_trials=options.n_startup_trials,
                                  warn_independent_sampling=False)
    if isinstance(options, NSGA2Options):
        return samplers.NSGAIISampler(seed=seed, population_size=options.population_size)
    raise TypeError(f"no Optuna sampler for options {type(options).__name__}")


class OptunaStrategy(Strategy):
    """An Optuna sampler behind the ask/tell interface (see the module docstring)."""

    def __init__(self, space: Any, seed: int, options: StrategyOptions) -> None:
        super().__init__(space, seed, options)
        self.name = options.name
        self.slots = space.slots()
        self.objectives = list(getattr(options, "objectives", []))
        self._trial_state = _optuna().trial.TrialState
        self.study = _optuna().create_study(sampler=make_sampler(options, seed),
                                            directions=["maximize"] * (1 + len(self.objectives)))
        self.asked: set[str] = set()  # fingerprints of every architecture proposed
        # ask number -> its Optuna trial (a trial number after a restore), fingerprint
        self.pending: dict[int, tuple[optuna.Trial | int, str]] = {}
        self.asks = 0
        self.exact_replay_asks = EXACT_REPLAY_ASKS.get(self.name, Strategy.exact_replay_asks)

    def ask(self, n: int = 1) -> list[Any]:
        """``n`` architectures, pairwise different and never asked before (while the space has unseen ones);
        the k-th architecture asked overall is ask number k, which ``tell`` matches by ``outcome.number``."""
        batch = []
        for _ in range(n):
            trial, arch = self._new_trial()
            fingerprint = self.space.fingerprint(arch)
            self.asked.add(fingerprint)
            self.pending[self.asks] = (trial, fingerprint)
            self.asks += 1
            batch.append(arch)
        return batch

    def propose(self) -> Any:
        return self.ask(1)[0]

    def tell(self, outcome: TrialOutcome) -> None:
        """End the Optuna trial of ``outcome``'s ask; an outcome of an architecture never asked is ignored."""
        fingerprint = self.space.fingerprint(outcome.arch)
        trial = self._take_pending(outcome.number, fingerprint)
        if trial is None:
            return
        self._end(trial, self._ending(outcome))

    def restore(self, history: list[HistoryEvent]) -> None:  # type: ignore[override]
        """A long history in bulk: its most recent outcomes as finished trials of a fresh study (module docs)."""
        optuna = _optuna()
        asks = asks_of(history)
        self.asked.update(ask.fingerprint for ask in asks)
        self.asks = len(asks)
        sampler = make_sampler(self.options, int(self.reseed(history).integers(2**32)))  # type: ignore[arg-type]
        self.study = optuna.create_study(sampler=sampler, directions=["maximize"] * (1 + len(self.objectives)))
        asked_numbers = {ask.number for ask in asks}
        tells = [e for e in history if isinstance(e, TrialOutcome) and e.number in asked_numbers]
        window = tells[-RESTORE_WINDOW.get(self.name, 1_000):]
        generation_key = getattr(type(sampler), "_get_generation_key", None)
        population = getattr(self.options, "population_size", 0)
        trials, complete = [], 0
        for outcome in window:
            ending = self._ending(outcome)
            attrs = {generation_key(): complete // population} if generation_key and population else {}
            complete += ending.state == "COMPLETE"
            trials.append(self._frozen(optuna, outcome.arch, ending, attrs))
        open_asks = untold(history)
        trials += [self._frozen(optuna, ask.arch, _Ending("RUNNING"), {}) for _, ask in open_asks]
        self.study.add_trials(trials)
        for (k, ask), number in zip(open_asks, range(len(window), len(trials)), strict=True):
            self.pending[k] = (number, ask.fingerprint)

    def _frozen(self, optuna: Any, arch: Any, ending: _Ending, attrs: dict[str, Any]) -> Any:
        params = arch_params(self.space, self.slots, arch)
        distributions = param_distributions(self.slots, params)
        values = list(ending.values) if ending.values is not None else None
        return optuna.trial.create_trial(state=self._trial_state[ending.state], values=values, params=params,
                                         distributions=distributions, system_attrs=attrs)

    # -- asking --------------------------------------------------------------------------------------------

    def _new_trial(self) -> tuple[optuna.Trial, Any]:
        trial = self.study.ask()
        arch = suggest_arch(trial, self.space, self.slots)
        if self._exhausted() or self.space.fingerprint(arch) not in self.asked:
            return trial, arch
        self._end(trial, _Ending("FAIL"))
        arch = self._unseen_neighbour(arch)
        self.study.enqueue_trial(arch_params(self.space, self.slots, arch))
        trial = self.study.ask()
        return trial, suggest_arch(trial, self.space, self.slots)

    def _exhausted(self) -> bool:
        return self.space.is_finite() and len(self.asked) >= self.space.size()

    def _unseen_neighbour(self, arch: Any) -> Any:
        """A neighbour of ``arch`` not asked before, drawn with the strategy's rng; else any unseen one."""
        neighbours = self.space.neighbours(arch)
        for i in self.rng.permutation(len(neighbours)):
            if self.space.fingerprint(neighbours[int(i)]) not in self.asked:
                return neighbours[int(i)]
        return self._unseen_sample()

    def _unseen_sample(self) -> Any:
        """A random architecture not asked before (drawn with the strategy's rng)."""
        for _ in range(_SAMPLE_TRIES):
            arch = self.space.sample(self.rng)
            if self.space.fingerprint(arch) not in self.asked:
                return arch
        if self.space.is_finite() and self.space.size() <= _ENUMERATE_BELOW:
            unseen = [a for a in self.space.enumerate() if self.space.fingerprint(a) not in self.asked]
            return unseen[int(self.rng.integers(len(unseen)))]
        return arch

    # -- telling -------------------------------------------------------------------------------------------

    def _take_pending(self, number: int, fingerprint: str) -> optuna.Trial | int | None:
        """The Optuna trial of ask ``number``; when that ask was of another architecture, the oldest pending
        ask of this one."""
        entry = self.pending.get(number)
        if entry is None or entry[1] != fingerprint:
            number = next((k for k, (_, fp) in self.pending.items() if fp == fingerprint), -1)
        entry = self.pending.pop(number, None)
        return entry[0] if entry is not None else None

    def _ending(self, outcome: TrialOutcome) -> _Ending:
        if outcome.state == "pruned":
            return _Ending("PRUNED")
        if self.objectives:
            values = objective_values(outcome, self.objectives)
        else:
            values = (float(outcome.score),) if outcome.succeeded else None  # type: ignore[arg-type]
        if values is None or not all(math.isfinite(v) for v in values):
            return _Ending("FAIL")
        return _Ending("COMPLETE", values)

    def _end(self, trial: optuna.Trial | int, ending: _Ending) -> None:
        values = list(ending.values) if ending.values is not None else None
        self.study.tell(trial, values, state=self._trial_state[ending.state])


TPE_ENTRY = StrategyEntry(
    "tpe", "Optuna's TPE: Parzen densities of good and bad trials, multivariate (Bergstra 2011, Falkner 2018)",
    TPEOptions, OptunaStrategy)
CMAES_ENTRY = StrategyEntry(
    "cmaes", "Optuna's CMA-ES on integer, length and floating dimensions; choices are sampled at random by its"
    " independent fallback sampler", CmaEsOptions, OptunaStrategy)
GP_ENTRY = StrategyEntry(
    "gp", "Optuna's Gaussian-process Bayesian optimisation (log expected improvement); slow past a few hundred"
    " trials", GPOptions, OptunaStrategy)
NSGA2_ENTRY = StrategyEntry(
    "nsga2", "Optuna's NSGA-II: genetic search on the Pareto front of the reward and the metrics in objectives"
    " (minimised)", NSGA2Options, OptunaStrategy)
