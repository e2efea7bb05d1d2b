"""Feature vectors of architectures for models that predict their score (the predictor strategy).

Built from the space's encoding (``Space.encode``/``slots``), so every space works, conditional ones included:
a choice becomes a one-hot block over its options; an integer, float or repeat count becomes two features,
"in use" and its value scaled to [0, 1] (log floats on the log scale). Positions the architecture does not use
(:data:`SENTINEL`) are all zeros.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nasapp.engine.spaces import SENTINEL, Space


class Features:
    def __init__(self, space: Space) -> None:
        self.space = space
        self.slots = space.slots()
        self.width = sum(self._block(slot) for slot in self.slots)

    @staticmethod
    def _block(slot: Any) -> int:
        return int(slot.high - slot.low) + 1 if slot.categorical else 2

    def __call__(self, archs: list[Any]) -> np.ndarray:
        out = np.zeros((len(archs), self.width))
        for row, arch in enumerate(archs):
            self._fill(out[row], self.space.encode(arch))
        return out

    def _fill(self, row: np.ndarray, vector: list[float]) -> None:
        at = 0
        for slot, value in zip(self.slots, vector, strict=True):
            width = self._block(slot)
            if value != SENTINEL or (not slot.categorical and slot.low <= SENTINEL <= slot.high):
                if slot.categorical:
                    row[at + int(value - slot.low)] = 1.0
                else:
                    row[at] = 1.0
                    row[at + 1] = _unit(slot, value)
            at += width


def _unit(slot: Any, value: float) -> float:
    low, high = float(slot.low), float(slot.high)
    if slot.log and low > 0:
        low, high, value = math.log(low), math.log(high), math.log(max(value, slot.low))
    return 0.5 if high == low else (value - low) / (high - low)
