"""The local executor: persistent worker processes on this machine, one per GPU or per share of the CPU cores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from nasapp.engine.execution.executor import Executor, ExecutorEntry, SearchSpec
from nasapp.engine.execution.leasing import slot_units
from nasapp.engine.execution.pool import (
    WorkerPool,
    WorkerProcess,
    check_parallel,
    gpus_for_check,
    plan_slots,
    training_cores,
)
from nasapp.engine.registry import STORED


class LocalSearch(SearchSpec):
    executor: Literal["local"] = "local"
    # device leases shared by the jobs of one store (engine/execution/leasing.py): the share of its slot's
    # devices a trial leases (below 1: several trials share a GPU or core), the most slots held at once, and
    # who goes first when several jobs wait
    devices_per_trial: float = Field(1.0, gt=0, le=1)
    max_devices: int | None = Field(None, ge=1)
    priority: int = Field(0, ge=-1000, le=1000)

    @model_validator(mode="after")
    def _parallel_fits(self, info: ValidationInfo) -> LocalSearch:
        """More workers than this machine can run is refused before the job exists (a stored job is checked
        again when its runner plans the slots, on the machine it runs on)."""
        if isinstance(self.parallel, int) and not (info.context and info.context.get(STORED)):
            check_parallel(self.parallel, gpus_for_check(self.devices))
        return self


class LocalExecutor(Executor):
    def __init__(self, pool: WorkerPool, cores: list[int] | None = None) -> None:
        self.pool = pool
        self.cores = cores  # the cores left for training (None: all): the CPU slots' lease units
        self._kill_reasons: dict[int, str] = {}  # trial id -> why it was killed

    @classmethod
    def for_job(cls, spec: Any, job_dir: Path, env: dict[str, str]) -> LocalExecutor:
        cores = training_cores(spec.latency.pin_cores if spec.latency.enabled else None)
        slots = plan_slots(spec.search.devices, spec.search.parallel, cores)  # bad devices fail here, first
        if cores:
            env = {**env, "NASAPP_CPU_AFFINITY": ",".join(map(str, cores))}
        return cls(WorkerPool(slots, job_dir / "workers.log", env), cores)

    def start(self) -> list[str]:
        self.pool.start()
        return [slot.label for slot in self.pool.slots]

    def free_slots(self) -> int:
        return len(self.pool.idle())

    def submit(self, message: dict[str, Any], slot: int | None = None) -> str:
        """On the first idle worker, or on pool slot `slot` (a leased one)."""
        idle = self.pool.idle()
        worker = idle[0] if slot is None else next(w for w in idle if w.slot.index == slot)
        self.pool.submit(worker, message)
        return worker.slot.label

    def device_units(self) -> list[tuple[str, ...]] | None:
        return slot_units(self.pool.slots, self.cores)

    def idle_slots(self) -> list[int]:
        return [worker.slot.index for worker in self.pool.idle()]

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        return [self._event(worker, message) for worker, message in self.pool.poll(timeout)
                if message["type"] not in ("ready", "started")]

    def _event(self, worker: WorkerProcess, message: dict[str, Any]) -> dict[str, Any]:
        if message["type"] != "died":
            return message
        trial = message["trial"]
        reason = self._kill_reasons.pop(trial, "crash") if trial is not None else "crash"
        return {"type": "died", "trial": trial, "reason": reason, "message": f"worker {message['description']}"}

    def started_at(self) -> dict[int, float]:
        return {w.trial: w.trial_started for w in self.pool.busy()
                if w.trial is not None and w.trial_started is not None}

    def _worker(self, trial_id: int) -> WorkerProcess | None:
        return next((w for w in self.pool.busy() if w.trial == trial_id), None)

    def cancel(self, trial_id: int, reason: str) -> None:
        worker = self._worker(trial_id)
        if worker is not None and trial_id not in self._kill_reasons:
            self._kill_reasons[trial_id] = reason
            self.pool.kill(worker)

    def request_stop(self, trial_id: int) -> None:
        worker = self._worker(trial_id)
        if worker is not None:
            self.pool.request_stop(worker)

    def close(self) -> None:
        self.pool.close()


ENTRY = ExecutorEntry("local", "worker processes on this machine: one per GPU, or shares of the CPU cores",
                      LocalSearch, LocalExecutor.for_job)
