"""The runner's part for ``[search] baseline``: trial 0 trains the baseline, and a latency target written
relative to it (``reward.latency_target_ms = "0.8 * baseline"``) becomes milliseconds once it is measured.

Trials that finish before the baseline's latency is known wait here for their reward; they are told to the
strategy as soon as the target is set. The strategy never asked for the baseline, so a resume does not replay an
ask for it (see :meth:`BaselineTrial.is_baseline`), but it is told the baseline's outcome like any other.
"""

from __future__ import annotations

from typing import Any

from nasapp.engine.jobs.baseline import baseline_arch
from nasapp.engine.rewards.options import RewardSpec


class BaselineTrial:
    def __init__(self, spec: Any, space: Any) -> None:
        self.name = spec.search.baseline if isinstance(spec.search.baseline, str) else "the given architecture"
        self.arch = baseline_arch(spec, space)
        self.fingerprint = space.fingerprint(self.arch) if self.arch is not None else None
        self.ratio = spec.reward.target_ratio
        self.reward: RewardSpec = spec.reward  # with the target in ms once known
        self.latency_ms: float | None = None
        self.deferred: list[tuple[Any, dict[str, Any]]] = []  # (running trial, its result) awaiting the target

    @property
    def enabled(self) -> bool:
        return self.arch is not None

    @property
    def waiting(self) -> bool:
        """The reward's target is relative to the baseline, whose latency is not measured yet."""
        return self.ratio is not None and self.latency_ms is None

    def is_baseline(self, number: int, fingerprint: str | None) -> bool:
        return self.enabled and number == 0 and fingerprint == self.fingerprint

    def resolve(self, latency_ms: float) -> str:
        """Set the target from the baseline's measured latency; returns the sentence for the job's events."""
        self.latency_ms = float(latency_ms)
        self.reward = self.reward.with_baseline(self.latency_ms)
        if self.ratio is None:
            return f"baseline {self.name} (trial 0): latency {self.latency_ms:.4g} ms"
        return (f"baseline {self.name} (trial 0): latency {self.latency_ms:.4g} ms, so reward.latency_target_ms ="
                f" {self.ratio:g} x baseline = {self.reward.latency_target_ms:.4g} ms")

    def failed_message(self, trial: Any, result: dict[str, Any]) -> str:
        why = result.get("message") or result.get("reason") or result.get("status")
        if result.get("status") == "succeeded":
            why = "its latency was not measured"
        return (f"the baseline {self.name} (trial 0) did not give a latency ({why}), so"
                f" reward.latency_target_ms = {self.reward.latency_target_ms!r} cannot be set;"
                f" its log: trial {trial.number}'s trial.log")
