"""Choices (the conditional sub-spaces, and booleans) and the check that a choice's options are distinct."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.composite import DictNode, ListNode, Repeat
from nasapp.engine.spaces.dims import (
    Const,
    Dim,
    DimInfo,
    Floating,
    Integer,
    Node,
    Slot,
    category,
    coin,
    fail,
    join,
    randbelow,
    shape_of,
    snap_int,
)


def _const_key(value: Any) -> tuple[str, Any] | None:
    kind = category(value)
    if kind is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return (kind, value)


class Choice(Dim):
    """One of several options: over a list the value is the option's value, over a dict ``{key: value}``."""

    kind = "choice"

    def __init__(self, options: list[Node], keys: list[str] | None = None) -> None:
        if not options:
            raise SpaceError("choice() needs at least one option")
        if keys is not None and len(keys) != len(options):
            raise SpaceError("choice(): one key per option")
        self.options = options
        self.keys = keys
        shapes = [o.shapes for o in options] if keys is None else [frozenset({"dict"})]
        self.shapes = frozenset().union(*shapes)
        self._const_index: dict[tuple[str, Any], int] = {}
        self._others: list[int] = []
        if keys is None:
            self._index_options()

    def _index_options(self) -> None:
        for i, option in enumerate(self.options):
            if isinstance(option, Const):
                for v in option.variants():
                    j = self._const_index.setdefault((option.kind, v), i)
                    if j != i:
                        raise SpaceError(f"choice(): options {j} and {i} are both {option.value!r}")
            else:
                self._others.append(i)
        for i in self._others:  # a value must match one option only, or encoding and size would be ambiguous
            for j, other in enumerate(self.options):
                if j != i and (j > i or isinstance(other, Const)) and overlaps(self.options[i], other):
                    a, b = sorted((i, j))
                    raise SpaceError(
                        f"choice(): options {a} ({self.options[a]!r}) and {b} ({self.options[b]!r}) overlap; "
                        "a value could match both; make them distinct (or use a choice over a dict)"
                    )

    def labels(self) -> tuple[Any, ...]:
        if self.keys is not None:
            return tuple(self.keys)
        return tuple(o.value if isinstance(o, Const) else repr(o) for o in self.options)

    def wrap(self, i: int, value: Any) -> Any:
        return {self.keys[i]: value} if self.keys is not None else value

    def unwrap(self, value: Any) -> tuple[int, Any]:
        """The option index and the option's value of a canonical ``value``."""
        if self.keys is not None:
            key = next(iter(value))
            return self.keys.index(key), value[key]
        key = _const_key(value)
        if key is not None and key in self._const_index:
            return self._const_index[key], value
        for i in self._others:
            if self.options[i].accepts(value):
                return i, value
        raise SpaceError(f"{value!r} matches no option of {self!r}")

    def check(self, value: Any, path: str) -> Any:
        if self.keys is not None:
            if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in self.keys):
                raise fail(path, f"expected one of the keys {sorted(self.keys)}, got {value!r}")
            key = next(iter(value))
            i = self.keys.index(key)
            return {key: self.options[i].check(value[key], join(path, key))}
        key = _const_key(value)
        if key is not None and key in self._const_index:
            return self.options[self._const_index[key]].check(value, path)
        errors: dict[int, SpaceError] = {}
        for i in self._others:
            try:
                return self.options[i].check(value, path)
            except SpaceError as error:
                errors[i] = error
        shape = shape_of(value)
        fitting = [i for i, o in enumerate(self.options) if shape in o.shapes]
        if len(fitting) == 1 and fitting[0] in errors:  # only one option could hold it: say what is wrong
            raise errors[fitting[0]]
        raise fail(path, f"{value!r} is not one of {self._options_text()}")

    def _options_text(self) -> str:
        shown = [repr(o) for o in self.options[:20]]
        if len(self.options) > 20:
            shown.append(f"... ({len(self.options)} options)")
        return "[" + ", ".join(shown) + "]"

    @cached_property
    def size(self) -> int:
        return sum(o.size for o in self.options)

    @cached_property
    def n_continuous(self) -> int:
        return sum(o.n_continuous for o in self.options)

    @cached_property
    def width(self) -> int:
        return 1 + sum(o.width for o in self.options)

    def sample(self, rng: np.random.Generator) -> Any:
        i = randbelow(rng, len(self.options))
        return self.wrap(i, self.options[i].sample(rng))

    def default(self) -> Any:
        return self.wrap(0, self.options[0].default())

    def points(self, value: Any) -> int:
        i, inner = self.unwrap(value)
        return int(len(self.options) > 1) + self.options[i].points(inner)

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        i, inner = self.unwrap(value)
        if len(self.options) > 1:
            if k == 0:
                j = randbelow(rng, len(self.options) - 1)
                j = j + 1 if j >= i else j
                return self.wrap(j, self.options[j].sample(rng))
            k -= 1
        return self.wrap(i, self.options[i].mutate_at(inner, k, rng))

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        i, inner_a = self.unwrap(a)
        j, inner_b = self.unwrap(b)
        if i != j:
            return a if coin(rng) else b
        return self.wrap(i, self.options[i].cross(inner_a, inner_b, rng))

    def neighbours(self, value: Any) -> Iterator[Any]:
        i, inner = self.unwrap(value)
        for j, option in enumerate(self.options):
            if j != i:
                yield self.wrap(j, option.default())
        for other in self.options[i].neighbours(inner):
            yield self.wrap(i, other)

    def encode(self, value: Any, out: list[float]) -> None:
        i, inner = self.unwrap(value)
        out.append(float(i))
        for j, option in enumerate(self.options):
            if j == i:
                option.encode(inner, out)
            else:
                option.blank(out)

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        i = snap_int(vector, pos, 0, len(self.options) - 1)
        pos += 1
        for option in self.options[:i]:
            pos += option.width
        return self.wrap(i, self.options[i].decode(vector, pos))

    def _option_path(self, path: str, i: int) -> str:
        return f"{path}{{{self.keys[i] if self.keys is not None else i}}}"

    def slots(self, path: str, out: list[Slot]) -> None:
        out.append(Slot(path, "choice", 0, len(self.options) - 1))
        for i, option in enumerate(self.options):
            option.slots(self._option_path(path, i), out)

    def dims(self, path: str, out: list[DimInfo]) -> None:
        out.append(DimInfo(path, self.kind, options=self.labels()))
        for i, option in enumerate(self.options):
            option.dims(self._option_path(path, i), out)

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"kind": "choice", "options": [o.to_json() for o in self.options]}
        if self.keys is not None:
            result["keys"] = list(self.keys)
        return result

    def enumerate(self) -> Iterator[Any]:
        for i, option in enumerate(self.options):
            for value in option.enumerate():
                yield self.wrap(i, value)

    def __repr__(self) -> str:
        if self.keys is not None:
            pairs = zip(self.keys, self.options, strict=True)
            return "choice({" + ", ".join(f"{k!r}: {o!r}" for k, o in pairs) + "})"
        return f"choice({self._options_text()})"


