"""The ask/tell interface every search strategy implements.

A strategy is deterministic given its seed and the sequence of asks and tells it has seen, so resume
rebuilds one by replaying the stored history into a fresh instance (no pickled state).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Strategy(ABC):
    """Proposes architectures (``ask``) and learns from their rewards (``tell``).

    Rewards are always "higher is better": the runner negates them for ``direction = "min"``.
    ``reward`` is None for a failed trial.
    """

    name: str = ""

    def __init__(self, space: Any, seed: int) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self) -> Any: ...

    @abstractmethod
    def tell(self, arch: Any, reward: float | None) -> None: ...
