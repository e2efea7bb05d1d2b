"""The search-space language: ``space()`` and the :class:`Space` that samples, checks, mutates and encodes.

An architecture is a plain JSON value shaped like the template. Everything here is torch-free. The dimension
constructors (``choice``, ``integer``, ...) live in :mod:`.template` and are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.dims import SENTINEL, DimInfo, Node, RngLike, Slot, as_rng
from nasapp.engine.spaces.template import (
    boolean,
    choice,
    compile_template,
    floating,
    integer,
    node_from_json,
    repeat,
)

__all__ = [
    "SENTINEL",
    "DimInfo",
    "Slot",
    "Space",
    "SpaceError",
    "boolean",
    "choice",
    "floating",
    "integer",
    "repeat",
    "space",
]

_FORMAT = "nasapp.space/1"


def _fresh(value: Any) -> Any:
    """A copy of a JSON value that shares no dict or list with the original."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class Space:
    """A compiled search space. Build one with :func:`space`.

    Random methods take ``rng``: an int seed (deterministic), a ``numpy.random.Generator`` or None.
    """

    def __init__(self, root: Node) -> None:
        self.root = root

    # -- size and shape ----------------------------------------------------------------------------------

    def size(self) -> int:
        """The exact number of discrete configurations; each floating dimension counts as one (so a space with
        floats is larger than this: :meth:`size_text` says so)."""
        return self.root.size

    def size_text(self) -> str:
        """The size as a person reads it: "15,625 architectures", "1.34e+19 architectures", or with floating
        dimensions "12,288 discrete combinations × 2 continuous dimensions" (never a float counted as one)."""
        size, continuous = self.size(), self.num_continuous()
        if not continuous:
            return f"{count_text(size)} architecture{'s' * (size != 1)}"
        return (f"{count_text(size)} discrete combination{'s' * (size != 1)} × {continuous} continuous"
                f" dimension{'s' * (continuous != 1)}")

    def num_continuous(self) -> int:
        """The number of floating dimensions (each repeat slot and choice option counted)."""
        return self.root.n_continuous

    def is_finite(self) -> bool:
        return self.num_continuous() == 0

    def dims(self) -> list[DimInfo]:
        """Every dimension for display, in template order (``blocks[*].kernel``, ``head{mlp}.width``)."""
        out: list[DimInfo] = []
        self.root.dims("", out)
        return out

    def enumerate(self) -> Iterator[Any]:
        """Every architecture of a finite space, in a fixed order."""
        if not self.is_finite():
            raise SpaceError("cannot enumerate a space with floating dimensions")
        return (_fresh(arch) for arch in self.root.enumerate())

    # -- checking ----------------------------------------------------------------------------------------

    def canonical(self, arch: Any) -> Any:
        """``arch`` validated and in canonical form (floats of floating dims as float, tuples as lists)."""
        return self.root.check(arch, "")

    def validate(self, arch: Any) -> None:
        """Raise SpaceError with a path-precise message if ``arch`` is not in the space."""
        self.root.check(arch, "")

    def is_valid(self, arch: Any) -> bool:
        return self.root.accepts(arch)

    def fingerprint(self, arch: Any) -> str:
        """16 hex chars of sha256 over the canonical JSON (sorted keys) of the validated architecture."""
        text = _canonical_json(self.canonical(arch))
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]

    # -- generating --------------------------------------------------------------------------------------

    def sample(self, rng: RngLike = None) -> Any:
        """A random architecture: every decision uniform (log-uniform for log floats). Never enumerates."""
        return self.root.sample(as_rng(rng))

    def mutate(self, arch: Any, rng: RngLike = None) -> Any:
        """A valid architecture that differs from ``arch`` in one active dimension, chosen uniformly.

        A choice switches to another option (a sub-template option is sampled), an integer takes another
        value, a float is resampled or perturbed, a variable repeat gains or loses one element.
        """
        value = self.canonical(arch)
        points = self.root.points(value)
        if points == 0:
            raise SpaceError("nothing to mutate: the space holds a single architecture")
        generator = as_rng(rng)
        return _fresh(self.root.mutate_at(value, int(generator.integers(points)), generator))

    def crossover(self, a: Any, b: Any, rng: RngLike = None) -> Any:
        """A valid child: each leaf (and each choice where the parents differ) comes from either parent."""
        return _fresh(self.root.cross(self.canonical(a), self.canonical(b), as_rng(rng)))

    def neighbours(self, arch: Any) -> list[Any]:
        """Every architecture one discrete step away, in a fixed order; floats are left as they are.

        A step is another option of an active choice (a sub-template option at its default: first options,
        lowest integers, mid-range floats, shortest repeats), an integer +-1, or a variable repeat with one
        element more (a copy of the last) or one fewer (the last removed).
        """
        value = self.canonical(arch)
        seen = {_canonical_json(value)}
        result = []
        for other in self.root.neighbours(value):
            key = _canonical_json(other)
            if key not in seen:
                seen.add(key)
                result.append(_fresh(other))
        return result

    # -- encoding ----------------------------------------------------------------------------------------

    def dim(self) -> int:
        """The length of encoded vectors."""
        return self.root.width

    def encode(self, arch: Any) -> list[float]:
        """A fixed-length vector: one position per dimension in template order (see :meth:`slots`).

        A choice stores its option index and then the positions of every option's sub-template; a repeat
        stores its count and then ``max`` element slots; integers and floats store their value (log floats
        too).
        Positions the architecture does not use hold ``SENTINEL`` (-1.0).
        """
        out: list[float] = []
        self.root.encode(self.canonical(arch), out)
        return out

    def decode(self, vector: Sequence[float]) -> Any:
        """The architecture of ``vector``; ``decode(encode(a)) == a``.

        Any real vector of length :meth:`dim` decodes to a valid architecture: indices, integers and counts
        are rounded and clipped to their bounds, floats clipped; unused positions are ignored.
        """
        if len(vector) != self.dim():
            raise SpaceError(f"expected an encoded vector of length {self.dim()}, got {len(vector)}")
        return self.root.decode(vector, 0)

    def slots(self) -> list[Slot]:
        """What each encoded position holds: path (``blocks[3].kernel``, ``head{mlp}.width``), kind, range."""
        out: list[Slot] = []
        self.root.slots("", out)
        return out

    def bounds(self) -> list[tuple[float, float]]:
        return [(slot.low, slot.high) for slot in self.slots()]

    def categorical_mask(self) -> list[bool]:
        """True where the position is a choice's option index (unordered); False for ordinal/numeric ones."""
        return [slot.categorical for slot in self.slots()]

    # -- serialising -------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "root": self.root.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> Space:
        if not isinstance(data, dict) or data.get("format") != _FORMAT or "root" not in data:
            raise SpaceError(f"not a nasapp space document (expected format {_FORMAT!r})")
        return cls(node_from_json(data["root"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(_canonical_json(self.to_json()))

    def __repr__(self) -> str:
        digits = str(self.size())
        shown = digits if len(digits) <= 12 else f"~{digits[0]}.{digits[1:3]}e{len(digits) - 1}"
        if self.num_continuous():  # the discrete count is not the size of a space with floats
            return f"Space(discrete={shown}, continuous={self.num_continuous()}, dims={len(self.dims())})"
        return f"Space(size={shown}, dims={len(self.dims())})"


def count_text(n: int) -> str:
    """An exact count for people: "15,625" below ten million, "1.34e+19" above (any size of int)."""
    if n < 10**7:
        return f"{n:,}"
    try:
        return f"{n:.2e}"
    except OverflowError:  # beyond a float's range: the leading digits
        digits = str(n)
        return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


def space(template: Any) -> Space:
    """Compile a template (nested dicts/lists of JSON constants and dimensions) into a :class:`Space`."""
    if isinstance(template, Space):
        return template
    return Space(compile_template(template))

