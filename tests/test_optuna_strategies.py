"""The Optuna strategies (tpe, cmaes, gp, nsga2): the space walk, ask/tell on every kind of space, no repeats,
how outcomes reach Optuna, the multi-objective NSGA-II, and determinism under replay (resume)."""

from __future__ import annotations

import optuna
import pytest
from helpers import NO_TORCH, toy_job

import nasapp as nas
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.spaces.prebuilt import get_prebuilt
from nasapp.engine.strategies import TrialOutcome, make_strategy
from nasapp.engine.strategies.optuna_space import arch_params, suggest_arch
from nasapp.store import Store

CONDITIONAL = nas.space({
    "stem": nas.choice([16, 24]), "act": nas.choice(["relu", "gelu", "swish"]),
    "head": nas.choice({"pool": {}, "mlp": {"width": nas.choice([64, 128, 256]), "depth": nas.integer(1, 4)}}),
})  # 78 architectures
REPEAT = nas.space({"blocks": nas.repeat({"op": nas.choice(["conv", "dw", "skip"]), "kernel": nas.choice([3, 5])},
                                         min=1, max=4), "width": nas.integer(8, 32)})
FLOATS = nas.space({"lr": nas.floating(1e-4, 1e-1, log=True), "shift": nas.floating(-2.0, 0.0),
                    "offset": nas.integer(-3, 3), "op": nas.choice(["a", "b"])})  # -1 is a used value here
HUGE = nas.space({f"layer{i}": nas.choice(["a", "b", "c", "d", "e"]) for i in range(30)})  # 5**30 ~ 9.3e20
SMALL = nas.space({"a": nas.choice([0, 1, 2, 3]), "b": nas.integer(0, 4)})  # 20 architectures
SPACES = {"nb201": get_prebuilt("nb201").space, "mnasnet": get_prebuilt("mnasnet").space,
          "conditional": CONDITIONAL, "repeat": REPEAT, "floats": FLOATS, "huge": HUGE}
# gp fits a model per ask: fewer trials, an earlier start
OPTIONS = {"tpe": {"name": "tpe"}, "cmaes": {"name": "cmaes"}, "nsga2": {"name": "nsga2", "population_size": 8},
           "gp": {"name": "gp", "n_startup_trials": 4}}
TRIALS = {"tpe": 30, "cmaes": 30, "nsga2": 30, "gp": 12}


def _score(arch) -> float:
    """A deterministic score of any architecture (its canonical text, hashed to [0, 1))."""
    return (sum(ord(c) * (i + 1) for i, c in enumerate(repr(arch))) % 1000) / 1000


def _outcome(number: int, arch) -> TrialOutcome:
    """Every 7th trial fails, every 5th is pruned, the others succeed."""
    if number % 7 == 6:
        return TrialOutcome(number, arch, "failed", reason="error")
    if number % 5 == 4:
        return TrialOutcome(number, arch, "pruned", pruned_at=1)
    score = _score(arch)
    return TrialOutcome(number, arch, "succeeded", score=score, reward=score, metrics={"latency_ms": 1 + score})


def test_the_walk_suggests_exactly_the_dimensions_an_architecture_uses():
    for space in SPACES.values():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        slots = space.slots()
        for seed in range(5):
            arch = space.sample(seed)
            study.enqueue_trial(arch_params(space, slots, arch))
            trial = study.ask()
            assert suggest_arch(trial, space, slots) == space.canonical(arch)
            study.tell(trial, 0.0)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):  # an unused branch is never a parameter
        trial = study.ask()
        arch = suggest_arch(trial, CONDITIONAL, CONDITIONAL.slots())
        used = {"stem", "act", "head"} | ({"head{mlp}.width", "head{mlp}.depth"} if "mlp" in arch["head"] else set())
        assert set(trial.params) == used
        study.tell(trial, 0.0)


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("space_name", SPACES)
def test_asks_are_valid_and_never_repeat_through_a_search_with_failures(name, space_name):
    space = SPACES[space_name]
    strategy = make_strategy(OPTIONS[name], space, seed=0)
    batch = strategy.ask(8)
    seen = [space.fingerprint(arch) for arch in batch]
    assert len(set(seen)) == 8 and all(space.is_valid(arch) for arch in batch)
    for number in (3, 0, 7, 1, 2, 6, 4, 5):  # completion order, not ask order
        strategy.tell(_outcome(number, batch[number]))
    for number in range(8, TRIALS[name]):
        arch = strategy.ask(1)[0]
        assert space.is_valid(arch)
        seen.append(space.fingerprint(arch))
        strategy.tell(_outcome(number, arch))
    assert len(set(seen)) == len(seen)
    assert not strategy.pending
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in strategy.study.trials)


@pytest.mark.parametrize("name", ["tpe", "cmaes", "nsga2"])
def test_a_small_space_is_exhausted_without_repeats_then_repeats_are_allowed(name):
    strategy = make_strategy(OPTIONS[name], SMALL, seed=1)
    seen = []
    for number in range(20):
        arch = strategy.ask(1)[0]
        seen.append(SMALL.fingerprint(arch))
        strategy.tell(_outcome(number, arch))
    assert len(set(seen)) == 20
    assert SMALL.is_valid(strategy.ask(1)[0])


