"""A persistent worker process: imports torch once, then runs trials sent by the runner.

Protocol: JSON lines. The runner writes commands to the worker's stdin (`run`, `stop`, `exit`); the worker
writes messages to the file descriptor named by NASAPP_RESULT_FD (`ready`, `started` when it begins a trial,
which is when the trial's timeout starts, `report`, `done`). While a trial runs, the process's stdout and
stderr point at the trial's log file, so even C-level output lands there.

Containment (see engine/execution/pool.py): the pool starts the worker in a session of its own, so the worker
and everything a trainer starts share one process group, which the pool kills to end a trial by force. The
worker's watchdog (`_start_watchdog`) kills that group when the runner dies. Neither the message pipe nor the
command pipe is inherited by a program a trainer starts.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from nasapp.engine.errors import NasappError, TrialFailed
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.execution.values import checked_metrics

_PR_SET_PDEATHSIG = 1


def _start_watchdog() -> None:
    """Fork the watchdog of this worker's process group: when the runner dies, the whole group dies.

    The watchdog is a tiny process in the group that blocks reading the lifeline pipe named by
    NASAPP_LIFELINE_FD, whose only writer is the runner. It reads end of file when the runner closes the pool or
    dies, however it dies (the kernel closes a dead process's descriptors, after a SIGKILL too), and then
    SIGKILLs the group: the worker, a command trainer, whatever they forked, and itself. A process rather than
    a thread, so it acts whatever the trainer's main thread is doing (busy in C code holding the GIL, hung,
    dead); PDEATHSIG (below) reaches the worker only, and the trainer's children would outlive it.
    """
    fd = int(os.environ.pop("NASAPP_LIFELINE_FD", "-1"))
    if fd < 0:
        return
    if os.fork() == 0:  # the worker has one thread and few modules yet: a cheap, safe fork
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.closerange(3, fd)  # hold nothing of the worker's (its message pipe) but stdout/stderr, the log
            os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
            while os.read(fd, 64):
                pass
        except BaseException:  # noqa: S110 - whatever went wrong, the group must not outlive its runner
            pass
        finally:
            os.killpg(0, signal.SIGKILL)
            os._exit(0)
    os.close(fd)


def _command_pipe() -> TextIO:
    """The runner's command pipe (stdin), moved to a descriptor that programs a trainer starts do not inherit;
    fd 0 becomes /dev/null, so no subprocess of a trainer can read (steal) the runner's commands."""
    fd = os.dup(0)  # a new descriptor is not inheritable
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return os.fdopen(fd, "r")


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the runner dies (the watchdog then kills the rest of the group)."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    parent = int(os.environ.get("NASAPP_RUNNER_PID", "0"))
    if parent and os.getppid() != parent:
        os._exit(0)


class Channel:
    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "w", buffering=1)
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, allow_nan=True)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


