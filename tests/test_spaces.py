"""The search-space language: properties over generated spaces plus exact checks on hand-built ones."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nasapp.engine.spaces import (
    SENTINEL,
    Space,
    SpaceError,
    boolean,
    choice,
    floating,
    integer,
    repeat,
    space,
)

PROPS = settings(
    derandomize=True, deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow]
)


def example_space() -> Space:
    return space({
        "stem": choice([16, 24, 32]),
        "blocks": repeat({"op": choice(["mbconv", "conv"]), "kernel": choice([3, 5, 7]), "se": boolean(),
                          "layers": integer(1, 4)}, times=7),
        "head": choice({"pool": {}, "mlp": {"width": choice([128, 256])}}),
        "extra": choice([{"a": integer(0, 2)}, "none"]),
        "cells": repeat({"w": choice([1, 2])}, min=1, max=4),
        "dropout": floating(0.0, 0.3),
        "lr": floating(1e-4, 1e-1, log=True),
        "fixed": 3,
    })


# -- generated spaces ---------------------------------------------------------------------------------------

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_CONSTANTS = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y"]), st.booleans(), st.none())


def _leaves(with_floats: bool) -> st.SearchStrategy[Any]:
    options = [
        _CONSTANTS,
        st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True).map(choice),
        st.lists(st.sampled_from(["p", "q", "r"]), min_size=1, max_size=3, unique=True).map(choice),
        st.tuples(st.integers(-2, 2), st.integers(0, 3)).map(lambda t: integer(t[0], t[0] + t[1])),
        st.just(boolean()),
    ]
    if with_floats:
        options.append(st.sampled_from([floating(0.0, 1.0), floating(1e-3, 1.0, log=True), floating(-2, 2)]))
    return st.one_of(*options)


def _branches(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.dictionaries(_KEYS, children, max_size=3),
        st.lists(children, max_size=2),
        st.dictionaries(_KEYS, children, min_size=1, max_size=3).map(choice),
        st.tuples(st.dictionaries(_KEYS, children, min_size=1, max_size=2),
                  st.lists(st.sampled_from(["none", "skip"]), max_size=2, unique=True))
        .map(lambda t: choice([t[0], *t[1]])),  # a list choice mixing a sub-template and constants
        st.tuples(children, st.integers(0, 2), st.integers(0, 1))
        .map(lambda t: repeat(t[0], min=t[1], max=t[1] + t[2])),
    )


def templates(with_floats: bool = True) -> st.SearchStrategy[Any]:
    inner = st.recursive(_leaves(with_floats), _branches, max_leaves=10)
    return st.dictionaries(_KEYS, inner, min_size=1, max_size=3)


SMALL = 3000


# -- properties ---------------------------------------------------------------------------------------------


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_samples_validate_and_encode_round_trip(template: Any, seed: int) -> None:
    s = space(template)
    arch = s.sample(seed)
    s.validate(arch)
    assert s.sample(seed) == arch
    assert s.sample(np.random.default_rng(seed)) == arch
    vector = s.encode(arch)
    assert len(vector) == s.dim() == len(s.bounds()) == len(s.categorical_mask())
    assert s.decode(vector) == arch
    for x, (low, high) in zip(vector, s.bounds(), strict=True):
        assert low <= x <= high or x == SENTINEL
    through_json = json.loads(json.dumps(arch))
    assert s.fingerprint(through_json) == s.fingerprint(copy.deepcopy(arch))


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_any_vector_decodes_to_a_valid_arch(template: Any, seed: int) -> None:
    s = space(template)
    rng = np.random.default_rng(seed)
    vector = [float(rng.uniform(low - 1, high + 1)) for low, high in s.bounds()]
    arch = s.decode(vector)
    s.validate(arch)
    assert s.decode(s.encode(arch)) == arch


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_mutate_gives_a_valid_different_arch(template: Any, seed: int) -> None:
    s = space(template)
    arch = s.sample(seed)
    if s.size() == 1 and s.is_finite():
        with pytest.raises(SpaceError, match="nothing to mutate"):
            s.mutate(arch, seed)
        return
    before = copy.deepcopy(arch)
    child = s.mutate(arch, seed)
    s.validate(child)
    assert child != arch
    assert arch == before  # the parent is not modified
    assert s.mutate(arch, seed) == child


@PROPS
@given(templates(with_floats=False))
def test_size_equals_enumeration(template: Any) -> None:
    s = space(template)
    assume(s.size() <= SMALL)
    archs = list(s.enumerate())
    assert len(archs) == s.size()
    assert len({s.fingerprint(a) for a in archs}) == len(archs)
    for a in archs:
        s.validate(a)
    assert len({json.dumps(s.encode(a)) for a in archs}) == len(archs)


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_neighbours_are_valid_distinct_and_different(template: Any, seed: int) -> None:
    s = space(template)
    arch = s.sample(seed)
    found = s.neighbours(arch)
    prints = [s.fingerprint(n) for n in found]
    assert len(set(prints)) == len(prints)
    assert s.fingerprint(arch) not in prints
    for n in found:
        s.validate(n)


@PROPS
@given(templates(with_floats=False), st.integers(0, 2**32))
def test_every_finite_arch_with_alternatives_has_neighbours(template: Any, seed: int) -> None:
    s = space(template)
    arch = s.sample(seed)
    assert (len(s.neighbours(arch)) > 0) == (s.size() > 1)


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_crossover_gives_a_valid_child(template: Any, seed: int) -> None:
    s = space(template)
    a, b = s.sample(seed), s.sample(seed + 1)
    child = s.crossover(a, b, seed)
    s.validate(child)
    assert s.crossover(a, a, seed) == a
    assert s.crossover(a, b, seed) == child


@PROPS
@given(templates(), st.integers(0, 2**32))
def test_json_round_trip_behaves_the_same(template: Any, seed: int) -> None:
    s = space(template)
    document = json.loads(json.dumps(s.to_json()))
    again = Space.from_json(document)
    assert again.to_json() == s.to_json()
    assert again == s
    assert again.sample(seed) == s.sample(seed)
    arch = s.sample(seed)
    if s.size() > 1 or not s.is_finite():
        assert again.mutate(arch, seed) == s.mutate(arch, seed)
    assert again.encode(arch) == s.encode(arch)
    assert again.size() == s.size() and again.dim() == s.dim()


# -- the example space, exactly ------------------------------------------------------------------------


def test_example_space_size_and_dims() -> None:
    s = example_space()
    per_block = 2 * 3 * 2 * 4
    assert s.size() == 3 * per_block**7 * (1 + 2) * (3 + 1) * (2 + 4 + 8 + 16)
    assert s.num_continuous() == 2
    assert not s.is_finite()
    paths = [(d.path, d.kind) for d in s.dims()]
    assert ("blocks[*].kernel", "choice") in paths
    assert ("blocks[*].se", "boolean") in paths
    assert ("head{mlp}.width", "choice") in paths
    assert ("extra{0}.a", "integer") in paths
    assert ("cells", "repeat") in paths
    assert ("lr", "floating") in paths
    kernel = next(d for d in s.dims() if d.path == "blocks[*].kernel")
    assert kernel.options == (3, 5, 7)
    assert "Space(" in repr(s)


def test_choice_over_dict_value_format() -> None:
    s = space({"head": choice({"pool": {}, "mlp": {"width": choice([128, 256])}, "k": 3})})
    values = {json.dumps(a, sort_keys=True) for a in s.enumerate()}
    assert values == {
        '{"head": {"pool": {}}}', '{"head": {"mlp": {"width": 128}}}', '{"head": {"mlp": {"width": 256}}}',
        '{"head": {"k": 3}}',
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["blocks"][3].update(kernel=9), "blocks[3].kernel: 9 is not one of [3, 5, 7]"),
        (lambda a: a.update(head={"x": 1}), "head: expected one of the keys ['mlp', 'pool'], got {'x': 1}"),
        (lambda a: a.update(cells=[{"w": 1}] * 6), "cells: length 6 is not in [1, 4]"),
        (lambda a: a.pop("stem"), "stem: missing"),
        (lambda a: a["blocks"][0].update(foo=1), "blocks[0]: unexpected key 'foo'"),
        (lambda a: a.update(blocks=a["blocks"][:6]), "blocks: length 6 is not 7"),
        (lambda a: a["blocks"][2].update(layers=True), "blocks[2].layers: expected an integer, got True"),
        (lambda a: a["blocks"][2].update(layers=2.0), "blocks[2].layers: expected an integer, got 2.0"),
        (lambda a: a["blocks"][2].update(layers=5), "blocks[2].layers: 5 is not in [1, 4]"),
        (lambda a: a.update(head={"mlp": {"width": 3}}), "head.mlp.width: 3 is not one of [128, 256]"),
        (lambda a: a.update(extra={"a": 5}), "extra.a: 5 is not in [0, 2]"),
        (lambda a: a.update(extra="nope"), "extra: 'nope' is not one of [{'a': integer(0, 2)}, 'none']"),
        (lambda a: a.update(dropout=0.5), "dropout: 0.5 is not in [0.0, 0.3]"),
        (lambda a: a.update(dropout="x"), "dropout: expected a number, got 'x'"),
        (lambda a: a.update(fixed=4), "fixed: expected 3, got 4"),
        (lambda a: a["cells"][1].update(w=3), "cells[1].w: 3 is not one of [1, 2]"),
    ],
)
def test_validate_messages_are_path_precise(change: Any, message: str) -> None:
    s = example_space()
    arch = s.sample(3)
    arch["cells"] = [{"w": 1}, {"w": 2}]
    change(arch)
    with pytest.raises(SpaceError) as caught:
        s.validate(arch)
    assert str(caught.value) == message
    assert not s.is_valid(arch)


def test_validate_accepts_ints_for_floats_and_tuples_for_lists() -> None:
    s = space({"x": floating(0, 5), "r": repeat(choice([1, 2]), times=2)})
    s.validate({"x": 3, "r": (1, 2)})
    assert s.canonical({"x": 3, "r": (1, 2)}) == {"x": 3.0, "r": [1, 2]}
    assert not s.is_valid({"x": True, "r": [1, 2]})
    assert not s.is_valid(5)


def test_neighbours_of_the_example_step_once() -> None:
    s = example_space()
    arch = s.sample(11)
    arch.update(head={"mlp": {"width": 128}}, extra="none", cells=[{"w": 1}, {"w": 2}])
    for block in arch["blocks"]:
        block["layers"] = 2
    found = s.neighbours(arch)
    # stem 2 + per block (op 1 + kernel 2 + se 1 + layers 2) * 7 + head 1 + width 1 + extra 1
    # + cells (one more, one fewer) 2 + cell options 2
    assert len(found) == 2 + 6 * 7 + 1 + 1 + 1 + 2 + 2
    assert {"pool": {}} in [n["head"] for n in found]
    assert {"a": 0} in [n["extra"] for n in found]
    assert [{"w": 1}, {"w": 2}, {"w": 2}] in [n["cells"] for n in found]
    for n in found:
        changed = [k for k in arch if n[k] != arch[k]]
        assert len(changed) == 1
        assert n["dropout"] == arch["dropout"] and n["lr"] == arch["lr"]


def test_flat_neighbours_are_symmetric() -> None:
    s = space({"a": choice([1, 2, 3]), "b": integer(0, 5), "c": boolean()})
    for arch in s.enumerate():
        for n in s.neighbours(arch):
            assert sum(n[k] != arch[k] for k in arch) == 1
            assert arch in s.neighbours(n)
    assert len(s.neighbours({"a": 1, "b": 0, "c": False})) == 2 + 1 + 1


def test_conditional_and_variable_sizes_by_hand() -> None:
    s = space({
        "head": choice({"pool": {}, "mlp": {"width": choice([1, 2]), "depth": integer(1, 3)}}),
        "extra": choice([{"a": integer(0, 2)}, "none", None]),
        "cells": repeat(choice([1, 2, 3]), min=0, max=2),
    })
    assert s.size() == (1 + 2 * 3) * (3 + 2) * (1 + 3 + 9)
    assert len(list(s.enumerate())) == s.size()


def test_a_huge_space_is_sized_exactly_and_sampled_quickly() -> None:
    block = {"op": choice(["mbconv", "dwconv", "conv", "skip", "zero"]), "kernel": choice([3, 5, 7]),
             "expand": integer(1, 6)}
    s = space({
        "blocks": repeat(block, times=12), "tail": repeat(block, min=0, max=3), "dropout": floating(0, 0.3),
    })
    assert s.size() == 90**12 * (1 + 90 + 90**2 + 90**3)
    assert s.size() == 282429536481000000000000 * 737191
    assert s.size() > 10**20
    start = time.perf_counter()
    archs = [s.sample(seed) for seed in range(200)]
    assert time.perf_counter() - start < 2.0
    assert len({s.fingerprint(a) for a in archs}) == 200
    for a in archs[:20]:
        s.validate(a)
        assert s.decode(s.encode(a)) == a
    with pytest.raises(SpaceError, match="enumerate"):
        s.enumerate()


def test_huge_integer_range_samples_uniformly_without_overflow() -> None:
    s = space({"n": integer(0, 10**30)})
    values = [s.sample(seed)["n"] for seed in range(50)]
    assert all(0 <= v <= 10**30 for v in values)
    assert max(values) > 10**28
    assert s.size() == 10**30 + 1


def test_fingerprint_is_stable_and_distinguishes_types() -> None:
    s = example_space()
    arch = {
        "stem": 24,
        "blocks": [{"op": "conv", "kernel": 3, "se": False, "layers": 1 + i % 4} for i in range(7)],
        "head": {"mlp": {"width": 128}},
        "extra": {"a": 1},
        "cells": [{"w": 2}],
        "dropout": 0.1,
        "lr": 0.001,
        "fixed": 3,
    }
    assert s.fingerprint(arch) == "16f9aa8d705ba36d"  # sha256 of the sorted-key compact JSON
    reordered = dict(reversed(list(arch.items())))
    assert s.fingerprint(reordered) == s.fingerprint(arch)
    t = space({"v": choice([1, True, "1"]), "f": floating(0, 2)})
    prints = {t.fingerprint({"v": v, "f": 1}) for v in (1, True, "1")}
    assert len(prints) == 3
    assert t.fingerprint({"v": 1, "f": 1}) == t.fingerprint({"v": 1, "f": 1.0})


def test_mutate_is_one_step_on_a_flat_space() -> None:
    s = space({"a": choice([1, 2, 3]), "b": integer(0, 5), "c": boolean(), "d": floating(0, 1)})
    rng = np.random.default_rng(0)
    arch = s.sample(rng)
    for _ in range(100):
        child = s.mutate(arch, rng)
        assert sum(child[k] != arch[k] for k in arch) == 1
        arch = child


def test_variable_repeat_mutation_changes_length_both_ways() -> None:
    s = space({"cells": repeat(choice([1]), min=1, max=3)})
    assert sorted(len(s.mutate({"cells": [1, 1]}, seed)["cells"]) for seed in range(20))[::19] == [1, 3]
    assert s.mutate({"cells": [1]}, 0) == {"cells": [1, 1]}


def test_single_architecture_space_cannot_mutate() -> None:
    s = space({"a": 1, "b": choice(["only"]), "c": repeat(integer(2, 2), times=2)})
    assert s.size() == 1 and s.is_finite()
    assert list(s.enumerate()) == [{"a": 1, "b": "only", "c": [2, 2]}]
    with pytest.raises(SpaceError, match="nothing to mutate"):
        s.mutate({"a": 1, "b": "only", "c": [2, 2]}, 0)
    assert s.neighbours({"a": 1, "b": "only", "c": [2, 2]}) == []


def test_encoding_layout() -> None:
    s = space({"head": choice({"pool": {}, "mlp": {"width": choice([128, 256])}}),
               "cells": repeat({"w": integer(1, 2)}, min=0, max=2), "lr": floating(1e-4, 1e-1, log=True)})
    slots = s.slots()
    assert [(x.path, x.kind) for x in slots] == [
        ("head", "choice"), ("head{mlp}.width", "choice"), ("cells", "length"),
        ("cells[0].w", "integer"), ("cells[1].w", "integer"), ("lr", "floating"),
    ]
    assert s.categorical_mask() == [True, True, False, False, False, False]
    assert s.bounds() == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2), (1e-4, 1e-1)]
    assert slots[-1].log
    arch = {"head": {"pool": {}}, "cells": [{"w": 2}], "lr": 0.01}
    assert s.encode(arch) == [0.0, SENTINEL, 1.0, 2.0, SENTINEL, 0.01]
    assert s.decode([0.0, -1.0, 1.0, 2.0, -1.0, 0.01]) == arch
    snapped = {"head": {"mlp": {"width": 128}}, "cells": [{"w": 1}, {"w": 2}], "lr": 0.1}
    assert s.decode([0.7, 0.2, 9, 1.4, 1.6, 5.0]) == snapped
    with pytest.raises(SpaceError, match="length 6"):
        s.decode([0.0])


def test_space_accepts_a_space_and_nested_spaces() -> None:
    inner = space({"k": choice([3, 5])})
    assert space(inner) is inner
    outer = space({"a": inner, "b": [inner, 1]})
    assert outer.size() == 4


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: choice([]), "at least one option"),
        (lambda: choice(3), "list or a dict"),
        (lambda: integer(3, 1), "low is greater than high"),
        (lambda: integer(0.5, 2), "must be an int"),
        (lambda: floating(0.0, 1.0, log=True), "log scale needs low > 0"),
        (lambda: floating(1.0, 1.0), "low must be less than high"),
        (lambda: repeat({"a": 1}, times=3, min=1, max=4), "not both"),
        (lambda: repeat({"a": 1}, min=3, max=1), "max is less than min"),
        (lambda: repeat({"a": 1}), "needs times"),
        (lambda: repeat({"a": 1}, times=-1), "non-negative"),
        (lambda: space({"x": object()}), "x: <object"),
        (lambda: space({"x": [1, float("nan")]}), "x[1]: nan is not a JSON constant"),
        (lambda: space({1: 2}), "keys must be strings"),
        (lambda: choice([3, 3]), "options 0 and 1 are both 3"),
        (lambda: choice([1, 1.0]), "are both"),
        (lambda: choice([integer(0, 3), 2]), "overlap"),
        (lambda: choice([{"a": integer(0, 3)}, {"a": integer(3, 5)}]), "overlap"),
        (lambda: choice([repeat(1, max=2), []]), "overlap"),
    ],
)
def test_bad_definitions_fail_at_construction(build: Any, message: str) -> None:
    with pytest.raises(SpaceError, match=message.replace("[", r"\[")):
        build()


def test_distinct_options_of_different_types_are_allowed() -> None:
    s = space({"v": choice([1, True, "1", None, {"a": 1}, [1], integer(5, 6)])})
    assert s.size() == 8
    assert len(list(s.enumerate())) == 8


def test_from_json_rejects_garbage() -> None:
    with pytest.raises(SpaceError, match="not a nasapp space"):
        Space.from_json({"root": {}})
    with pytest.raises(SpaceError, match="unknown kind"):
        Space.from_json({"format": "nasapp.space/1", "root": {"kind": "wat"}})
    with pytest.raises(SpaceError, match="malformed"):
        Space.from_json({"format": "nasapp.space/1", "root": {"kind": "integer", "low": 1}})


def test_bad_rng_is_rejected() -> None:
    with pytest.raises(SpaceError, match="rng"):
        example_space().sample("seed")  # type: ignore[arg-type]


def test_a_size_says_its_continuous_dimensions_instead_of_counting_each_as_one_value():
    mixed = space({"w": choice([8, 16, 32]), "d": integer(1, 4096), "lr": floating(1e-4, 0.1, log=True),
                   "p": floating(0.0, 0.5)})
    assert mixed.size() == 12288 and mixed.num_continuous() == 2  # size() keeps its meaning
    assert mixed.size_text() == "12,288 discrete combinations × 2 continuous dimensions"
    assert repr(mixed) == "Space(discrete=12288, continuous=2, dims=4)"
    assert space({"p": floating(0.0, 1.0)}).size_text() == "1 discrete combination × 1 continuous dimension"
    assert space({"a": choice(list(range(5)))}).size_text() == "5 architectures"
    assert repr(space({"a": choice([1, 2])})) == "Space(size=2, dims=1)"
    huge = space({"blocks": repeat(choice(list(range(10))), times=400)})
    assert huge.size_text() == "1.00e+400 architectures"
