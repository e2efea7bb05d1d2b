"""The ``[reward]`` table (see docs/rewards.md): the one place its defaults live."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# "baseline", "0.8 * baseline" or "baseline * 0.8": a latency target relative to the job's baseline (trial 0)
_NUMBER = r"[0-9]*\.?[0-9]+"
_BASELINE_TARGET = re.compile(rf"^\s*(?:(?P<before>{_NUMBER})\s*\*\s*)?baseline(?:\s*\*\s*(?P<after>{_NUMBER}))?\s*$")


def baseline_ratio(target: float | str | None) -> float | None:
    """The ratio of a target written relative to the baseline (``"0.8 * baseline"`` -> 0.8), else None."""
    if not isinstance(target, str):
        return None
    found = _BASELINE_TARGET.match(target)
    if found is None or (found["before"] and found["after"]):
        return None
    return float(found["before"] or found["after"] or 1.0)


class RewardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    """How a trial's metrics become its reward (see engine/rewards/reward.py)."""

    metric: str = "accuracy"
    direction: Literal["max", "min"] = "max"
    # milliseconds, or relative to the measured latency of [search] baseline: "baseline", "0.8 * baseline"
    latency_target_ms: float | str | None = None
    latency_weight: float = -0.07  # MnasNet's w in metric * (latency / target) ** w
    constraint: Literal["soft", "hard"] = "soft"
    memory_limit_mb: float | None = Field(None, gt=0)
    formula: str | None = None  # e.g. "accuracy * (latency_ms / 20) ** -0.07"; replaces the above

    @field_validator("latency_target_ms")
    @classmethod
    def _target(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str):
            ratio = baseline_ratio(value)
            if ratio is None or ratio <= 0:
                raise ValueError("must be milliseconds (a number), \"baseline\" or a positive ratio of it such"
                                 " as \"0.8 * baseline\"")
        elif value is not None and not value > 0:
            raise ValueError("must be greater than 0")
        return value

    @property
    def target_ratio(self) -> float | None:
        """The ratio of a baseline-relative latency target (``"0.8 * baseline"``: 0.8); None for milliseconds."""
        return baseline_ratio(self.latency_target_ms)

    def with_baseline(self, baseline_ms: float) -> RewardSpec:
        """This spec with a baseline-relative target turned into milliseconds (unchanged otherwise)."""
        ratio = self.target_ratio
        if ratio is None:
            return self
        return self.model_copy(update={"latency_target_ms": ratio * baseline_ms})

    def default(self, name: str) -> object:
        return type(self).model_fields[name].default
