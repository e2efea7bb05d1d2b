"""The worker pool: one persistent worker subprocess per device slot.

A slot is one GPU (CUDA_VISIBLE_DEVICES=i) or, without GPUs, a share of the CPU cores. The runner hands a
trial to an idle worker, reads its messages with `poll` (JSON lines on a pipe of its own, see
engine/execution/jsonlines.py), and replaces a worker that crashed or was killed.

Containment: nothing a trial starts outlives it.

- Every worker starts a session of its own, so the worker, its watchdog and everything a trainer starts (a
  command trainer, os.fork, multiprocessing, subprocess) share one process group, whose id is the worker's pid.
  Ending a trial by force (timeout, cancel, crash, close) is one ``killpg(SIGKILL)`` of that group.
- The pool notices a worker's death from the process itself (a pidfd in the selector, ``waitid``), not from the
  end of its message pipe, which a trainer's forked child may hold open; a timeout is enforced whatever the
  trainer's children do.
- When the runner itself dies (even by SIGKILL) the worker's watchdog (engine/execution/worker.py) kills the
  group: it blocks on a "lifeline" pipe whose only writer is the runner, and the kernel closes that on exit.
- On a GPU, killing the whole group is what frees the device: CUDA memory and contexts belong to the processes
  that opened them, so a killed trial whose children lived on would keep holding the GPU.

A process that leaves the group on purpose (setsid, setpgid; a daemon) escapes; a cgroup would catch that too.
"""

from __future__ import annotations

import functools
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

WORKERS_PER_GPU = 4  # parallel may exceed the GPUs by round-robin up to this (no fractional GPU sharing yet)
WORKERS_PER_CORE = 4  # on the CPU: some oversubscription (trainers that wait on I/O), never an unbounded number
START_LIMIT_S = 300.0  # a worker must start a trial within this of being sent it (its torch import included)
EOF_GRACE_S = 2.0  # a worker that closed its message pipe but still runs is killed after this
GROUP_EXIT_S = 5.0  # how long to wait for a killed group's processes to exit (a process in the kernel may lag)


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
    return list(_nvidia_smi_gpus())


@functools.lru_cache(maxsize=1)
def _nvidia_smi_gpus() -> tuple[int, ...]:
    """The GPUs `nvidia-smi -L` lists (asked once per process: job files are checked against them)."""
    if shutil.which("nvidia-smi") is None:
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(i for i, line in enumerate(out.splitlines()) if line.startswith("GPU "))


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def training_cores(reserved: list[int] | None) -> list[int] | None:
    """The cores left for training when some are reserved for latency measurement (None: all of them)."""
    if not reserved or not hasattr(os, "sched_getaffinity"):
        return None
    free = sorted(os.sched_getaffinity(0) - set(reserved))
    return free or None  # every core reserved: share them rather than starve training


def check_parallel(parallel: int, gpus: list[int]) -> None:
    """Refuse more workers than the machine can run: each is a process that imports torch (hundreds of MB).

    On GPUs at most WORKERS_PER_GPU per GPU (they share it round-robin); on the CPU WORKERS_PER_CORE per core.
    Raises ValueError naming search.parallel, the limit and why.
    """
    if gpus:
        limit, why = WORKERS_PER_GPU * len(gpus), f"{WORKERS_PER_GPU} workers per GPU, {len(gpus)} GPU(s)"
    else:
        cores = usable_cores()
        limit, why = WORKERS_PER_CORE * cores, f"{WORKERS_PER_CORE} workers per CPU core, {cores} core(s)"
    if parallel > limit:
        raise ValueError(f"search.parallel = {parallel}: at most {limit} on this machine ({why}; each worker is a"
                         " process that imports torch); lower it or use \"auto\"")


def gpus_for_check(devices: str | list[int]) -> list[int]:
    """The GPUs a job's workers would use, for check_parallel (an unusable `devices` fails later, in plan_slots)."""
    if devices == "cpu":
        return []
    return list(devices) if isinstance(devices, list) else visible_gpus()


