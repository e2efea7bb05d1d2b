"""Strategies: the ask/tell interface, the registry, determinism, and what each strategy promises."""

from __future__ import annotations

import copy

import pytest

import nasapp as nas
from nasapp.engine.errors import NasappError
from nasapp.engine.strategies import (
    STRATEGIES,
    RandomSearch,
    RegularizedEvolution,
    TrialOutcome,
    make_strategy,
)
from nasapp.engine.strategies.evolution import EvolutionOptions

SPACE = nas.space({"a": nas.choice([0, 1, 2, 3]), "b": nas.integer(0, 4)})  # 20 architectures
WIDE = nas.space({"op": nas.choice(["conv", "pool", "skip", "mbconv"]), "kernel": nas.choice([3, 5, 7]),
                  "width": nas.integer(8, 64), "se": nas.boolean(), "depth": nas.integer(1, 6)})


def succeeded(number: int, arch, score: float) -> TrialOutcome:
    return TrialOutcome(number, arch, "succeeded", score=score, reward=score)


def test_random_search_has_no_duplicates_until_the_space_is_exhausted():
    strategy = RandomSearch(SPACE, seed=3)
    first = [SPACE.fingerprint(strategy.ask(1)[0]) for _ in range(20)]
    assert len(set(first)) == 20
    assert SPACE.is_valid(strategy.ask(1)[0])  # then a second pass begins


def test_a_batch_holds_no_duplicates():
    strategy = make_strategy({"name": "evolution", "population": 2, "sample_size": 2}, SPACE, seed=0)
    for number, arch in enumerate(strategy.ask(2)):
        strategy.tell(succeeded(number, arch, float(arch["a"])))
    batch = strategy.ask(7)  # the winner always wins: its 7 mutants, which repeat often without the check
    assert len({SPACE.fingerprint(a) for a in batch}) == 7


def _drive(strategy, n: int) -> list:
    archs = []
    for number in range(n):
        arch = strategy.ask(1)[0]
        archs.append(arch)
        strategy.tell(succeeded(number, arch, float(arch["a"] * 10 + arch["b"])))
    return archs


@pytest.mark.parametrize("options", [{"name": "random"}, {"name": "evolution", "population": 5, "sample_size": 2}])
def test_strategies_are_deterministic_given_seed_and_history(options):
    one = _drive(make_strategy(options, SPACE, 7), 15)
    two = _drive(make_strategy(options, SPACE, 7), 15)
    other = _drive(make_strategy(options, SPACE, 8), 15)
    assert one == two and one != other


def test_an_evolution_child_is_one_mutation_from_the_tournament_winner():
    strategy = RegularizedEvolution(WIDE, seed=0, options=EvolutionOptions(population=6, sample_size=3))
    for number in range(6):
        arch = strategy.ask(1)[0]
        strategy.tell(succeeded(number, arch, float(arch["width"])))
    for number in range(6, 30):
        winner = copy.deepcopy(strategy).tournament_winner()  # the same draws the next ask makes
        assert winner in [member for member, _ in strategy.population]
        child = strategy.ask(1)[0]
        changed = [key for key in child if child[key] != winner[key]]
        assert len(changed) == 1, (winner, child)
        strategy.tell(succeeded(number, child, float(child["width"])))


def test_evolution_ignores_failed_pruned_and_skipped_trials():
    strategy = RegularizedEvolution(SPACE, seed=0, options=EvolutionOptions(population=3, sample_size=2))
    for number, state in enumerate(["failed", "pruned", "skipped", "constraint", "failed", "failed"]):
        strategy.tell(TrialOutcome(number, strategy.ask(1)[0], state))  # type: ignore[arg-type]
    assert not strategy.population and SPACE.is_valid(strategy.ask(1)[0])


def test_the_registry_lists_strategies_and_refuses_unknown_names():
    assert {"random", "evolution"} <= set(STRATEGIES.names())
    assert all(entry.description for entry in STRATEGIES)
    with pytest.raises(NasappError, match="unknown strategy 'bayes'; choose one of: .*evolution"):
        make_strategy({"name": "bayes"}, SPACE, 0)
