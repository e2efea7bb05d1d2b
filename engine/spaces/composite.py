"""Nodes that hold other nodes in a fixed arrangement: dicts, lists and repeats."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.dims import (
    Dim,
    DimInfo,
    Node,
    Slot,
    coin,
    fail,
    item,
    join,
    randbelow,
    snap_int,
)


class DictNode(Node):
    """A dict of sub-templates; the architecture has exactly these keys."""

    shapes = frozenset({"dict"})

    def __init__(self, fields: dict[str, Node]) -> None:
        self.fields = fields

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise fail(path, f"expected a dict, got {value!r}")
        for key in self.fields:
            if key not in value:
                raise fail(join(path, key), "missing")
        for key in value:
            if key not in self.fields:
                raise fail(path, f"unexpected key {key!r}")
        return {key: node.check(value[key], join(path, key)) for key, node in self.fields.items()}

    @cached_property
    def size(self) -> int:
        return math.prod(node.size for node in self.fields.values())

    @cached_property
    def n_continuous(self) -> int:
        return sum(node.n_continuous for node in self.fields.values())

    @cached_property
    def width(self) -> int:
        return sum(node.width for node in self.fields.values())

    def sample(self, rng: np.random.Generator) -> Any:
        return {key: node.sample(rng) for key, node in self.fields.items()}

    def default(self) -> Any:
        return {key: node.default() for key, node in self.fields.items()}

    def points(self, value: Any) -> int:
        return sum(node.points(value[key]) for key, node in self.fields.items())

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        for key, node in self.fields.items():
            n = node.points(value[key])
            if k < n:
                return {**value, key: node.mutate_at(value[key], k, rng)}
            k -= n
        raise AssertionError("mutation point out of range")

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return {key: node.cross(a[key], b[key], rng) for key, node in self.fields.items()}

    def neighbours(self, value: Any) -> Iterator[Any]:
        for key, node in self.fields.items():
            for other in node.neighbours(value[key]):
                yield {**value, key: other}

    def encode(self, value: Any, out: list[float]) -> None:
        for key, node in self.fields.items():
            node.encode(value[key], out)

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        result = {}
        for key, node in self.fields.items():
            result[key] = node.decode(vector, pos)
            pos += node.width
        return result

    def slots(self, path: str, out: list[Slot]) -> None:
        for key, node in self.fields.items():
            node.slots(join(path, key), out)

    def dims(self, path: str, out: list[DimInfo]) -> None:
        for key, node in self.fields.items():
            node.dims(join(path, key), out)

    def to_json(self) -> dict[str, Any]:
        values = [node.to_json() for node in self.fields.values()]
        return {"kind": "dict", "keys": list(self.fields), "values": values}

    def enumerate(self) -> Iterator[Any]:
        keys = list(self.fields)
        for values in itertools.product(*(list(node.enumerate()) for node in self.fields.values())):
            yield dict(zip(keys, values, strict=True))

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: {node!r}" for key, node in self.fields.items()) + "}"


class ListNode(Node):
    """A list of sub-templates of fixed length (a list literal in a template)."""

    shapes = frozenset({"list"})

    def __init__(self, items: list[Node]) -> None:
        self.items = items

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise fail(path, f"expected a list, got {value!r}")
        if len(value) != len(self.items):
            raise fail(path, f"length {len(value)} is not {len(self.items)}")
        return [node.check(value[i], item(path, i)) for i, node in enumerate(self.items)]

    @cached_property
    def size(self) -> int:
        return math.prod(node.size for node in self.items)

    @cached_property
    def n_continuous(self) -> int:
        return sum(node.n_continuous for node in self.items)

    @cached_property
    def width(self) -> int:
        return sum(node.width for node in self.items)

    def sample(self, rng: np.random.Generator) -> Any:
        return [node.sample(rng) for node in self.items]

    def default(self) -> Any:
        return [node.default() for node in self.items]

    def points(self, value: Any) -> int:
        return sum(node.points(v) for node, v in zip(self.items, value, strict=True))

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        for i, node in enumerate(self.items):
            n = node.points(value[i])
            if k < n:
                return [*value[:i], node.mutate_at(value[i], k, rng), *value[i + 1 :]]
            k -= n
        raise AssertionError("mutation point out of range")

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return [node.cross(x, y, rng) for node, x, y in zip(self.items, a, b, strict=True)]

    def neighbours(self, value: Any) -> Iterator[Any]:
        for i, node in enumerate(self.items):
            for other in node.neighbours(value[i]):
                yield [*value[:i], other, *value[i + 1 :]]

    def encode(self, value: Any, out: list[float]) -> None:
        for node, v in zip(self.items, value, strict=True):
            node.encode(v, out)

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        result = []
        for node in self.items:
            result.append(node.decode(vector, pos))
            pos += node.width
        return result

    def slots(self, path: str, out: list[Slot]) -> None:
        for i, node in enumerate(self.items):
            node.slots(item(path, i), out)

    def dims(self, path: str, out: list[DimInfo]) -> None:
        for i, node in enumerate(self.items):
            node.dims(item(path, i), out)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "list", "items": [node.to_json() for node in self.items]}

    def enumerate(self) -> Iterator[Any]:
        for values in itertools.product(*(list(node.enumerate()) for node in self.items)):
            yield list(values)

    def __repr__(self) -> str:
        return "[" + ", ".join(repr(node) for node in self.items) + "]"


class Repeat(Dim):
    """A list of ``low..high`` independent copies of an element template."""

    shapes = frozenset({"list"})

    def __init__(self, element: Node, low: int, high: int) -> None:
        for name, n in (("min", low), ("max", high)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise SpaceError(f"repeat(): {name} must be a non-negative int, got {n!r}")
        if high < low:
            raise SpaceError(f"repeat(min={low}, max={high}): max is less than min")
        self.element = element
        self.low = low
        self.high = high

    def check(self, value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise fail(path, f"expected a list, got {value!r}")
        if not self.low <= len(value) <= self.high:
            expected = str(self.low) if self.low == self.high else f"in [{self.low}, {self.high}]"
            raise fail(path, f"length {len(value)} is not {expected}")
        return [self.element.check(v, item(path, i)) for i, v in enumerate(value)]

    @cached_property
    def size(self) -> int:
        n = self.element.size
        return sum(n**count for count in range(self.low, self.high + 1))

    @cached_property
    def n_continuous(self) -> int:
        return self.high * self.element.n_continuous

    @cached_property
    def width(self) -> int:
        return 1 + self.high * self.element.width

    def sample(self, rng: np.random.Generator) -> Any:
        count = self.low + randbelow(rng, self.high - self.low + 1)
        return [self.element.sample(rng) for _ in range(count)]

    def default(self) -> Any:
        return [self.element.default() for _ in range(self.low)]

    def points(self, value: Any) -> int:
        return int(self.low < self.high) + sum(self.element.points(v) for v in value)

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        if self.low < self.high:
            if k == 0:  # add or remove one element
                grow = len(value) < self.high and (len(value) == self.low or coin(rng))
                if grow:
                    at = randbelow(rng, len(value) + 1)
                    return [*value[:at], self.element.sample(rng), *value[at:]]
                at = randbelow(rng, len(value))
                return [*value[:at], *value[at + 1 :]]
            k -= 1
        for i, v in enumerate(value):
            n = self.element.points(v)
            if k < n:
                return [*value[:i], self.element.mutate_at(v, k, rng), *value[i + 1 :]]
            k -= n
        raise AssertionError("mutation point out of range")

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        longer = a if len(a) >= len(b) else b
        count = len(a) if coin(rng) else len(b)
        common = min(len(a), len(b))
        return [self.element.cross(a[i], b[i], rng) if i < common else longer[i] for i in range(count)]

    def neighbours(self, value: Any) -> Iterator[Any]:
        if len(value) < self.high:  # one more: a copy of the last element (or the default one)
            yield [*value, value[-1] if value else self.element.default()]
        if len(value) > self.low:
            yield value[:-1]
        for i, v in enumerate(value):
            for other in self.element.neighbours(v):
                yield [*value[:i], other, *value[i + 1 :]]

    def encode(self, value: Any, out: list[float]) -> None:
        out.append(float(len(value)))
        for v in value:
            self.element.encode(v, out)
        for _ in range(self.high - len(value)):
            self.element.blank(out)

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        count = snap_int(vector, pos, self.low, self.high)
        step = self.element.width
        return [self.element.decode(vector, pos + 1 + i * step) for i in range(count)]

    def slots(self, path: str, out: list[Slot]) -> None:
        out.append(Slot(path, "length", self.low, self.high))
        for i in range(self.high):
            self.element.slots(item(path, i), out)

    def dims(self, path: str, out: list[DimInfo]) -> None:
        out.append(DimInfo(path, "repeat", low=self.low, high=self.high))
        self.element.dims(item(path, "*"), out)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "repeat", "element": self.element.to_json(), "min": self.low, "max": self.high}

    def enumerate(self) -> Iterator[Any]:
        values = list(self.element.enumerate())
        for count in range(self.low, self.high + 1):
            for combo in itertools.product(values, repeat=count):
                yield list(combo)

    def __repr__(self) -> str:
        counts = f"times={self.low}" if self.low == self.high else f"min={self.low}, max={self.high}"
        return f"repeat({self.element!r}, {counts})"
