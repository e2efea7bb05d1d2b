"""What every registered strategy promises, on every shape of space: valid and pairwise-different proposals in a
batch, failed/pruned/skipped outcomes taken in stride, a replay of the same asks and tells (what `resume`
does) proposing the same architectures, and a long history resumed without a proposal or model fit per ask."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from optuna.study import Study

import nasapp as nas
from nasapp.engine.spaces.prebuilt import get_prebuilt
from nasapp.engine.strategies import STRATEGIES, Asked, TrialOutcome, make_strategy
from nasapp.engine.strategies.base import asks_of
from nasapp.engine.strategies.ensemble import MLPEnsemble
from nasapp.engine.strategies.optuna_samplers import RESTORE_WINDOW
from nasapp.engine.strategies.rl import RESTORE_WINDOW as RL_RESTORE_WINDOW
from nasapp.engine.strategies.rl import Reinforce

CONDITIONAL = nas.space({
    "stem": nas.choice([16, 24, 32]),
    "head": nas.choice({"pool": {}, "mlp": {"width": nas.integer(32, 256), "act": nas.choice(["relu", "gelu"])},
                        "attention": {"heads": nas.choice([1, 2, 4]), "dropout": nas.floating(0.0, 0.5)}}),
})
REPEATS = nas.space({"blocks": nas.repeat({"kernel": nas.choice([3, 5, 7]), "expand": nas.integer(1, 6)},
                                          min=1, max=6),
                     "lr": nas.floating(1e-4, 1e-1, log=True)})
HUGE = nas.space({f"edge{i}": nas.choice(["a", "b", "c", "d", "e"]) for i in range(30)})  # 5^30 ~ 9.3e20
SPACES = {"conditional": CONDITIONAL, "repeats": REPEATS, "huge": HUGE, "nb201": get_prebuilt("nb201").space,
          "mnasnet": get_prebuilt("mnasnet").space}
FAST = {"gp": {"n_startup_trials": 4}}  # options that keep a slow strategy's test short, where it has them
LONG_FAST = {"predictor": {"epochs": 10}}  # the long history's one fit, on 1,000 rows, kept short
TRIALS = 24
SLOW_ASKS = {"gp": 8}  # Optuna's GP takes seconds per ask: fewer trials keep its cases short
# and more with each pending trial (5 to 12 CPU s an ask with 1 to 7 pending on mnasnet): a batch of 3 still asks with
# trials pending, for a fraction of the time
BATCH = {"gp": 3}


def options(name: str, fast: dict = FAST) -> dict:
    table = {"name": name, **fast.get(name, {})}
    fields = STRATEGIES.get(name).options.model_fields
    return {k: v for k, v in table.items() if k == "name" or k in fields}


def make(name: str, space, seed: int, fast: dict = FAST):
    """The strategy, with a proxy scorer when it needs one (the pre-screen): the score itself, halved."""
    strategy = make_strategy(options(name, fast), space, seed=seed)
    if getattr(strategy, "needs_scorer", False):
        strategy.scorer = lambda archs: [score(space, arch) / 2 for arch in archs]
    return strategy


def score(space, arch) -> float:
    """A deterministic score with structure: the sum of the encoded positions the architecture uses."""
    return float(sum(v for v in space.encode(arch) if v != -1.0)) % 97


def outcome(space, number: int, arch) -> TrialOutcome:
    """Most succeed; every 5th fails, every 7th is pruned, every 11th skipped."""
    if number % 5 == 4:
        return TrialOutcome(number, arch, "failed", reason="error")
    if number % 7 == 6:
        return TrialOutcome(number, arch, "pruned", reason="early_stopping", pruned_at=10)
    if number % 11 == 10:
        return TrialOutcome(number, arch, "skipped", reason="predicted_latency")
    value = score(space, arch)
    return TrialOutcome(number, arch, "succeeded", score=value, reward=value, metrics={"latency_ms": value % 13})


def drive(strategy, space, trials: int) -> list[str]:
    """Ask one at a time (as the runner does) and tell each outcome; the fingerprints asked, in order."""
    asked = []
    for number in range(trials):
        arch = strategy.ask(1)[0]
        space.validate(arch)
        asked.append(space.fingerprint(arch))
        strategy.tell(outcome(space, number, arch))
    return asked


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_on_every_space(name, space_name):
    space = SPACES[space_name]
    strategy = make(name, space, seed=5)
    drive(strategy, space, SLOW_ASKS.get(name, TRIALS))
    size = BATCH.get(name, 8)
    batch = strategy.ask(size)
    for arch in batch:
        space.validate(arch)
    keys = {space.fingerprint(arch) for arch in batch}
    if getattr(strategy, "proposes_repeats", False):  # copies: one model trained again and again, by design
        assert len(keys) == 1
    else:
        assert len(keys) == size, "a batch holds the same architecture twice"


@pytest.mark.parametrize("space_name", ["conditional", "nb201"])
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_a_replay_proposes_the_same_architectures(name, space_name):
    """`resume` replays the stored asks and tells into a fresh strategy: it must then ask what the first did."""
    space = SPACES[space_name]
    first = make(name, space, seed=11)
    trials = SLOW_ASKS.get(name, TRIALS)
    history = drive(first, space, trials)
    following = [space.fingerprint(a) for a in first.ask(3)]
    replayed = make(name, space, seed=11)
    assert drive(replayed, space, trials) == history
    assert [space.fingerprint(a) for a in replayed.ask(3)] == following


LONG = 1_200  # asks: past every strategy's exact_replay_asks, so resume restores instead of replaying
OPEN = 2  # the last asks of the long history were not told yet (running when the runner stopped)


def long_history(space, asks: int) -> list:
    """A stored history as the runner hands it to `replay`: each ask, then (but for the last OPEN) its tell."""
    rng = np.random.default_rng(7)
    history = []
    for number in range(asks):
        arch = space.sample(rng)
        history.append(Asked(number, arch, space.fingerprint(arch)))
        if number < asks - OPEN:
            history.append(outcome(space, number, arch))
    return history


class Calls:
    """Counts the calls whose number must not grow with the history: proposals, scorer calls and model fits."""

    def __init__(self, monkeypatch) -> None:
        self.counts: Counter[str] = Counter()
        self.monkeypatch = monkeypatch
        for owner, name in ((MLPEnsemble, "fit"), (Study, "ask"), (Reinforce, "_update")):
            self.count(owner, name, f"{owner.__name__}.{name}")

    def count(self, owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.counts[key] += 1
            return original(*args, **kwargs)

        self.monkeypatch.setattr(owner, name, counted)

    def strategy(self, strategy) -> None:
        """Count ``strategy``'s proposals (and those of the strategy it screens) and its scorer calls."""
        for target in (strategy, getattr(strategy, "base", None)):
            if target is not None:
                self.count(target, "ask", "ask")
                self.count(target, "propose", "ask")
        if getattr(strategy, "needs_scorer", False):
            self.count(strategy, "scorer", "scorer")


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_resuming_a_long_history_proposes_nothing_and_fits_once(name, monkeypatch):
    """Resume at scale (base.py: the replay rule): a history past ``exact_replay_asks`` is restored without one
    proposal, scorer call or model fit per ask; the next ask fits at most once, proposes nothing asked before,
    and two restores of one history propose the same."""
    monkeypatch.setitem(RESTORE_WINDOW, "gp", 20)  # GP's first ask after the restore fits on the window: short
    space = SPACES["nb201"]
    history = long_history(space, LONG)
    strategy = make(name, space, seed=3, fast=FAST | LONG_FAST)
    assert len(asks_of(history)) > strategy.exact_replay_asks
    calls = Calls(monkeypatch)
    calls.strategy(strategy)
    strategy.replay(history)
    assert calls.counts["ask"] == calls.counts["scorer"] == 0, calls.counts
    assert calls.counts["MLPEnsemble.fit"] == calls.counts["Study.ask"] == 0, calls.counts
    assert calls.counts["Reinforce._update"] <= RL_RESTORE_WINDOW, calls.counts
    for ask in asks_of(history)[-OPEN:]:  # the trials that were running end after the resume
        strategy.tell(outcome(space, ask.number, ask.arch))
    before = Counter(calls.counts)
    arch = strategy.ask(1)[0]
    space.validate(arch)
    assert calls.counts["MLPEnsemble.fit"] - before["MLPEnsemble.fit"] <= 1
    assert calls.counts["Study.ask"] - before["Study.ask"] <= 2  # a repeat costs one more (optuna_samplers.py)
    if not getattr(strategy, "proposes_repeats", False):
        assert space.fingerprint(arch) not in {ask.fingerprint for ask in asks_of(history)}
    again = make(name, space, seed=3, fast=FAST | LONG_FAST)
    again.replay(history)
    for ask in asks_of(history)[-OPEN:]:
        again.tell(outcome(space, ask.number, ask.arch))
    assert space.fingerprint(again.ask(1)[0]) == space.fingerprint(arch)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_a_short_history_replays_exactly(name):
    """Below ``exact_replay_asks`` `replay` makes the search's calls again: the same proposals follow."""
    space = SPACES["conditional"]
    first = make(name, space, seed=11)
    trials = SLOW_ASKS.get(name, TRIALS)
    history = []
    for number in range(trials):
        arch = first.ask(1)[0]
        history += [Asked(number, arch, space.fingerprint(arch)), outcome(space, number, arch)]
        first.tell(history[-1])
    replayed = make(name, space, seed=11)
    replayed.replay(history)
    assert [space.fingerprint(a) for a in replayed.ask(3)] == [space.fingerprint(a) for a in first.ask(3)]
