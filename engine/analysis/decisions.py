"""A space's decisions (its encoded positions that can take more than one value) and the trials as a table of
their values: the common input of every analysis.

A decision is one slot of ``space.slots()``: ``blocks[3].kernel`` is its own decision, apart from
``blocks[2].kernel``, because each position of a network can matter differently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasapp.engine.spaces.dims import SENTINEL
from nasapp.store.records import Trial

_ELEMENT = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Decision:
    """One free position of the space's encoding."""

    path: str  # blocks[3].kernel, head{mlp}.width, blocks (a repeat's length)
    kind: str  # choice | boolean | integer | floating | length
    position: int  # its index in space.encode(arch)
    low: float
    high: float
    log: bool = False
    options: tuple[Any, ...] | None = None  # choice/boolean: the value shown for each option index

    @property
    def categorical(self) -> bool:
        return self.kind in ("choice", "boolean")

    def label(self, value: float) -> Any:
        """The value as a person reads it: the option itself, the integer, the float."""
        if self.options is not None:
            return self.options[int(value)]
        return float(value) if self.kind == "floating" else int(value)

    def normalised(self, value: float) -> float:
        """``value`` on [0, 1] over the decision's range (log floats on a log scale)."""
        low, high = self.low, self.high
        if self.log:
            low, high, value = math.log(low), math.log(high), math.log(value)
        return (value - low) / (high - low)


@dataclass(frozen=True)
class DecisionTable:
    """The sampled trials as rows: each decision's encoded value (NaN where the architecture does not use it)."""

    decisions: list[Decision]
    numbers: list[int]  # trial numbers, one per row
    trial_ids: list[int]
    values: np.ndarray  # rows x decisions
    rewards: np.ndarray  # one per row


def decisions_of(space: Any) -> list[Decision]:
    """Every slot of ``space`` that can take more than one value, in template order."""
    infos = {info.path: info for info in space.dims()}
    found = []
    for position, slot in enumerate(space.slots()):
        if slot.low == slot.high:
            continue
        info = infos.get(_ELEMENT.sub("[*]", slot.path))
        kind = "boolean" if info is not None and info.kind == "boolean" else slot.kind
        options = tuple(info.options) if slot.kind == "choice" and info is not None and info.options else None
        found.append(Decision(slot.path, kind, position, slot.low, slot.high, slot.log, options))
    return found


def decision_table(space: Any, trials: list[Trial]) -> DecisionTable:
    decisions = decisions_of(space)
    positions = [d.position for d in decisions]
    encoded = np.array([space.encode(t.arch) for t in trials], dtype=float).reshape(len(trials), -1)
    values = encoded[:, positions] if positions else np.empty((len(trials), 0))
    for column, decision in enumerate(decisions):
        if not decision.low <= SENTINEL <= decision.high:  # else -1 is a value (and the encoding cannot tell)
            values[values[:, column] == SENTINEL, column] = np.nan
    return DecisionTable(decisions, [t.number for t in trials], [t.id for t in trials], values,
                         np.array([t.reward for t in trials], dtype=float))