def plan_slots(devices: str | list[int], parallel: int | str, cores: list[int] | None = None) -> list[Slot]:
    gpus = _gpus_for(devices)
    if parallel != "auto":
        try:
            check_parallel(int(parallel), gpus)
        except ValueError as error:
            raise NasappError(str(error)) from None
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
    trial_started: float | None = None  # when the worker said it started the trial (None: not yet)
    sent: float = field(default_factory=time.monotonic)  # when the trial was sent to it
    pgid: int | None = None  # the process group of the worker and its trial (None: not started by a pool)
    lifeline: int | None = None  # the write end of the watchdog's pipe: closing it kills the group
    pidfd: int | None = None  # readable when the process ends (Linux), so the selector wakes at once
    note: str | None = None  # why the pool killed it, for the "died" message
    eof_at: float | None = None  # when its message pipe closed
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


@dataclass(frozen=True)
class _Ended:
    """Selector data for a worker's pidfd (its message pipe's data is the WorkerProcess itself)."""

    worker: WorkerProcess


class WorkerPool:
    def __init__(self, slots: list[Slot], log_path: Path, env: dict[str, str] | None = None,
                 start_limit_s: float = START_LIMIT_S) -> None:
        self.slots = slots
        self.log_path = log_path
        self.env = env or {}
        self.start_limit_s = start_limit_s
        self.selector = selectors.DefaultSelector()
        self.workers: list[WorkerProcess] = []

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.workers = [self._spawn(slot) for slot in self.slots]  # one per planned slot, never more

    def _spawn(self, slot: Slot) -> WorkerProcess:
        read_fd, write_fd = os.pipe()
        life_read, life_write = os.pipe()  # only this process ever holds life_write (os.pipe fds are not inherited)
        env = {**os.environ, **self.env, "NASAPP_RESULT_FD": str(write_fd), "NASAPP_LIFELINE_FD": str(life_read),
               "NASAPP_DEVICE": slot.device, "NASAPP_THREADS": str(slot.threads),
               "NASAPP_RUNNER_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(slot.gpu)
        elif slot.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        try:
            with open(self.log_path, "ab") as log:
                proc = subprocess.Popen(
                    module_command("nasapp.engine.execution.worker"), stdin=subprocess.PIPE, stdout=log,
                    stderr=log, pass_fds=(write_fd, life_read), env=env, start_new_session=True,
                )
        except BaseException:
            os.close(read_fd)
            os.close(life_write)
            raise
        finally:
            os.close(write_fd)
            os.close(life_read)
        worker = WorkerProcess(slot, proc, read_fd, pgid=proc.pid, lifeline=life_write, pidfd=_pidfd(proc.pid))
        self.selector.register(read_fd, selectors.EVENT_READ, worker)
        if worker.pidfd is not None:
            self.selector.register(worker.pidfd, selectors.EVENT_READ, _Ended(worker))
        return worker

    def idle(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.trial is None]

    def busy(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.trial is not None]

    def submit(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        """Send a trial; it is timed from the worker's "started" message (see `poll`), not from now."""
        worker.trial = message["trial_id"]
        worker.trial_started = None
        worker.sent = time.monotonic()
        worker.send({"type": "run", **message})

    def poll(self, timeout: float) -> list[tuple[WorkerProcess, dict[str, Any]]]:
        """Messages that arrived within `timeout` seconds; a dead worker yields {"type": "died"} after them.

        A worker that ended is reaped here, whatever became of its message pipe: its process group is killed
        (its trial's processes with it) and a new worker takes its slot. A worker that does not start a trial
        within `start_limit_s` of being sent it is killed and reported the same way.
        A line that is not a JSON object with a "type" is skipped with a logged warning.
        """
        out: list[tuple[WorkerProcess, dict[str, Any]]] = []
        for key, _ in self.selector.select(timeout):
            if isinstance(key.data, WorkerProcess):
                self._read(key.data, out)
            # an _Ended key: the process ended; reaped below with every other worker
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.trial is not None and worker.trial_started is None and now - worker.sent > self.start_limit_s:
                worker.note = worker.note or f"did not start the trial within {self.start_limit_s:g} s of being sent it"
                self.kill(worker)
            elif worker.eof_at is not None and now - worker.eof_at > EOF_GRACE_S:
                worker.note = worker.note or "closed its message pipe"
                self.kill(worker)
            if _ended(worker.proc):
                self._read(worker, out)  # what it wrote before it ended
                out.append((worker, self._reap(worker)))
        return out

    def _read(self, worker: WorkerProcess, out: list[tuple[WorkerProcess, dict[str, Any]]]) -> None:
        if worker.reader.eof:
            return
        messages, eof = worker.reader.read_available()
        for message in messages:
            if isinstance(message, BadLine) or not isinstance(message, dict) or "type" not in message:
                text = message.text if isinstance(message, BadLine) else json.dumps(message)
                log.warning("worker %s (pid %s) wrote a line that is not a message; skipped: %r",
                            worker.slot.label, worker.proc.pid, text[:200])
                if worker.trial is not None:  # the trial's code wrote to the result pipe: fail that trial
                    out.append((worker, {"type": "bad_message", "trial": worker.trial, "text": text[:200]}))
                continue
            if message["type"] == "started" and message.get("trial") == worker.trial:
                worker.trial_started = time.monotonic()
            if message["type"] == "done":
                worker.trial = None
                worker.trial_started = None
            out.append((worker, message))
        if eof:  # the worker is ending (reaped when it has), or closed the pipe (killed after EOF_GRACE_S)
            _forget(self.selector, worker.fd)
            worker.eof_at = time.monotonic()

    def _reap(self, worker: WorkerProcess) -> dict[str, Any]:
        """Kill what is left of an ended worker's group, reap it and put a new worker in its slot."""
        self.kill(worker)  # before the leader is reaped: its pid, the group's id, cannot be reused until then
        code = worker.proc.wait()
        self._release(worker)
        if worker.pgid is not None:
            _wait_group_gone([worker.pgid], GROUP_EXIT_S)  # the slot's GPU is free before the next worker
        trial = worker.trial
        self.workers[self.workers.index(worker)] = self._spawn(worker.slot)
        description = f"{worker.note or describe_exit(code)} (worker log: {self.log_path})"
        return {"type": "died", "trial": trial, "returncode": code, "description": description}

    def _release(self, worker: WorkerProcess) -> None:
        """Close the pool's ends of a worker's pipes (closing the lifeline tells its watchdog to end the group)."""
        for fd in (worker.fd, worker.pidfd):
            if fd is not None:
                _forget(self.selector, fd)
                _close(fd)
        worker.pidfd = None
        if worker.lifeline is not None:
            _close(worker.lifeline)
            worker.lifeline = None
        if worker.proc.stdin:
            try:
                worker.proc.stdin.close()
            except OSError:
                pass

    def kill(self, worker: WorkerProcess) -> None:
        """Kill a worker and every process of its trial (timeout, cancel); poll() then reports it as died and
        replaces it."""
        if worker.pgid is not None:
            try:
                os.killpg(worker.pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif worker.proc.poll() is None:
            worker.proc.kill()

    def request_stop(self, worker: WorkerProcess) -> None:
        worker.send({"type": "stop"})

    def close(self) -> None:
        """End every worker: idle ones exit, busy ones are killed (their trials were cancelled); then every
        worker's process group is killed, so nothing a trial started outlives the pool."""
        for worker in self.workers:
            if worker.trial is not None:
                self.kill(worker)
            worker.send({"type": "exit"})
            if worker.proc.stdin:
                try:
                    worker.proc.stdin.close()
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for worker in self.workers:
            while not _ended(worker.proc) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.kill(worker)  # an idle worker's leftovers, its watchdog, or a worker that did not exit in time
            worker.proc.wait()
            self._release(worker)
        _wait_group_gone([w.pgid for w in self.workers if w.pgid is not None], GROUP_EXIT_S)
        self.workers = []


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None


def _ended(proc: subprocess.Popen) -> bool:
    """Whether the process has ended, without reaping it (a zombie keeps its pid, the group's id, reserved)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _wait_group_gone(pgids: list[int], timeout: float) -> None:
    """Wait (at most `timeout` seconds) until no live process is left in these process groups."""
    deadline = time.monotonic() + timeout
    left = list(pgids)
    while left:
        left = [pgid for pgid in left if _group_alive(pgid)]
        if not left or time.monotonic() > deadline:
            if left:
                log.warning("processes of group(s) %s still running %g s after SIGKILL", left, timeout)
            return
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies, which hold nothing, do not count on Linux)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _forget(selector: selectors.BaseSelector, fd: int) -> None:
    try:
        selector.unregister(fd)
    except (KeyError, ValueError):
        pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
