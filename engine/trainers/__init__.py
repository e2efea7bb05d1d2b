"""Trainers: the registry of prebuilt trainers (``[trainer] prebuilt = "..."``).

A custom trainer needs no registration: ``trainer.ref = "pkg.mod:train"`` or ``trainer.command = [...]``.
A prebuilt trainer is an entry here: its options model (the ``[trainer]`` table it accepts) and where its
``train(arch, ctx)`` lives, loaded only when a worker runs it (trainers import torch; the registry must not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import model_validator

from nasapp.engine.registry import Registry
from nasapp.engine.trainers.options import ProxySettings, TrainerSpec


@dataclass(frozen=True)
class TrainerEntry:
    """``load`` is ``"module:function"``; ``needs_data``/``needs_prebuilt_space``: what the job must give it."""

    name: str
    description: str
    options: type[TrainerSpec]
    load: str
    needs_data: bool = True
    needs_prebuilt_space: bool = True

    def train_function(self) -> Callable[..., Any]:
        from nasapp.engine.jobs.refs import load_ref

        return load_ref(self.load)


class ClassificationOptions(TrainerSpec):
    prebuilt: Literal["classification"] | None = "classification"


class TabularOptions(TrainerSpec):
    """``options``: ``table`` (a CSV path, required), ``space`` (its space: a prebuilt name or module:name;
    default nb201), ``arch_column`` (default arch), ``metric_column`` (default accuracy)."""

    prebuilt: Literal["tabular"] | None = "tabular"

    @model_validator(mode="after")
    def _table_given(self) -> TabularOptions:
        unknown = set(self.options) - {"table", "space", "arch_column", "metric_column"}
        if unknown:
            raise ValueError(f"trainer.options: unknown key {sorted(unknown)[0]!r}; the tabular trainer takes"
                             " table, space, arch_column, metric_column")
        if not isinstance(self.options.get("table"), str):
            raise ValueError("trainer.options.table: give the path of the benchmark's CSV file")
        return self


PREBUILT_TRAINERS: Registry[TrainerEntry] = Registry("prebuilt trainer", "trainer.prebuilt", default="classification")
PREBUILT_TRAINERS.register(TrainerEntry(
    "classification", "image/tabular classification: in-memory tensors, cosine decay, EMA, AMP on GPU",
    ClassificationOptions, "nasapp.engine.trainers.classification:train"))
PREBUILT_TRAINERS.register(TrainerEntry(
    "tabular", "look the architecture up in a tabular benchmark (a CSV of architectures and their metrics)",
    TabularOptions, "nasapp.engine.trainers.tabular:train", needs_data=False, needs_prebuilt_space=False))

__all__ = ["PREBUILT_TRAINERS", "ClassificationOptions", "ProxySettings", "TabularOptions", "TrainerEntry",
           "TrainerSpec",
           "validate_trainer"]


def validate_trainer(table: Any, info: Any = None) -> Any:
    """The ``[trainer]`` table: a custom trainer (ref/command) validates as TrainerSpec, a prebuilt one by its
    registered options model."""
    if isinstance(table, dict) and (table.get("ref") or table.get("command")):
        return TrainerSpec.model_validate(table, context=info.context if info else None)
    return PREBUILT_TRAINERS.validate(table, info)
