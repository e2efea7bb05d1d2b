"""The Ray executor: ``[search] executor = "ray"``; trials run on a Ray cluster, the runner stays here.

One persistent ``TrialActor`` (engine/execution/ray_actor.py) per slot, each with ``cpus_per_trial`` CPUs and
``gpus_per_trial`` GPUs, imports torch once and runs many trials (a Ray task per trial would pay a process's
start-up each time). The runner, the store and the latency service stay on this machine (the driver).

- Reports go to an ``Inbox`` actor that ``poll`` drains; ``done`` is the value of the actor's ``run`` call,
  which returns only once its reports are in the inbox, so a trial's reports come before its end.
- A stop request is a call on the actor's second thread; ``cancel`` kills the actor (a new one takes the slot).
- An actor whose process or node dies ends its trial as ``died`` with reason ``crash``, or runs it again on a
  new actor up to ``max_retries`` times.
- Artefacts: an actor that can read the job folder writes the trial's folder itself; one that cannot (another
  machine without a shared filesystem) trains in a temporary folder and returns its files, which are written
  here (``artefacts = "ship"`` forces that). Data files, trainer files and continue_from checkpoints must be
  at the same paths on every node.
- The actors belong to this driver: Ray ends them when the runner disconnects or dies.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.executor import Executor, ExecutorEntry, SearchSpec

MISSING = "executor \"ray\" needs Ray: pip install 'nasapp[ray]'"
LOCAL_OBJECT_STORE = 200 * 2**20  # address = "local": a private cluster needs little (trial messages, results)


class RaySearch(SearchSpec):
    executor: Literal["ray"] = "ray"
    # "auto": the cluster this machine runs or last started; "local": a private one for this job;
    # "ray://host:10001" (Ray Client) or "host:6379" (the head's GCS)
    address: str = "auto"
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    max_retries: int = Field(0, ge=0)  # a trial whose actor's process or node died runs again this many times
    artefacts: Literal["auto", "shared", "ship"] = "auto"
    start_timeout_s: float = Field(120.0, gt=0)  # for the cluster to place and start an actor

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value in ("auto", "local") or value.startswith("ray://") or _host_port(value):
            return value
        raise ValueError('must be "auto", "local", "ray://host:port" or "host:port"')

    @model_validator(mode="after")
    def _ray_installed(self) -> RaySearch:
        if importlib.util.find_spec("ray") is None:
            raise ValueError(MISSING)
        if self.devices not in ("auto", "cpu") or (self.devices == "cpu" and self.gpus_per_trial > 0):
            raise ValueError(f"search.devices = {self.devices!r} is for the local executor; on Ray use"
                             " search.gpus_per_trial")
        return self


def _host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NasappError(MISSING) from None
    return ray


@dataclass
class RaySlot:
    index: int
    actor: Any
    ready: Any  # the actor's info() call until it answered, then None
    since: float  # when the actor was created
    label: str = ""
    shared: bool = True
    trial: int | None = None
    message: dict[str, Any] | None = None
    ref: Any = None  # the running trial's run() call
    started: float | None = None
    attempts: int = 0  # runs of the current trial so far
    waiting: bool = False  # a retry waits for the slot's new actor


class RayExecutor(Executor):
    def __init__(self, options: RaySearch, job_dir: Path, env: dict[str, str]) -> None:
        self.ray = import_ray()
        self.options = options
        self.job_dir = job_dir
        self.env = {**{k: v for k, v in os.environ.items() if k.startswith("NASAPP_")}, **env}
        self.slots: list[RaySlot] = []
        self.inbox: Any = None
        self.connected = False
        self.probe = job_dir / f".ray-probe-{uuid.uuid4().hex[:8]}"
        self.token = uuid.uuid4().hex
        self._kill_reasons: dict[int, str] = {}
        self._hosts: dict[str, str] = {}  # Ray node id -> its address
        self._pending_died: list[dict[str, Any]] = []  # cancelled retries, reported at the next poll

    @classmethod
    def for_job(cls, spec: Any, job_dir: Path, env: dict[str, str]) -> RayExecutor:
        return cls(spec.search, job_dir, env)

    # ---- start-up --------------------------------------------------------------------------------
    def start(self) -> list[str]:
        self._connect()
        from nasapp.engine.execution.ray_actor import Inbox

        self.inbox = self.ray.remote(num_cpus=0)(Inbox).remote()
        self.job_dir.mkdir(parents=True, exist_ok=True)
        self.probe.write_text(self.token)
        self.slots = [self._new_slot(i) for i in range(self._slot_count())]
        deadline = time.monotonic() + self.options.start_timeout_s
        while any(slot.ready is not None for slot in self.slots):
            if time.monotonic() > deadline:
                raise NasappError(self._unplaced())
            self._check_ready(timeout=0.2)
        return [slot.label for slot in self.slots]

    def _connect(self) -> None:
        if self.ray.is_initialized():  # a caller's own connection (a notebook, the bench): used, not closed
            return
        address = self.options.address
        settings: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address == "local":
            cpus = self._local_cpus()
            settings.update(address="local", num_cpus=cpus, include_dashboard=False,
                            object_store_memory=LOCAL_OBJECT_STORE)  # "local": never a cluster found running
        else:
            settings["address"] = address
        try:
            with warnings.catch_warnings():  # Ray's tip about num_gpus=0: the actors set CUDA_VISIBLE_DEVICES
                warnings.filterwarnings("ignore", category=FutureWarning)
                self.ray.init(**settings)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise NasappError(f"search.address = {address!r}: cannot connect to a Ray cluster ({error});"
                              " start one with `ray start --head` or use address = \"local\"") from None
        self.connected = True

    def _local_cpus(self) -> int:
        parallel = self.options.parallel
        if parallel == "auto":
            return os.cpu_count() or 1
        return max(1, math.ceil(int(parallel) * self.options.cpus_per_trial))

    def _slot_count(self) -> int:
        if self.options.parallel != "auto":
            return int(self.options.parallel)
        resources = self.ray.cluster_resources()
        if self.options.gpus_per_trial > 0:
            return max(1, int(resources.get("GPU", 0) // self.options.gpus_per_trial))
        return max(1, int(resources.get("CPU", 1) // self.options.cpus_per_trial))

    def _new_slot(self, index: int) -> RaySlot:
        from nasapp.engine.execution.ray_actor import TrialActor

        options = self.options
        threads = max(1, math.floor(options.cpus_per_trial))
        actor = self.ray.remote(TrialActor).options(
            num_cpus=options.cpus_per_trial, num_gpus=options.gpus_per_trial, max_concurrency=2, max_restarts=0,
        ).remote(self.env, self.inbox, options.gpus_per_trial, threads)
        return RaySlot(index, actor, actor.info.remote(str(self.probe), self.token), time.monotonic())

    def _check_ready(self, timeout: float) -> None:
        """Take the answers of new actors; a retry waiting for its slot's actor is started on it."""
        pending = {slot.ready: slot for slot in self.slots if slot.ready is not None}
        if not pending:
            return
        done, _ = self.ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
        for ref in done:
            slot = pending[ref]
            slot.ready = None
            try:
                info = self.ray.get(ref)
            except self.ray.exceptions.RayError:  # it died starting: try a new one
                self._replace(slot)
                continue
            slot.label = f"{self._host(info['node'])}:{info['device']}"
            slot.shared = self.options.artefacts == "shared" or (self.options.artefacts == "auto" and info["shared"])
            if slot.waiting and slot.message is not None:
                slot.waiting = False
                self._run_on(slot, slot.message)

    def _host(self, node: str) -> str:
        """A node's address as the cluster knows it (the IP it was started with)."""
        if node not in self._hosts:
            self._hosts = {n["NodeID"]: n.get("NodeManagerAddress") or n["NodeID"][:12] for n in self.ray.nodes()}
        return self._hosts.get(node, node[:12])

    def _unplaced(self) -> str:
        waiting = sum(slot.ready is not None for slot in self.slots)
        return (f"the Ray cluster did not start {waiting} of {len(self.slots)} trial actors within"
                f" search.start_timeout_s = {self.options.start_timeout_s:g} (each needs"
                f" {self.options.cpus_per_trial:g} CPUs, {self.options.gpus_per_trial:g} GPUs; the cluster has"
                f" {self.ray.cluster_resources()}): lower search.parallel or the per-trial resources")

    # ---- trials ----------------------------------------------------------------------------------
    def free_slots(self) -> int:
        return sum(1 for slot in self.slots if slot.trial is None and slot.ready is None)

    def submit(self, message: dict[str, Any]) -> str:
        slot = next(slot for slot in self.slots if slot.trial is None and slot.ready is None)
        slot.trial, slot.message, slot.attempts = message["trial_id"], message, 0
        self._run_on(slot, message)
        return slot.label

    def _run_on(self, slot: RaySlot, message: dict[str, Any]) -> None:
        slot.attempts += 1
        slot.ref = slot.actor.run.remote(message, not slot.shared)
        slot.started = time.monotonic()  # the actor is up (torch imported): the trial starts now

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        self._check_ready(timeout=0)
        events, self._pending_died = self._pending_died, []
        running = {slot.ref: slot for slot in self.slots if slot.ref is not None}
        if not running:
            time.sleep(0 if events else timeout)
            self._check_deadlines()
            return events
        refs = list(running)
        first, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        done = self.ray.wait(refs, num_returns=len(refs), timeout=0)[0] if first else []
        events += self.ray.get(self.inbox.take.remote())  # before the ends: a trial's reports come first
        for ref in done:
            events.extend(self._ended(running[ref]))
        self._check_deadlines()
        return events

    def _ended(self, slot: RaySlot) -> list[dict[str, Any]]:
        trial, message = slot.trial, slot.message
        assert trial is not None and message is not None
        ref, slot.ref, slot.started = slot.ref, None, None
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:  # nasapp's own code failed in the actor
            self._free(slot)
            return [{"type": "done", "trial": trial, "status": "failed", "reason": "error",
                     "message": str(error).splitlines()[-1][:500]}]
        except self.ray.exceptions.RayError as error:  # the actor's process or node died, or was killed
            return self._died(slot, trial, error)
        self._kill_reasons.pop(trial, None)
        self._free(slot)
        if "files" in result:
            result = write_files(result, Path(message["workdir"]))
        return [{"type": "done", "trial": trial, **result}]

    def _died(self, slot: RaySlot, trial: int, error: Exception) -> list[dict[str, Any]]:
        reason = self._kill_reasons.pop(trial, None)
        self._replace(slot)
        if reason is None and slot.attempts <= self.options.max_retries:
            slot.waiting = True  # run again on the new actor once it is up
            logging.getLogger(__name__).warning("trial %s: Ray actor died (%s); retrying", trial, _first_line(error))
            return []
        self._free(slot)
        text = "killed" if reason else f"its Ray actor died: {_first_line(error)}"
        return [{"type": "died", "trial": trial, "reason": reason or "crash", "message": text}]

    def _check_deadlines(self) -> None:
        """A new actor that the cluster does not start in time ends the run with the reason."""
        now = time.monotonic()
        if any(slot.ready is not None and now - slot.since > self.options.start_timeout_s for slot in self.slots):
            raise NasappError(self._unplaced())

    def _free(self, slot: RaySlot) -> None:
        slot.trial, slot.message, slot.waiting = None, None, False

    def _replace(self, slot: RaySlot) -> None:
        self._kill(slot.actor)
        new = self._new_slot(slot.index)
        slot.actor, slot.ready, slot.since, slot.label = new.actor, new.ready, new.since, ""

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: S110 - gone already
            pass

    def started_at(self) -> dict[int, float]:
        return {slot.trial: slot.started for slot in self.slots
                if slot.trial is not None and slot.started is not None}

    def _slot(self, trial_id: int) -> RaySlot | None:
        return next((slot for slot in self.slots if slot.trial == trial_id), None)

    def cancel(self, trial_id: int, reason: str) -> None:
        slot = self._slot(trial_id)
        if slot is None or trial_id in self._kill_reasons:
            return
        self._kill_reasons[trial_id] = reason
        if slot.ref is None:  # a retry waiting for its actor: it ends now
            self._free(slot)
            self._kill_reasons.pop(trial_id)
            self._pending_died.append({"type": "died", "trial": trial_id, "reason": reason, "message": "killed"})
            return
        self._kill(slot.actor)

    def request_stop(self, trial_id: int) -> None:
        slot = self._slot(trial_id)
        if slot is not None and slot.ref is not None:
            slot.actor.request_stop.remote(trial_id)

    def close(self) -> None:
        for slot in self.slots:
            self._kill(slot.actor)
        if self.inbox is not None:
            self._kill(self.inbox)
        self.slots, self.inbox = [], None
        self.probe.unlink(missing_ok=True)
        if self.connected:
            self.ray.shutdown()
            self.connected = False


def write_files(result: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """A shipped trial's files into its folder on this machine (its log appended to); the onnx path mapped."""
    result = dict(result)
    files: dict[str, bytes] = result.pop("files")
    for name, data in files.items():
        path = (workdir / name).resolve()
        if not path.is_relative_to(workdir.resolve()):
            continue  # a name that leaves the folder is not written
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if name == "trial.log" else "wb") as handle:
            handle.write(data)
    if result.get("onnx"):
        result["onnx"] = str(workdir / result["onnx"])
    return result


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


ENTRY = ExecutorEntry("ray", "persistent Ray actors on a cluster (address); the runner and store stay here",
                      RaySearch, RayExecutor.for_job)
