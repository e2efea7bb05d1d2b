"""Latency devices: where candidates are timed (``[latency] device = "..."``), and the ``[latency]`` table.

An entry declares its options model (a subclass of :class:`LatencySpec` that may add keys) and
``measure(spec, onnx_path) -> metrics``, run inside the latency service's process (one measurement at a time).
``latency.command`` (the user's own device program) works with any device and is handled by the service.
Adding a device = one module with its options and ``measure`` + one ``register`` line at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from nasapp.engine.registry import Options, Registry


class LatencySpec(Options):
    """``[latency]``: where and how candidates are timed (see docs/latency.md)."""

    device: str = "none"
    command: list[str] | None = None  # a program that gets an ONNX path and prints a latency in ms
    batch_size: int = Field(1, gt=0)
    threads: int = Field(1, gt=0)
    warmup: int = Field(10, ge=0)
    runs: int = Field(200, gt=0)
    opset: int = Field(17, ge=11)
    pin_cores: list[int] | None = None  # run measurements on these cores only
    skip_predicted_over: float | None = Field(None, gt=1)  # skip candidates predicted > this x target

    @property
    def enabled(self) -> bool:
        return timing_enabled({"device": self.device, "command": self.command})

    @property
    def measures_memory(self) -> bool:
        return LATENCY_DEVICES.get(self.device).measures_memory


def timing_enabled(latency: dict[str, Any]) -> bool:
    """Does a job with this ``[latency]`` table (as stored) time its candidates at all? (The one place that
    decides it; summaries read the stored table without building the spec.)"""
    return latency.get("device", "none") != "none" or bool(latency.get("command"))


@dataclass(frozen=True)
class LatencyDevice:
    name: str
    description: str
    options: type[LatencySpec]
    measure: Callable[[Any, str], dict[str, Any]] | None  # None: this device measures nothing itself
    measures_memory: bool = False


class NoDevice(LatencySpec):
    device: Literal["none"] = "none"


class CpuOrt(LatencySpec):
    device: Literal["cpu-ort"] = "cpu-ort"


def measure_cpu_ort(spec: LatencySpec, path: str) -> dict[str, Any]:
    from nasapp.engine.latency.timing import measure_onnx

    return measure_onnx(path, threads=spec.threads, warmup=spec.warmup, runs=spec.runs, batch_size=spec.batch_size)


LATENCY_DEVICES: Registry[LatencyDevice] = Registry("latency device", "latency.device", default="none")
LATENCY_DEVICES.register(LatencyDevice("none", "no timing of its own (latency.command may still time)", NoDevice,
                                       None))
LATENCY_DEVICES.register(LatencyDevice("cpu-ort", "ONNX Runtime on this machine's CPU: latency, memory, file size",
                                       CpuOrt, measure_cpu_ort, measures_memory=True))


def latency_options(spec: Any) -> LatencySpec:
    """The typed options of a ``[latency]`` table (a LatencySpec, or a plain dict such as the service's settings;
    keys the device does not take are dropped, missing ones take the defaults)."""
    if isinstance(spec, LatencySpec):
        return spec
    entry = LATENCY_DEVICES.get(spec.get("device", LATENCY_DEVICES.default))
    return entry.options.model_validate({k: v for k, v in spec.items() if k in entry.options.model_fields})
