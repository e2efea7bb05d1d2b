"""Every registry of plug-in parts, by the job-file table each one picks for: what `nasapp plugins` lists."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from nasapp.engine.data.kinds import DATA_KINDS
from nasapp.engine.early_stopping import EARLY_STOPPING
from nasapp.engine.execution.executors import EXECUTORS
from nasapp.engine.latency.devices import LATENCY_DEVICES
from nasapp.engine.registry import Registry
from nasapp.engine.strategies import STRATEGIES
from nasapp.engine.trainers import PREBUILT_TRAINERS

REGISTRIES: dict[str, Registry[Any]] = {
    "strategy": STRATEGIES,
    "early_stopping": EARLY_STOPPING,
    "trainer": PREBUILT_TRAINERS,
    "data": DATA_KINDS,
    "latency": LATENCY_DEVICES,
    "executor": EXECUTORS,
}


def own_options(entry: Any, base: type[BaseModel]) -> dict[str, Any]:
    """The keys an entry's options model adds to its table's shared keys, with their defaults."""
    return {name: field.default for name, field in entry.options.model_fields.items() if name not in base.model_fields}


def describe(kind: str) -> list[dict[str, Any]]:
    """The entries of one registry: name, description and own options (the keys only that entry accepts)."""
    registry = REGISTRIES[kind]
    base = _base_options(registry)
    return [{"kind": kind, "key": registry.key, "name": entry.name, "description": entry.description,
             "options": own_options(entry, base)} for entry in registry]


def _base_options(registry: Registry[Any]) -> type[BaseModel]:
    """The model every entry's options extend: the nearest common base class."""
    models = [entry.options for entry in registry]
    for candidate in models[0].__mro__:
        if all(issubclass(model, candidate) for model in models):
            return candidate
    return BaseModel