class Boolean(Choice):
    """``choice([False, True])``, shown as a boolean."""

    kind = "boolean"

    def __init__(self) -> None:
        super().__init__([Const(False), Const(True)])

    def to_json(self) -> dict[str, Any]:
        return {"kind": "boolean"}

    def __repr__(self) -> str:
        return "boolean()"


def _alternatives(node: Node) -> Iterator[Node]:
    """The node itself, or for a choice the nodes its values can come from."""
    if isinstance(node, Choice):
        for i, option in enumerate(node.options):
            if node.keys is not None:
                yield DictNode({node.keys[i]: option})
            else:
                yield from _alternatives(option)
    else:
        yield node


def overlaps(a: Node, b: Node) -> bool:
    """Whether some architecture value is accepted by both nodes."""
    return any(_overlap(x, y) for x in _alternatives(a) for y in _alternatives(b))


def _overlap(x: Node, y: Node) -> bool:
    if isinstance(y, Const):
        x, y = y, x
    if isinstance(x, Const):
        return any(y.accepts(v) for v in x.variants())
    if isinstance(y, Integer):
        x, y = y, x
    if isinstance(x, Integer) and isinstance(y, Integer | Floating):
        return max(x.low, math.ceil(y.low)) <= min(x.high, math.floor(y.high))
    if isinstance(x, Floating) and isinstance(y, Floating):
        return max(x.low, y.low) <= min(x.high, y.high)
    if isinstance(x, DictNode) and isinstance(y, DictNode):
        same_keys = x.fields.keys() == y.fields.keys()
        return same_keys and all(overlaps(x.fields[k], y.fields[k]) for k in x.fields)
    if isinstance(y, ListNode):
        x, y = y, x
    if isinstance(x, ListNode) and isinstance(y, ListNode):
        pairs = zip(x.items, y.items, strict=True) if len(x.items) == len(y.items) else None
        return pairs is not None and all(overlaps(p, q) for p, q in pairs)
    if isinstance(x, ListNode) and isinstance(y, Repeat):
        return y.low <= len(x.items) <= y.high and all(overlaps(p, y.element) for p in x.items)
    if isinstance(x, Repeat) and isinstance(y, Repeat):
        low, high = max(x.low, y.low), min(x.high, y.high)
        return low <= high and (low == 0 or overlaps(x.element, y.element))
    return False
