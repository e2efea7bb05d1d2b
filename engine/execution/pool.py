"""The worker pool: one persistent worker subprocess per device slot.

A slot is one GPU (CUDA_VISIBLE_DEVICES=i) or, without GPUs, a share of the CPU cores. The runner hands a
trial to an idle worker, reads its messages with `poll` (JSON lines on a pipe of its own, see
engine/execution/jsonlines.py), and replaces a worker that crashed or was killed.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.jsonlines import BadLine, JsonLinesReader
from nasapp.engine.execution.python_command import module_command

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slot:
    index: int
    device: str  # "cpu" or "cuda"
    gpu: int | None = None
    threads: int = 0

    @property
    def label(self) -> str:
        return f"cuda:{self.gpu}" if self.gpu is not None else f"cpu{self.index}"


def visible_gpus() -> list[int]:
    """GPU indices this process may use, without importing torch."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [i for i, part in enumerate(listed.split(",")) if part.strip() and part.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [i for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def training_cores(reserved: list[int] | None) -> list[int] | None:
    """The cores left for training when some are reserved for latency measurement (None: all of them)."""
    if not reserved or not hasattr(os, "sched_getaffinity"):
        return None
    free = sorted(os.sched_getaffinity(0) - set(reserved))
    return free or None  # every core reserved: share them rather than starve training


def plan_slots(devices: str | list[int], parallel: int | str, cores: list[int] | None = None) -> list[Slot]:
    gpus = _gpus_for(devices)
    if gpus:
        count = len(gpus) if parallel == "auto" else int(parallel)
        return [Slot(i, "cuda", gpus[i % len(gpus)]) for i in range(count)]
    cores_n = len(cores) if cores else os.cpu_count() or 1
    count = min(2, cores_n) if parallel == "auto" else int(parallel)
    return [Slot(i, "cpu", None, max(1, cores_n // count)) for i in range(count)]


def _gpus_for(devices: str | list[int]) -> list[int]:
    if devices == "cpu":
        return []
    found = visible_gpus()
    if isinstance(devices, list):
        missing = [g for g in devices if g not in found]
        if missing:
            raise NasappError(f"search.devices: GPU {missing} not visible (visible: {found or 'none'})")
        return list(devices)
    if devices == "cuda" and not found:
        raise NasappError("search.devices = \"cuda\" but no NVIDIA GPU is visible; use \"auto\" or \"cpu\"")
    return found


@dataclass
class WorkerProcess:
    slot: Slot
    proc: subprocess.Popen
    fd: int  # the read end of the worker's message pipe (non-blocking)
    trial: int | None = None
    trial_started: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    reader: JsonLinesReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = JsonLinesReader(self.fd)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; poll() reports it


class WorkerPool:
    def __init__(self, slots: list[Slot], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.slots = slots
        self.log_path = log_path
        self.env = env or {}
        self.selector = selectors.DefaultSelector()
        self.workers: list[WorkerProcess] = []

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.workers = [self._spawn(slot) for slot in self.slots]

    def _spawn(self, slot: Slot) -> WorkerProcess:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, **self.env, "NASAPP_RESULT_FD": str(write_fd), "NASAPP_DEVICE": slot.device,
               "NASAPP_THREADS": str(slot.threads), "NASAPP_RUNNER_PID": str(os.getpid()),
               "PYTHONUNBUFFERED": "1"}
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(slot.gpu)
        elif slot.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                module_command("nasapp.engine.execution.worker"), stdin=subprocess.PIPE, stdout=log,
                stderr=log, pass_fds=(write_fd,), env=env, start_new_session=False,
            )
        os.close(write_fd)
        worker = WorkerProcess(slot, proc, read_fd)
        self.selector.register(read_fd, selectors.EVENT_READ, worker)
        return worker

    def idle(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.trial is None]

    def busy(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.trial is not None]

    def submit(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        worker.trial = message["trial_id"]
        worker.trial_started = time.monotonic()
        worker.send({"type": "run", **message})

    def poll(self, timeout: float) -> list[tuple[WorkerProcess, dict[str, Any]]]:
        """Messages that arrived within `timeout` seconds; a dead worker yields {"type": "died"} after them.

        A line that is not a JSON object with a "type" is skipped with a logged warning.
        """
        out: list[tuple[WorkerProcess, dict[str, Any]]] = []
        for key, _ in self.selector.select(timeout):
            worker: WorkerProcess = key.data
            messages, eof = worker.reader.read_available()
            for message in messages:
                if isinstance(message, BadLine) or not isinstance(message, dict) or "type" not in message:
                    text = message.text if isinstance(message, BadLine) else json.dumps(message)
                    log.warning("worker %s (pid %s) wrote a line that is not a message; skipped: %r",
                                worker.slot.label, worker.proc.pid, text[:200])
                    continue
                if message["type"] == "done":
                    worker.trial = None
                out.append((worker, message))
            if eof:
                out.append((worker, self._reap(worker)))
        return out

    def _reap(self, worker: WorkerProcess) -> dict[str, Any]:
        self.selector.unregister(worker.fd)
        os.close(worker.fd)
        try:
            code = worker.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
        trial = worker.trial
        self.workers[self.workers.index(worker)] = self._spawn(worker.slot)
        description = f"{describe_exit(code)} (worker log: {self.log_path})"
        return {"type": "died", "trial": trial, "returncode": code, "description": description}

    def kill(self, worker: WorkerProcess) -> None:
        """Kill a worker (timeout, cancel); poll() then reports it as died and replaces it."""
        if worker.proc.poll() is None:
            worker.proc.kill()

    def request_stop(self, worker: WorkerProcess) -> None:
        worker.send({"type": "stop"})

    def close(self) -> None:
        """End every worker: idle ones exit, busy ones are killed (their trials were cancelled)."""
        for worker in self.workers:
            if worker.trial is not None:
                worker.proc.kill()
            worker.send({"type": "exit"})
            if worker.proc.stdin:
                try:
                    worker.proc.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for worker in self.workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            try:
                self.selector.unregister(worker.fd)
                os.close(worker.fd)
            except (KeyError, ValueError, OSError):
                pass
        self.workers = []


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
