"""The ``[reward]`` table (see docs/rewards.md): the one place its defaults live."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RewardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    """How a trial's metrics become its reward (see engine/rewards/reward.py)."""

    metric: str = "accuracy"
    direction: Literal["max", "min"] = "max"
    latency_target_ms: float | None = Field(None, gt=0)
    latency_weight: float = -0.07  # MnasNet's w in metric * (latency / target) ** w
    constraint: Literal["soft", "hard"] = "soft"
    memory_limit_mb: float | None = Field(None, gt=0)
    formula: str | None = None  # e.g. "accuracy * (latency_ms / 20) ** -0.07"; replaces the above

    def default(self, name: str) -> object:
        return type(self).model_fields[name].default
