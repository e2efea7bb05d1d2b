"""`nasapp.trial()` and `nasapp.report()`: the command-trainer protocol for Python scripts."""

from __future__ import annotations

import json
import os
from typing import Any

from nasapp.engine.errors import NasappError


def _env_path(name: str) -> str:
    path = os.environ.get(name)
    if not path:
        raise NasappError(f"${name} is not set: this script must be started by nasapp as a trainer.command")
    return path


def trial() -> dict[str, Any]:
    """The trial this process runs: arch, seed, device, workdir, proxy settings, scale and data spec."""
    with open(_env_path("NASAPP_TRIAL")) as handle:
        return json.load(handle)


def report(step: int | None = None, **metrics: float) -> None:
    """With `step`: an intermediate report. Without: the trial's final metrics (call once, at the end)."""
    record: dict[str, Any] = {k: float(v) for k, v in metrics.items()}
    if step is not None:
        record["step"] = int(step)
    with open(_env_path("NASAPP_METRICS"), "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
