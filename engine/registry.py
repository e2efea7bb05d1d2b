"""Registries: one per kind of plug-in part (strategies, early-stopping rules, trainers, latency devices,
executors, data kinds), in the style of the prebuilt-space registry (``engine/spaces/prebuilt.py``).

An entry is a small frozen dataclass with a ``name``, a one-line ``description`` and an ``options`` model: the
pydantic model of the part's table in a job file. A registry validates that table by the value of its
discriminating key (``[strategy] name = "evolution"`` validates with evolution's options model and rejects a key
that only another strategy knows), so adding a part is one module plus one ``register`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo

from nasapp.engine.errors import NasappError


class Options(BaseModel):
    """The base of every plug-in's options model: unknown keys are errors, fields are typed."""

    model_config = ConfigDict(extra="forbid")


class _Entry(Protocol):
    name: str
    description: str
    options: type[Options]


E = TypeVar("E", bound=_Entry)

# validation context key: a spec read back from the store may carry keys of an older nasapp's defaults
STORED = "stored"


@dataclass
class Registry(Generic[E]):
    """The named entries of one kind of part.

    ``kind`` names the part in messages ("strategy"); ``key`` is the job-file key that picks an entry
    ("strategy.name"); ``field`` the key inside its table ("name").
    """

    kind: str
    key: str
    default: str | None = None

    def __post_init__(self) -> None:
        self._entries: dict[str, E] = {}

    @property
    def field(self) -> str:
        return self.key.rpartition(".")[2]

    def register(self, entry: E, *, replace: bool = False) -> E:
        """Add ``entry``; a second entry of the same name is an error unless ``replace``."""
        if entry.name in self._entries and not replace:
            raise ValueError(f"a {self.kind} named {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> E:
        """The entry called ``name``; an unknown name raises NasappError listing the known ones."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise NasappError(f"{self.key}: unknown {self.kind} {name!r}; choose one of: {self.known()}") from None

    def known(self) -> str:
        return ", ".join(self.names())

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[E]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(self.entries())

    def validate(self, table: Any, info: ValidationInfo | None = None) -> Any:
        """A job-file table validated by the options model of the entry it names (a pydantic before-validator).

        Raises ValueError for an unknown name (pydantic reports it at the table's key path); the options
        model's own errors keep their nested key paths.
        """
        if isinstance(table, Options) or table is None:
            return table
        if not isinstance(table, Mapping):
            return table  # let the field's type say what is wrong
        name = table.get(self.field, self.default)
        if name not in self._entries:
            raise ValueError(f"{self.key}: unknown {self.kind} {name!r}; choose one of: {self.known()}")
        model = self._entries[name].options
        data = {**table, self.field: name}
        if info is not None and info.context and info.context.get(STORED):
            data = {k: v for k, v in data.items() if k in model.model_fields}
        return model.model_validate(data, context=info.context if info else None)

    def validator(self) -> Callable[[Any, ValidationInfo], Any]:
        """:meth:`validate` as a plain function, for ``field_validator(..., mode="before")``."""

        def validate(table: Any, info: ValidationInfo) -> Any:
            return self.validate(table, info)

        return validate
