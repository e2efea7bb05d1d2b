"""Command trainers: any executable, any language.

The trial goes to the program as a JSON file named by NASAPP_TRIAL; the program appends JSON lines to the
file named by NASAPP_METRICS: intermediate ones carry a "step", the final one does not (or has "final":
true). A non-zero exit fails the trial with the exit code and the tail of the program's stderr.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasapp.engine.errors import TrialFailed
from nasapp.engine.execution.context import TrialContext

POLL_S = 0.05
STDERR_TAIL_LINES = 20


def trial_document(arch: Any, ctx: TrialContext) -> dict[str, Any]:
    return {
        "trial_id": ctx.trial_id, "number": ctx.number, "arch": arch, "seed": ctx.seed, "device": ctx.device,
        "workdir": str(ctx.workdir), "proxy": ctx.proxy, "scale": ctx.scale, "data": ctx.data_spec,
    }


def command_trainer(command: list[str]) -> Callable[[Any, TrialContext], dict[str, float]]:
    def train(arch: Any, ctx: TrialContext) -> dict[str, float]:
        return run_command(command, arch, ctx)

    return train


def run_command(command: list[str], arch: Any, ctx: TrialContext) -> dict[str, float]:
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    trial_file = ctx.workdir / "trial.json"
    metrics_file = ctx.workdir / "metrics.jsonl"
    trial_file.write_text(json.dumps(trial_document(arch, ctx), indent=2))
    metrics_file.write_text("")
    env = {**os.environ, "NASAPP_TRIAL": str(trial_file), "NASAPP_METRICS": str(metrics_file)}
    try:
        # in the worker's process group (no session of its own): a timeout, cancel or the runner's death
        # kills it and whatever it starts with the group (engine/execution/pool.py)
        proc = subprocess.Popen(command, cwd=ctx.workdir, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as error:
        raise TrialFailed("error", f"cannot start trainer.command {command}: {error}") from None
    tail = _tee_stderr(proc)
    reader = _MetricsReader(metrics_file)
    while proc.poll() is None:
        reader.forward(ctx)
        if ctx.should_stop():
            proc.terminate()
        time.sleep(POLL_S)
    reader.forward(ctx)
    tail.join(timeout=5)
    if proc.returncode != 0:
        stderr = "".join(tail.lines).strip()  # type: ignore[attr-defined]
        raise TrialFailed("error", f"trainer command exited with code {proc.returncode}: {stderr[-2000:]}")
    if reader.final is None:
        raise TrialFailed("error", "the trainer command wrote no final metrics line (one without \"step\")"
                                   " to $NASAPP_METRICS")
    return reader.final


class _MetricsReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.final: dict[str, float] | None = None

    def forward(self, ctx: TrialContext) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete, _, _ = data.rpartition(b"\n")
        if not complete:
            return
        self.offset += len(complete) + 1
        for line in complete.splitlines():
            if line.strip():
                self._take(json.loads(line), ctx)

    def _take(self, record: dict[str, Any], ctx: TrialContext) -> None:
        metrics = {k: v for k, v in record.items() if k not in ("step", "final")}
        if "step" in record and not record.get("final"):
            ctx.report(int(record["step"]), **metrics)
        else:
            self.final = metrics


def _tee_stderr(proc: subprocess.Popen) -> threading.Thread:
    """Copy the program's stderr into the trial log (our fd 2) and keep its last lines for the message."""
    lines: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            text = raw.decode(errors="replace")
            lines.append(text)
            sys.stderr.write(text)
        sys.stderr.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.lines = lines  # type: ignore[attr-defined]
    thread.start()
    return thread