def test_each_outcome_ends_its_own_optuna_trial_in_the_matching_state():
    strategy = make_strategy({"name": "tpe"}, HUGE, seed=0)
    a, b, c, d = strategy.ask(4)
    strategy.tell(TrialOutcome(2, c, "pruned", pruned_at=3))
    strategy.tell(TrialOutcome(0, a, "succeeded", score=0.75, reward=0.75))
    strategy.tell(TrialOutcome(3, d, "skipped", reason="predicted_latency"))
    strategy.tell(TrialOutcome(1, b, "constraint", reason="constraint"))
    trials = strategy.study.trials
    state = optuna.trial.TrialState
    assert [t.state for t in trials] == [state.COMPLETE, state.FAIL, state.PRUNED, state.FAIL]
    assert trials[0].value == 0.75
    assert strategy.study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert suggest_arch(optuna.trial.FixedTrial(trials[2].params), HUGE, HUGE.slots()) == c


def test_nsga2_with_objectives_maximises_the_score_and_minimises_each_objective():
    strategy = make_strategy({"name": "nsga2", "objectives": ["latency_ms", "flops"]}, HUGE, seed=0)
    assert len(strategy.study.directions) == 3
    a, b = strategy.ask(2)
    strategy.tell(TrialOutcome(0, a, "succeeded", score=0.9, reward=0.9, metrics={"latency_ms": 3.0, "flops": 5.0}))
    strategy.tell(TrialOutcome(1, b, "succeeded", score=0.8, reward=0.8, metrics={"latency_ms": 2.0}))
    first, second = strategy.study.trials
    assert first.values == [0.9, -3.0, -5.0]
    assert second.state == optuna.trial.TrialState.FAIL  # a missing objective cannot be placed on a front
    single = make_strategy({"name": "nsga2"}, HUGE, seed=0)
    assert len(single.study.directions) == 1


def _calls(strategy, space, n: int) -> tuple[list, list]:
    """Drive ``strategy`` as a runner with two parallel slots would; returns the proposals and the calls made."""
    proposals, calls, running = [], [], []
    for number in range(n):
        arch = strategy.ask(1)[0]
        proposals.append(space.fingerprint(arch))
        calls.append(("ask", None))
        running.append(_outcome(number, arch))
        if len(running) == 2:  # the later one finishes first
            for outcome in (running.pop(), running.pop()):
                strategy.tell(outcome)
                calls.append(("tell", outcome))
    return proposals, calls


@pytest.mark.parametrize("name", OPTIONS)
def test_proposals_are_deterministic_and_replaying_the_calls_resumes_the_search(name):
    n = TRIALS[name] // 2
    proposals, calls = _calls(make_strategy(OPTIONS[name], CONDITIONAL, 5), CONDITIONAL, n)
    again, _ = _calls(make_strategy(OPTIONS[name], CONDITIONAL, 5), CONDITIONAL, n)
    other, _ = _calls(make_strategy(OPTIONS[name], CONDITIONAL, 6), CONDITIONAL, 3)  # random start: cheap
    assert proposals == again and proposals[:3] != other
    original = make_strategy(OPTIONS[name], FLOATS, 3)
    _, history = _calls(original, FLOATS, n)
    resumed = make_strategy(OPTIONS[name], FLOATS, 3)
    for kind, outcome in history:  # what Runner._replay_history does
        resumed.ask(1) if kind == "ask" else resumed.tell(outcome)
    assert resumed.ask(3) == original.ask(3)


@pytest.mark.slow
def test_tpe_runs_a_real_parallel_search(tmp_path):
    job = toy_job(tmp_path, strategy="tpe", max_trials=12, parallel=2)
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    trials = store.trials(job_id)
    assert len(trials) == 12 and all(t.status == "succeeded" for t in trials)
    assert len({t.fingerprint for t in trials}) == 12


def test_a_repeat_that_optuna_proposes_becomes_an_unseen_neighbour_of_it():
    """The adapter never trains a repeat: Optuna's repeated proposal ends FAIL (ignored by the sampler) and a
    neighbour of it that was never asked is asked instead, enqueued so that the sampler learns from it."""
    strategy = make_strategy({"name": "tpe"}, HUGE, seed=0)
    first = strategy.ask(1)[0]
    strategy.tell(_outcome(0, first))
    strategy.study.enqueue_trial(arch_params(HUGE, HUGE.slots(), first))  # Optuna's next proposal: a repeat
    second = strategy.ask(1)[0]
    neighbours = {HUGE.fingerprint(a) for a in HUGE.neighbours(first)}
    assert HUGE.fingerprint(second) in neighbours
    states = [t.state for t in strategy.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                      optuna.trial.TrialState.RUNNING]
    assert suggest_arch(optuna.trial.FixedTrial(strategy.study.trials[2].params), HUGE, HUGE.slots()) == second
