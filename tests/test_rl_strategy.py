"""The `rl` strategy (REINFORCE controller): valid, pairwise-different proposals on every shape of space,
outcomes that did not succeed taken in stride (and learned from), replay determinism, and that it learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import NO_TORCH, toy_job

import nasapp as nas
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.spaces.prebuilt import get_prebuilt
from nasapp.engine.strategies import TrialOutcome, make_strategy
from nasapp.engine.strategies.rl import Reinforce, RLOptions
from nasapp.store import Store

CONDITIONAL = nas.space({
    "stem": nas.choice([16, 24, 32]),
    "head": nas.choice({"pool": {}, "mlp": {"width": nas.integer(32, 256), "act": nas.choice(["relu", "gelu"])},
                        "attention": {"heads": nas.choice([1, 2, 4]), "dropout": nas.floating(0.0, 0.5)}}),
})
REPEAT = nas.space({"blocks": nas.repeat({"kernel": nas.choice([3, 5, 7]), "expand": nas.integer(1, 6)},
                                         min=1, max=6)})
FLOATS = nas.space({"lr": nas.floating(1e-4, 1e-1, log=True), "dropout": nas.floating(0.0, 0.5),
                    "width": nas.integer(8, 1024), "shift": nas.floating(-2.0, 2.0)})
HUGE = nas.space({f"edge{i}": nas.choice(["a", "b", "c", "d", "e"]) for i in range(30)})  # 5^30 ~ 9.3e20
SPACES = {"nb201": get_prebuilt("nb201").space, "mnasnet": get_prebuilt("mnasnet").space,
          "conditional": CONDITIONAL, "repeat": REPEAT, "floats": FLOATS, "huge": HUGE}
SYNTHETIC = nas.space({f"d{i}": nas.choice([0, 1, 2, 3]) for i in range(20)})  # reward: decisions equal to 0


def structured_score(space, arch) -> float:
    """A deterministic score with structure: the sum of the encoded positions the architecture uses."""
    return float(sum(v for v in space.encode(arch) if v != -1.0)) % 97


def mixed_outcome(space, number: int, arch) -> TrialOutcome:
    """Most succeed; every 5th fails, every 7th is pruned, every 11th skipped, every 13th over a limit."""
    if number % 5 == 4:
        return TrialOutcome(number, arch, "failed", reason="error")
    if number % 7 == 6:
        return TrialOutcome(number, arch, "pruned", reason="early_stopping", pruned_at=10)
    if number % 11 == 10:
        return TrialOutcome(number, arch, "skipped", reason="predicted_latency")
    if number % 13 == 12:
        return TrialOutcome(number, arch, "constraint", reason="memory")
    value = structured_score(space, arch)
    return TrialOutcome(number, arch, "succeeded", score=value, reward=value)


def drive(strategy, space, trials: int, outcome=mixed_outcome) -> list[str]:
    """Ask one at a time (as the runner does), tell each outcome; the fingerprints asked, in order."""
    asked = []
    for number in range(trials):
        arch = strategy.ask(1)[0]
        space.validate(arch)
        asked.append(space.fingerprint(arch))
        strategy.tell(outcome(space, number, arch))
    return asked


def rl(space, seed: int, **options) -> Reinforce:
    strategy = make_strategy({"name": "rl", **options}, space, seed)
    assert isinstance(strategy, Reinforce)
    return strategy


@pytest.mark.parametrize("space_name", sorted(SPACES))
def test_proposals_are_valid_and_pairwise_different_on_every_shape_of_space(space_name):
    space = SPACES[space_name]
    strategy = rl(space, seed=3)
    asked = drive(strategy, space, 40)
    assert len(set(asked)) == len(asked)
    batch = strategy.ask(8)
    for arch in batch:
        space.validate(arch)
    keys = {space.fingerprint(arch) for arch in batch}
    assert len(keys) == 8 and not keys & set(asked)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("space_name", ["conditional", "floats", "nb201"])
def test_a_replay_proposes_the_same_architectures(space_name, batch):
    """`resume` replays the stored asks and tells into a fresh strategy: it must then ask what the first did."""
    space = SPACES[space_name]
    first = rl(space, seed=11, batch=batch)
    history = drive(first, space, 30)
    following = [space.fingerprint(a) for a in first.ask(3)]
    replayed = rl(space, seed=11, batch=batch)
    assert drive(replayed, space, 30) == history
    assert [space.fingerprint(a) for a in replayed.ask(3)] == following
    assert [space.fingerprint(a) for a in rl(space, seed=12, batch=batch).ask(3)] != following


def zeros(arch) -> float:
    return float(sum(value == 0 for value in arch.values()))


def last_50_mean(strategy, space, reward, trials: int = 300) -> float:
    rewards = []
    for number in range(trials):
        arch = strategy.ask(1)[0]
        rewards.append(reward(arch))
        strategy.tell(TrialOutcome(number, arch, "succeeded", score=rewards[-1], reward=rewards[-1]))
    return float(np.mean(rewards[-50:]))


def test_it_learns_which_options_are_rewarded():
    """20 choices of 4, reward = how many are option 0: random averages 5; the policy must climb well past it."""
    learned = last_50_mean(rl(SYNTHETIC, seed=0), SYNTHETIC, zeros)
    random = last_50_mean(make_strategy({"name": "random"}, SYNTHETIC, 0), SYNTHETIC, zeros)
    assert random < 6.5
    assert learned > random + 5


def test_its_gaussians_learn_floats_and_wide_integers():
    """Reward peaks at 80 % of each range (on the log scale for the log float): the samples must move there."""
    def closeness(arch) -> float:
        units = [math.log(arch["lr"] / 1e-4) / math.log(1e3), arch["dropout"] / 0.5, (arch["width"] - 8) / 1016,
                 (arch["shift"] + 2) / 4]
        return -sum((u - 0.8) ** 2 for u in units)

    learned = last_50_mean(rl(FLOATS, seed=0), FLOATS, closeness)
    random = last_50_mean(make_strategy({"name": "random"}, FLOATS, 0), FLOATS, closeness)
    assert learned > random / 3  # random: about -0.65 (4 x E[(U - 0.8)^2])


@pytest.mark.parametrize("state", ["failed", "pruned", "skipped", "constraint"])
def test_outcomes_that_did_not_succeed_count_as_the_worst_success(state):
    """An option whose trials never succeed gets proposed less and less."""
    space = nas.space({"op": nas.choice(["ok", "broken"]), **{f"d{i}": nas.choice([0, 1, 2]) for i in range(6)}})

    def outcome(space, number, arch):
        if arch["op"] == "broken":
            return TrialOutcome(number, arch, state, reason="error")
        value = zeros({k: v for k, v in arch.items() if k != "op"})
        return TrialOutcome(number, arch, "succeeded", score=value, reward=value)

    strategy = rl(space, seed=1)
    drive(strategy, space, 150, outcome)
    broken = sum(arch["op"] == "broken" for arch in strategy.ask(40))
    assert broken < 10  # random proposes about 20


def test_nothing_succeeding_teaches_nothing_and_breaks_nothing():
    space = SPACES["conditional"]
    strategy = rl(space, seed=2)
    before = strategy.policy.logits.copy()
    asked = drive(strategy, space, 20, lambda s, n, a: TrialOutcome(n, a, "failed", reason="oom"))
    assert len(set(asked)) == 20
    assert np.array_equal(strategy.policy.logits, before)


def test_a_small_space_is_exhausted_before_any_repeat_and_then_searched_again():
    space = nas.space({"a": nas.choice([1, 2, 3]), "b": nas.boolean()})  # 6 architectures
    strategy = rl(space, seed=4)
    first_pass = drive(strategy, space, 6)
    assert len(set(first_pass)) == 6
    second_pass = drive(strategy, space, 6)
    assert set(second_pass) <= set(first_pass) and len(second_pass) == 6


def test_an_outcome_for_an_architecture_it_did_not_ask_is_learned_from():
    """A trial requeued on resume, or an architecture from elsewhere, still has a gradient: from its encoding."""
    space = SPACES["repeat"]
    strategy = rl(space, seed=5)
    for number, arch in enumerate(space.sample(number) for number in range(6)):
        strategy.tell(TrialOutcome(number, arch, "succeeded", score=float(number), reward=float(number)))
    assert not np.array_equal(strategy.policy.logits[0], np.zeros_like(strategy.policy.logits[0]))
    space.validate(strategy.ask(1)[0])


def test_only_the_positions_an_architecture_uses_are_its_decisions():
    space = nas.space({"head": nas.choice({"pool": {}, "mlp": {"width": nas.integer(-3, 3)}}),
                       "blocks": nas.repeat(nas.choice([3, 5]), min=1, max=3)})
    strategy = rl(space, seed=0)
    paths = [slot.path for slot in space.slots()]
    active = strategy._active({"head": {"mlp": {"width": -1}}, "blocks": [5]})  # -1 is the SENTINEL's value
    assert [p for p, a in zip(paths, active, strict=True) if a] == ["head", "head{mlp}.width", "blocks",
                                                                     "blocks[0]"]
    active = strategy._active({"head": {"pool": {}}, "blocks": [3, 3, 5]})
    assert [p for p, a in zip(paths, active, strict=True) if a] == ["head", "blocks", "blocks[0]", "blocks[1]",
                                                                     "blocks[2]"]


def test_its_options_are_checked_in_the_job_file(tmp_path):
    assert RLOptions().batch == 1
    bad = {"learning_rate = 0": "strategy.learning_rate: Input should be greater than 0",
           "baseline_decay = 1.0": "strategy.baseline_decay: Input should be less than 1",
           "entropy_weight = -1": "strategy.entropy_weight: Input should be greater than or equal to 0",
           "batch = 0": "strategy.batch: Input should be greater than or equal to 1",
           "population = 4": "strategy.population: unknown key"}
    for line, message in bad.items():
        job = toy_job(tmp_path, strategy="rl")
        job.write_text(job.read_text().replace('name = "rl"', f'name = "rl"\n{line}'))
        with pytest.raises(NasappError, match=message):
            load_job(job)


@pytest.mark.slow
def test_it_runs_a_real_search(tmp_path):
    job = toy_job(tmp_path, strategy="rl", max_trials=8, parallel=2)
    job.write_text(job.read_text().replace('name = "rl"', 'name = "rl"\nbatch = 2'))
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    trials = store.trials(job_id)
    assert len(trials) == 8 and len({str(t.arch) for t in trials}) == 8
