"""What runs inside Ray's worker processes for the Ray executor (engine/execution/ray_executor.py).

A ``TrialActor`` is one slot: a persistent Ray actor that imports torch once and runs many trials with the
local worker's ``TrialRunner``, so trainers see the same ``ctx`` as on local workers. Reports go to the
driver's ``Inbox`` actor; a stop request arrives on a second actor thread (``max_concurrency=2``) while
``run`` trains. Neither class imports Ray at module level: the executor wraps them with ``ray.remote``.

Artefacts: when the actor can read the driver's job folder (one machine, or a shared filesystem) the trial
writes its folder directly; otherwise (``ship``) it trains in a temporary folder and returns the folder's
files, at most ``MAX_SHIP_BYTES`` in all, for the driver to write into the trial's folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from nasapp.engine.execution.worker import TrialRunner, _setup_threads

MAX_SHIP_BYTES = 256 * 2**20  # files a remote trial returns, all together; larger ones stay behind (noted)


class Inbox:
    """The driver's mailbox: actors put report messages, the executor takes them all at each poll."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put(self, item: dict[str, Any]) -> None:
        self.items.append(item)

    def take(self) -> list[dict[str, Any]]:
        items, self.items = self.items, []
        return items


class TrialActor:
    def __init__(self, env: dict[str, str], inbox: Any, gpus: float, threads: int) -> None:
        os.environ.update(env)
        os.environ["NASAPP_THREADS"] = str(threads)
        os.environ["NASAPP_DEVICE"] = "cuda" if gpus > 0 else "cpu"
        if gpus <= 0:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        self.device = _setup_threads()
        self.inbox = inbox
        self.trial: int | None = None
        self.stop = threading.Event()
        self.last_put: Any = None
        self.runner = TrialRunner(self.device, self._send, self.stop.is_set)

    def info(self, probe: str, token: str) -> dict[str, Any]:
        """Where this actor runs: its node's id, pid, device, and whether it sees the driver's job folder."""
        import ray

        try:
            shared = Path(probe).read_text() == token
        except OSError:
            shared = False
        gpu_ids = ray.get_gpu_ids()
        device = f"cuda:{gpu_ids[0]}" if self.device == "cuda" and gpu_ids else self.device
        return {"node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(), "device": device,
                "shared": shared}

    def run(self, message: dict[str, Any], ship: bool) -> dict[str, Any]:
        """Run one trial; returns the ``done`` fields (with ``files`` when shipping the folder back)."""
        import ray

        self.trial = message["trial_id"]
        self.stop.clear()
        try:
            if not ship:
                return self.runner.run_logged(message)
            return self._run_shipped(message)
        finally:
            self.trial = None
            if self.last_put is not None:  # the inbox holds every report before the driver sees "done"
                ray.get(self.last_put)
                self.last_put = None

    def request_stop(self, trial_id: int) -> None:
        if self.trial == trial_id:  # a late request for the previous trial must not stop this one
            self.stop.set()

    def _send(self, message: dict[str, Any]) -> None:
        self.last_put = self.inbox.put.remote(message)  # an actor runs one caller's calls in order

    def _run_shipped(self, message: dict[str, Any]) -> dict[str, Any]:
        folder = Path(tempfile.mkdtemp(prefix="nasapp-trial-"))
        try:
            local = {**message, "workdir": str(folder), "log": str(folder / "trial.log"), "resume_from": None}
            result = self.runner.run_logged(local)
            if result.get("onnx"):
                result["onnx"] = str(Path(result["onnx"]).relative_to(folder))
            result["files"] = folder_files(folder)
            return result
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def folder_files(folder: Path, limit: int = MAX_SHIP_BYTES) -> dict[str, bytes]:
    """The folder's files (relative path -> bytes), smallest first, up to ``limit`` bytes in all; what did not
    fit is named in a ``trial.log`` line."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    out: dict[str, bytes] = {}
    left, skipped = limit, []
    for path in files:
        size = path.stat().st_size
        if size > left:
            skipped.append(f"{path.relative_to(folder)} ({size} bytes)")
            continue
        out[str(path.relative_to(folder))] = path.read_bytes()
        left -= size
    if skipped:
        note = f"not copied back from the Ray node (over {limit} bytes in all): {', '.join(skipped)}\n"
        out["trial.log"] = out.get("trial.log", b"") + note.encode()
    return out