class TrialRunner:
    """Runs trial messages in this process, one at a time: the trainer, data and model builder are cached
    across trials. Shared by the local worker (below) and the Ray executor's actors (ray_actor.py).

    ``send`` gets each ``report`` message; ``should_stop`` is what ``ctx.should_stop()`` asks."""

    def __init__(self, device: str, send: Callable[[dict[str, Any]], None], should_stop: Callable[[], bool]) -> None:
        self.device = device
        self.send = send
        self.should_stop = should_stop
        self._cache: dict[str, Any] = {}

    def run_logged(self, message: dict[str, Any]) -> dict[str, Any]:
        """Run one trial with this process's stdout and stderr in the trial's log file; returns the ``done``
        fields (status, metrics or reason and message, onnx)."""
        log = Path(message["log"])
        log.parent.mkdir(parents=True, exist_ok=True)
        saved = os.dup(1), os.dup(2)
        with open(log, "ab", buffering=0) as handle:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(handle.fileno(), 1)
            os.dup2(handle.fileno(), 2)
            try:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                handle.write(f"=== trial {message['number']} at {stamp} on {self.device} ===\n".encode())
                return self._run(message)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    def _run(self, message: dict[str, Any]) -> dict[str, Any]:
        trial_id = message["trial_id"]

        def report(step: int, metrics: dict[str, float]) -> None:
            self.send({"type": "report", "trial": trial_id, "step": step, "metrics": metrics})

        try:
            train = self._trainer(message["trainer"])
            ctx = TrialContext(
                trial_id=trial_id, number=message["number"], seed=message["seed"], device=self.device,
                workdir=Path(message["workdir"]), proxy=message["proxy"],
                data_loader=self._data_loader(message), build=self._build(message["space"]),
                scale=message["space"].get("scale", {}), data_spec=message["data"], export=message.get("export"),
                resume_from=message.get("resume_from"), _report=report, _should_stop=self.should_stop,
            )
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            metrics = train(message["arch"], ctx)
            result = _checked_metrics(metrics)
        except TrialFailed as failure:
            return {"status": "failed", "reason": failure.reason, "message": failure.message}
        except Exception as error:  # the trainer's bug or a user mistake: keep the job going
            traceback.print_exc()
            reason = "oom" if type(error).__name__ == "OutOfMemoryError" else "error"
            return {"status": "failed", "reason": reason, "message": f"{type(error).__name__}: {error}"}
        if ctx.saved.get("onnx"):
            result["onnx"] = ctx.saved["onnx"]
            profile = ctx.saved["profile"]
            result.setdefault("metrics", {}).update({k: float(v) for k, v in profile.items()})
        return result

    def _trainer(self, trainer: dict[str, Any]) -> Any:
        key = json.dumps(trainer, sort_keys=True)
        if key not in self._cache:
            if trainer.get("command"):
                from nasapp.engine.trainers.command import command_trainer
                self._cache[key] = command_trainer(trainer["command"])
            elif trainer.get("ref"):
                from nasapp.engine.jobs.refs import load_ref
                self._cache[key] = load_ref(trainer["ref"])
            else:
                from nasapp.engine.trainers import PREBUILT_TRAINERS
                self._cache[key] = PREBUILT_TRAINERS.get(trainer["prebuilt"]).train_function()
        return self._cache[key]

    def _data_loader(self, message: dict[str, Any]) -> Any:
        """Loads the job's data on a trainer's first use of ctx.data, once per worker."""
        if message["data"] is None:
            return None
        key = json.dumps([message["data"], message["data_seed"]], sort_keys=True)

        def load() -> Any:
            if key not in self._cache:
                from nasapp.engine.data.loaders import load_dataset
                self._cache[key] = load_dataset(message["data"], message["data_seed"])
            return self._cache[key]

        return load

    def _build(self, space: dict[str, Any]) -> Any:
        if not space.get("prebuilt"):
            return None
        from nasapp.engine.spaces.prebuilt import get_prebuilt
        return get_prebuilt(space["prebuilt"]).build


class Worker:
    """The local worker's loop: trial messages from the runner's command pipe, messages back on a channel."""

    def __init__(self, channel: Channel, device: str, commands: TextIO | None = None) -> None:
        self.channel = channel
        self.device = device
        self.commands = commands if commands is not None else sys.stdin
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stop_requested = threading.Event()
        self.trials = TrialRunner(device, channel.send, self.stop_requested.is_set)
        threading.Thread(target=self._read_commands, daemon=True).start()

    def _read_commands(self) -> None:
        for line in self.commands:
            message = json.loads(line)
            if message["type"] == "stop":
                self.stop_requested.set()
            else:
                self.inbox.put(message)
        self.inbox.put({"type": "exit"})

    def serve(self) -> None:
        self.channel.send({"type": "ready", "pid": os.getpid(), "device": self.device})
        while True:
            message = self.inbox.get()
            if message["type"] == "exit":
                return
            self.stop_requested.clear()
            self.channel.send({"type": "started", "trial": message["trial_id"]})  # its timeout counts from here
            result = self.trials.run_logged(message)
            self.channel.send({"type": "done", "trial": message["trial_id"], **result})


def _checked_metrics(metrics: Any) -> dict[str, Any]:
    try:
        return {"status": "succeeded", "metrics": checked_metrics(metrics)}
    except TrialFailed as failure:
        return {"status": "failed", "reason": failure.reason, "message": failure.message}


def _setup_threads() -> str:
    """Import torch once and size its thread pool for this slot; returns the device name."""
    threads = int(os.environ.get("NASAPP_THREADS", "0"))
    if os.environ.get("NASAPP_NO_TORCH"):
        return os.environ.get("NASAPP_DEVICE", "cpu")
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return os.environ.get("NASAPP_DEVICE", "cpu")


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the runner
    _start_watchdog()
    _die_with_parent()
    result_fd = int(os.environ["NASAPP_RESULT_FD"])
    os.set_inheritable(result_fd, False)  # a program a trainer starts does not get the message pipe
    commands = _command_pipe()
    channel = Channel(result_fd)
    if os.environ.get("NASAPP_CPU_AFFINITY"):  # keep off the cores reserved for latency measurement
        os.sched_setaffinity(0, {int(core) for core in os.environ["NASAPP_CPU_AFFINITY"].split(",")})
    try:
        device = _setup_threads()
    except NasappError as error:
        channel.send({"type": "fatal", "message": str(error)})
        return
    Worker(channel, device, commands).serve()
    _exit_now()


def _exit_now() -> None:
    """Exit without tearing the interpreter down: with torch loaded that takes a second or more, and the
    runner waits for its workers to end. What a normal exit waits for still happens: non-daemon threads
    are joined and atexit handlers (a trainer's, logging's) run."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
