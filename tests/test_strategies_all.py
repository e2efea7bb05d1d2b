"""What every registered strategy promises, on every shape of space: valid and pairwise-different proposals in a
batch, failed/pruned/skipped outcomes taken in stride, and a replay of the same asks and tells (what `resume`
does) proposing the same architectures."""

from __future__ import annotations

import pytest

import nasapp as nas
from nasapp.engine.spaces.prebuilt import get_prebuilt
from nasapp.engine.strategies import STRATEGIES, TrialOutcome, make_strategy

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
TRIALS = 24
SLOW_ASKS = {"gp": 8}  # Optuna's GP takes seconds per ask: fewer trials keep its cases short
# and more with each pending trial (5 to 12 CPU s an ask with 1 to 7 pending on mnasnet): a batch of 3 still asks with
# trials pending, for a fraction of the time
BATCH = {"gp": 3}


def options(name: str) -> dict:
    table = {"name": name, **FAST.get(name, {})}
    fields = STRATEGIES.get(name).options.model_fields
    return {k: v for k, v in table.items() if k == "name" or k in fields}


def make(name: str, space, seed: int):
    """The strategy, with a proxy scorer when it needs one (the pre-screen): the score itself, halved."""
    strategy = make_strategy(options(name), space, seed=seed)
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
