"""Strategies: deterministic given seed and history; random has no duplicates; evolution mutates the best."""

from __future__ import annotations

import nasapp as nas
from nasapp.engine.strategies import RandomSearch, RegularizedEvolution, make_strategy

SPACE = nas.space({"a": nas.choice([0, 1, 2, 3]), "b": nas.integer(0, 4)})  # 20 architectures


def test_random_search_has_no_duplicates_until_the_space_is_exhausted():
    strategy = RandomSearch(SPACE, seed=3)
    first = [SPACE.fingerprint(strategy.ask()) for _ in range(20)]
    assert len(set(first)) == 20
    assert SPACE.is_valid(strategy.ask())  # then a second pass begins


def _drive(strategy, n: int) -> list:
    archs = []
    for _ in range(n):
        arch = strategy.ask()
        archs.append(arch)
        strategy.tell(arch, float(arch["a"] * 10 + arch["b"]))
    return archs


def test_strategies_are_deterministic_given_seed_and_history():
    for name in ("random", "evolution"):
        one = _drive(make_strategy(name, SPACE, 7, {"population": 5, "sample_size": 2}), 15)
        two = _drive(make_strategy(name, SPACE, 7, {"population": 5, "sample_size": 2}), 15)
        other = _drive(make_strategy(name, SPACE, 8, {"population": 5, "sample_size": 2}), 15)
        assert one == two and one != other


def test_evolution_mutates_tournament_winners_after_the_first_population():
    big = nas.space({"x": nas.integer(0, 1000)})
    strategy = RegularizedEvolution(big, seed=0, population=4, sample_size=4)
    for _ in range(4):
        arch = strategy.ask()
        strategy.tell(arch, -abs(arch["x"] - 500))
    best = max(strategy.population, key=lambda m: m[1])[0]
    child = strategy.ask()  # sample_size == population: the parent is the best member
    assert child != best and big.is_valid(child)


def test_evolution_ignores_failed_trials():
    strategy = RegularizedEvolution(SPACE, seed=0, population=3, sample_size=2)
    for _ in range(6):
        strategy.tell(strategy.ask(), None)
    assert not strategy.population and SPACE.is_valid(strategy.ask())
