"""The node base class, the leaf dimensions (constants, integers, floats) and helpers every node shares.

A compiled space is a tree of :class:`Node` objects. Nodes are immutable; every method that takes an
architecture value expects the *canonical* value that :meth:`Node.check` returned for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from nasapp.engine.errors import SpaceError

RngLike = int | np.random.Generator | None
SENTINEL = -1.0  # the value of encoded positions that the architecture does not use
_INT64 = 2**62


def as_rng(rng: RngLike) -> np.random.Generator:
    """An int seed (deterministic), a numpy Generator (used as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or rng < 0:
        raise SpaceError(f"rng must be a non-negative int seed or a numpy Generator, got {rng!r}")
    return np.random.default_rng(int(rng))


def randbelow(rng: np.random.Generator, n: int) -> int:
    """A uniform int in ``[0, n)``, exact also for Python ints far beyond 64 bits."""
    if n <= _INT64:
        return int(rng.integers(n))
    bits = n.bit_length()
    while True:
        value = 0
        for _ in range(0, bits, 62):
            value = (value << 62) | int(rng.integers(_INT64))
        value >>= (-bits) % 62
        if value < n:
            return value


def coin(rng: np.random.Generator) -> bool:
    return bool(rng.random() < 0.5)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item(path: str, index: int | str) -> str:
    return f"{path}[{index}]"


def fail(path: str, message: str) -> SpaceError:
    return SpaceError(f"{path or 'arch'}: {message}")


def category(value: Any) -> str | None:
    """The JSON kind of a scalar (``null``, ``bool``, ``number``, ``string``), or None for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def shape_of(value: Any) -> str:
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    return "scalar"


def snap_int(vector: Sequence[float], pos: int, low: int, high: int) -> int:
    """Round the encoded position to the nearest int in ``[low, high]``."""
    x = float(vector[pos])
    if not math.isfinite(x):
        raise SpaceError(f"encoded position {pos}: {x!r} is not a finite number")
    return min(max(math.floor(x + 0.5), low), high)


@dataclass(frozen=True)
class Slot:
    """One position of the encoded vector.

    ``kind`` is ``choice`` (the option index, categorical), ``integer``, ``floating`` (the raw value, also for
    log dims: ``log`` says whether a model should work on its logarithm) or ``length`` (a repeat's count,
    ordinal). Positions the architecture does not use hold :data:`SENTINEL`.
    """

    path: str
    kind: str
    low: float
    high: float
    log: bool = False

    @property
    def categorical(self) -> bool:
        return self.kind == "choice"


@dataclass(frozen=True)
class DimInfo:
    """A dimension for display: ``blocks[*].kernel`` (repeat elements), ``head{mlp}.width`` (an option's)."""

    path: str
    kind: str  # choice | boolean | integer | floating | repeat
    options: tuple[Any, ...] | None = None  # choice/boolean: constants as themselves, sub-templates as text
    low: float | None = None  # integer/floating range, repeat count range
    high: float | None = None
    log: bool = False

    def describe(self) -> str:
        if self.options is not None:
            detail = "[" + ", ".join(repr(o) for o in self.options) + "]"
        elif self.kind == "repeat" and self.low == self.high:
            detail = f"times={self.low}"
        else:
            detail = f"[{self.low}, {self.high}]" + (" log" if self.log else "")
        return f"{self.path or '(root)'}  {self.kind}  {detail}"


class Node:
    """A compiled part of a template. Subclasses override every method below."""

    shapes: frozenset[str] = frozenset({"scalar"})  # what kinds of JSON value this node accepts

    def check(self, value: Any, path: str) -> Any:
        """The canonical form of ``value``, or SpaceError naming ``path``."""
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        try:
            self.check(value, "")
        except SpaceError:
            return False
        return True

    @cached_property
    def size(self) -> int:
        raise NotImplementedError

    @cached_property
    def n_continuous(self) -> int:
        return 0

    @cached_property
    def width(self) -> int:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def default(self) -> Any:
        raise NotImplementedError

    def points(self, value: Any) -> int:
        """How many mutation points (active dimensions that can change) ``value`` has under this node."""
        return 0

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return a if coin(rng) else b

    def neighbours(self, value: Any) -> Iterator[Any]:
        return iter(())

    def encode(self, value: Any, out: list[float]) -> None:
        raise NotImplementedError

    def blank(self, out: list[float]) -> None:
        out.extend([SENTINEL] * self.width)

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        """The value encoded at ``vector[pos : pos + width]``."""
        raise NotImplementedError

    def slots(self, path: str, out: list[Slot]) -> None:
        pass

    def dims(self, path: str, out: list[DimInfo]) -> None:
        pass

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def enumerate(self) -> Iterator[Any]:
        raise NotImplementedError


class Dim(Node):
    """A searchable dimension: what ``choice()``, ``boolean()``, ``integer()``, ``floating()``, ``repeat()``
    return."""


class Const(Node):
    """A JSON scalar that is part of the template (containers of constants compile to dict/list nodes)."""

    def __init__(self, value: Any) -> None:
        kind = category(value)
        if kind is None or (isinstance(value, float) and not math.isfinite(value)):
            raise SpaceError(f"{value!r} is not a JSON constant")
        self.value = value
        self.kind = kind

    def variants(self) -> list[Any]:
        """The values this constant accepts (an integral float also accepts its int)."""
        if isinstance(self.value, float) and self.value.is_integer():
            return [self.value, int(self.value)]
        return [self.value]

    def check(self, value: Any, path: str) -> Any:
        if category(value) == self.kind and value == self.value:
            return self.value
        raise fail(path, f"expected {self.value!r}, got {value!r}")

    size = 1  # type: ignore[assignment]
    width = 0  # type: ignore[assignment]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def default(self) -> Any:
        return self.value

    def cross(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return self.value

    def encode(self, value: Any, out: list[float]) -> None:
        pass

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        return self.value

    def to_json(self) -> dict[str, Any]:
        return {"kind": "const", "value": self.value}

    def enumerate(self) -> Iterator[Any]:
        yield self.value

    def __repr__(self) -> str:
        return repr(self.value)


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise SpaceError(f"{what} must be an int, got {value!r}")
    return int(value)


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise SpaceError(f"{what} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise SpaceError(f"{what} must be finite, got {value!r}")
    return result


class Integer(Dim):
    """An int in ``[low, high]``, both ends included. Floats and bools are not accepted as values."""

    def __init__(self, low: int, high: int) -> None:
        self.low = _as_int(low, "integer() low")
        self.high = _as_int(high, "integer() high")
        if self.low > self.high:
            raise SpaceError(f"integer({low}, {high}): low is greater than high")

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise fail(path, f"expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise fail(path, f"{value!r} is not in [{self.low}, {self.high}]")
        return int(value)

    @cached_property
    def size(self) -> int:
        return self.high - self.low + 1

    width = 1  # type: ignore[assignment]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.low + randbelow(rng, self.size)

    def default(self) -> Any:
        return self.low

    def points(self, value: Any) -> int:
        return int(self.low < self.high)

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        other = self.low + randbelow(rng, self.size - 1)
        return other + 1 if other >= value else other

    def neighbours(self, value: Any) -> Iterator[Any]:
        if value > self.low:
            yield value - 1
        if value < self.high:
            yield value + 1

    def encode(self, value: Any, out: list[float]) -> None:
        out.append(float(value))

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        return snap_int(vector, pos, self.low, self.high)

    def slots(self, path: str, out: list[Slot]) -> None:
        out.append(Slot(path, "integer", self.low, self.high))

    def dims(self, path: str, out: list[DimInfo]) -> None:
        out.append(DimInfo(path, "integer", low=self.low, high=self.high))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "integer", "low": self.low, "high": self.high}

    def enumerate(self) -> Iterator[Any]:
        return iter(range(self.low, self.high + 1))

    def __repr__(self) -> str:
        return f"integer({self.low}, {self.high})"


class Floating(Dim):
    """A float in ``[low, high]`` (``low < high``); ``log=True`` samples log-uniformly, needs ``low > 0``."""

    def __init__(self, low: float, high: float, log: bool = False) -> None:
        self.low = _as_float(low, "floating() low")
        self.high = _as_float(high, "floating() high")
        self.log = bool(log)
        if self.low >= self.high:
            raise SpaceError(
                f"floating({low}, {high}): low must be less than high (use a constant for a fixed value)"
            )
        if self.log and self.low <= 0:
            raise SpaceError(f"floating({low}, {high}, log=True): a log scale needs low > 0")

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise fail(path, f"expected a number, got {value!r}")
        if not (math.isfinite(value) and self.low <= value <= self.high):
            raise fail(path, f"{value!r} is not in [{self.low!r}, {self.high!r}]")
        return float(value)

    size = 1  # type: ignore[assignment]
    n_continuous = 1  # type: ignore[assignment]
    width = 1  # type: ignore[assignment]

    def _to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def _from_unit(self, u: float) -> float:
        u = min(max(u, 0.0), 1.0)
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return min(max(x, self.low), self.high)

    def sample(self, rng: np.random.Generator) -> Any:
        return self._from_unit(float(rng.random()))

    def default(self) -> Any:
        return self._from_unit(0.5)

    def points(self, value: Any) -> int:
        return 1

    def mutate_at(self, value: Any, k: int, rng: np.random.Generator) -> Any:
        for _ in range(100):
            if coin(rng):
                new = self.sample(rng)
            else:  # a Gaussian step of a tenth of the (log) range
                new = self._from_unit(self._to_unit(value) + 0.1 * float(rng.standard_normal()))
            if new != value:
                return new
        return self.high if value != self.high else self.low

    def encode(self, value: Any, out: list[float]) -> None:
        out.append(float(value))

    def decode(self, vector: Sequence[float], pos: int) -> Any:
        x = float(vector[pos])
        if not math.isfinite(x):
            raise SpaceError(f"encoded position {pos}: {x!r} is not a finite number")
        return min(max(x, self.low), self.high)

    def slots(self, path: str, out: list[Slot]) -> None:
        out.append(Slot(path, "floating", self.low, self.high, self.log))

    def dims(self, path: str, out: list[DimInfo]) -> None:
        out.append(DimInfo(path, "floating", low=self.low, high=self.high, log=self.log))

    def to_json(self) -> dict[str, Any]:
        return {"kind": "floating", "low": self.low, "high": self.high, "log": self.log}

    def enumerate(self) -> Iterator[Any]:
        raise SpaceError("cannot enumerate a space with floating dimensions")

    def __repr__(self) -> str:
        return f"floating({self.low!r}, {self.high!r}{', log=True' if self.log else ''})"
