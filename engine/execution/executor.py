"""The executor seam: where trials run. The runner hands an executor trial messages and reads events back.

The local executor (``engine/execution/local.py``) runs them in persistent worker
processes on this machine; another executor (a Ray cluster) implements the same few methods.

Events returned by :meth:`Executor.poll` are dicts with ``type``:

- ``report``: ``{"trial": id, "step": int, "metrics": {...}}``, an intermediate report;
- ``done``: ``{"trial": id, "status": "succeeded" | "failed", "metrics": {...}, "reason": ..., "message": ...,
  "onnx": path?, "stopped": bool?}``, the trainer returned (``stopped``: it returned after a stop request);
- ``died``: ``{"trial": id, "reason": "crash" | "timeout" | "cancelled", "message": ...}``, the trial's process
  ended without an answer (killed on a timeout or a cancel, or crashed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from nasapp.engine.registry import Options


class SearchSpec(Options):
    """``[search]``: the budget, the executor and its limits; an executor's model may add its own keys and
    bound ``parallel`` by what it can run (the local one: by this machine's GPUs or cores)."""

    executor: str = "local"
    max_trials: int = Field(40, gt=0)
    parallel: int | Literal["auto"] = "auto"
    devices: str | list[int] = "auto"
    trial_timeout_s: float = Field(600.0, gt=0)
    max_failure_rate: float = Field(0.2, ge=0, le=1)
    # trained and measured first, as trial 0: a name from the prebuilt space's baselines or an architecture
    baseline: str | dict[str, Any] | None = None

    @field_validator("parallel")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be 1 or more, or \"auto\"")
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: str | list[int]) -> str | list[int]:
        if isinstance(value, str) and value not in ("auto", "cpu", "cuda"):
            raise ValueError("must be \"auto\", \"cpu\", \"cuda\" or a list of GPU indices like [0, 1]")
        return value


class Executor(ABC):
    """Runs trial messages; one trial per slot at a time."""

    @abstractmethod
    def start(self) -> list[str]:
        """Start the slots; returns their labels (e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu0", "cpu1"]``)."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more trials can be submitted now."""

    @abstractmethod
    def submit(self, message: dict[str, Any]) -> str:
        """Start the trial ``message`` (``message["trial_id"]`` identifies it) on a free slot; returns the slot."""

    @abstractmethod
    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """Events that arrived within ``timeout`` seconds (see the module docstring)."""

    @abstractmethod
    def started_at(self) -> dict[int, float]:
        """Running trial id -> when it started (``time.monotonic()``), for the runner's timeouts.

        A trial starts when whatever runs it begins it, not when it was submitted: the start-up of a worker
        (importing torch) is not the trial's time. A trial not started yet is left out (an executor notices
        itself a worker that never starts one)."""

    @abstractmethod
    def cancel(self, trial_id: int, reason: str) -> None:
        """Kill a running trial now; it comes back as a ``died`` event with ``reason``."""

    @abstractmethod
    def request_stop(self, trial_id: int) -> None:
        """Ask a running trial to stop at its next ``ctx.should_stop()`` check (early stopping)."""

    def device_units(self) -> list[tuple[str, ...]] | None:
        """Each slot's devices on this machine ("cuda:0", "cpu:3"), when trials run only on slots leased in the
        store (engine/execution/leasing.py: shared by the jobs of one store); None (the default): not leased."""
        return None

    @abstractmethod
    def close(self) -> None:
        """End every slot (running trials are killed: the runner has cancelled them). Nothing a trial started
        may outlive this, nor the runner's death."""


@dataclass(frozen=True)
class ExecutorEntry:
    """``make(spec, job_dir, env)``: an executor for the job (``spec`` is its JobSpec)."""

    name: str
    description: str
    options: type[SearchSpec]
    make: Callable[[Any, Path, dict[str, str]], Executor]
