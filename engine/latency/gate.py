"""The latency gate: predicts each candidate's latency before training and skips the ones far over target.

Enabled by ``latency.skip_predicted_over`` together with ``reward.latency_target_ms``. The predictor is
refitted on the job's own measurements as they arrive (the most recent :data:`FIT_WINDOW` of them) and says
nothing until it has enough of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from nasapp.engine.latency.predictor import LatencyPredictor

# the measurements a fit uses, the most recent: bench/latency_predictor.py meets its target (90% within +-10%)
# fitted on 50; each one is featurised when a runner starts (a prebuilt space builds its model on the meta device,
# about 0.1 s of CPU for mnasnet), so a resumed 100,000-trial job featurises 50, not 100,000, and a refit costs
# the same at any size
FIT_WINDOW = 50


class LatencyGate:
    def __init__(self, predictor: LatencyPredictor, target_ms: float | None, skip_over: float) -> None:
        self.predictor = predictor
        self.skip_over = skip_over
        self.archs: deque[Any] = deque(maxlen=FIT_WINDOW)
        self.measured: deque[float] = deque(maxlen=FIT_WINDOW)
        self.set_target(target_ms)

    def set_target(self, target_ms: float | None) -> None:
        """The latency target in ms; None (a target relative to a baseline not measured yet) skips nothing."""
        self.target_ms = target_ms
        self.limit_ms = None if target_ms is None else target_ms * self.skip_over

    @classmethod
    def for_job(cls, spec: Any, space: Any) -> LatencyGate | None:
        if not (spec.latency.skip_predicted_over and spec.reward.latency_target_ms):
            return None
        if spec.space.prebuilt and spec.data is not None:
            from nasapp.engine.data.loaders import load_dataset
            from nasapp.engine.spaces.prebuilt import get_prebuilt

            data = load_dataset(spec.data, spec.seed)
            predictor = LatencyPredictor.for_prebuilt(
                get_prebuilt(spec.space.prebuilt), data.input_shape, data.num_classes,
                spec.space.scale.model_dump(), spec.latency.batch_size)
        else:
            predictor = LatencyPredictor(space)
        target = spec.reward.latency_target_ms
        return cls(predictor, None if isinstance(target, str) else target, spec.latency.skip_predicted_over)

    def observe(self, arch: Any, latency_ms: float) -> None:
        self.observe_many([(arch, latency_ms)])

    def observe_many(self, measured: Iterable[tuple[Any, float]]) -> None:
        """Measurements in the order they were made, then one fit on the most recent ``FIT_WINDOW``."""
        for arch, latency_ms in measured:
            self.archs.append(arch)
            self.measured.append(latency_ms)
        if self.archs:
            self.predictor.fit(list(self.archs), list(self.measured))

    def predict(self, arch: Any) -> float | None:
        return self.predictor.predict(arch) if self.predictor.ready else None

    def skip_reason(self, predicted: float | None) -> str | None:
        if predicted is None or self.limit_ms is None or predicted <= self.limit_ms:
            return None
        return (f"predicted latency {predicted:.3g} ms is over latency.skip_predicted_over = {self.skip_over:g}"
                f" x reward.latency_target_ms = {self.target_ms:g} ms")
