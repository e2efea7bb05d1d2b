"""The runner's latency stage: predicts a candidate's latency before training (the gate), and after training
sends its ONNX file to the latency service and merges the measurement into the trial's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasapp.engine.latency.gate import LatencyGate

# what the latency service reports about its own settings, not about the model
_MEASUREMENT_SETTINGS = ("threads", "warmup", "runs", "batch_size", "session_ms", "latency_median_all_ms")


class LatencyStage:
    def __init__(self, spec: Any, space: Any, job_dir: Path, measured: list[tuple[Any, float]]) -> None:
        from nasapp.engine.latency.service import LatencyService

        self.space = space
        self.service = LatencyService(spec.latency, job_dir / "latency_cache.json")
        self.service.start()
        self.gate = LatencyGate.for_job(spec, space)
        if self.gate is not None:
            self.gate.observe_many(measured)  # one fit, on the most recent
        self.waiting: dict[int, tuple[Any, dict[str, Any]]] = {}  # trial id -> (arch, the worker's result)

    @classmethod
    def for_job(cls, spec: Any, space: Any, job_dir: Path, measured: list[tuple[Any, float]]) -> LatencyStage | None:
        """None when the job measures no latency. ``measured``: (arch, latency_ms) of trials measured before."""
        return cls(spec, space, job_dir, measured) if spec.latency.enabled else None

    def predict(self, arch: Any) -> tuple[float | None, str | None]:
        """The predicted latency (None while the predictor is not ready) and why to skip the arch (or None)."""
        if self.gate is None:
            return None, None
        predicted = self.gate.predict(arch)
        return predicted, self.gate.skip_reason(predicted)

    def submit(self, trial_id: int, arch: Any, result: dict[str, Any]) -> None:
        """Measure the ONNX file of a trained trial; its result waits here until the measurement is in."""
        self.waiting[trial_id] = (arch, result)
        self.service.submit(trial_id, result["onnx"], self.space.fingerprint(arch))

    def collect(self) -> list[tuple[int, dict[str, Any]]]:
        """Results whose measurement arrived, with the measured metrics merged in (or failed: ``latency``)."""
        done = []
        for trial_id, measured in self.service.poll(0):
            arch, result = self.waiting.pop(trial_id)
            if "error" in measured:
                result = {**result, "status": "failed", "reason": "latency", "message": measured["error"]}
            else:
                kept = {k: v for k, v in measured.items() if k not in _MEASUREMENT_SETTINGS and v is not None}
                result = {**result, "metrics": {**result.get("metrics", {}), **kept}}
                if self.gate is not None and "latency_ms" in kept:
                    self.gate.observe(arch, kept["latency_ms"])
            done.append((trial_id, result))
        return done

    def forget(self) -> None:
        self.waiting.clear()

    def close(self) -> None:
        self.service.close()
