"""The measuring process of the latency service: ``python -P -m nasapp.engine.latency.measuring``.

It reads the latency settings (the job's ``[latency]`` table) as the first JSON line on stdin, then one request
per line (``{"id": 3, "path": "/.../model.onnx"}``) and answers each with one line on stdout
(``{"id": 3, "metrics": {...}}`` or ``{"id": 3, "error": "..."}``). It imports ONNX Runtime, not torch, and
pins itself to ``pin_cores`` when the settings name them. Its parent is
:class:`nasapp.engine.latency.service.LatencyService`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from nasapp.engine.errors import NasappError
from nasapp.engine.latency.settings import setting

MODULE = "nasapp.engine.latency.measuring"


def measure(spec: Mapping[str, Any], path: str) -> dict[str, Any]:
    """One measurement of the ONNX file at ``path`` under the latency settings ``spec``.

    The device (``LATENCY_DEVICES``) measures first: with ``"cpu-ort"`` ONNX Runtime times the file on this CPU.
    With a ``command`` the user's
    program gives ``latency_ms``; when the device is "cpu-ort" as well, ONNX Runtime's figures are added
    (memory and file size as they are, its latency as ``cpu_latency_ms``).
    """
    from nasapp.engine.latency.devices import LATENCY_DEVICES, latency_options
    from nasapp.engine.latency.timing import measure_command

    options = latency_options(spec)
    device = LATENCY_DEVICES.get(options.device)
    metrics: dict[str, Any] = device.measure(options, path) if device.measure is not None else {}
    if options.command:
        measured = measure_command(options.command, path)
        if metrics:
            metrics["cpu_latency_ms"] = metrics["latency_ms"]
            for key in ("latency_median_all_ms", "latency_p90_ms", "latency_mean_ms", "latency_cv"):
                metrics.pop(key, None)
        metrics.update(measured)
    if not metrics:
        raise NasappError("latency measurement is off: set latency.device = \"cpu-ort\" or latency.command")
    return metrics


def _pin(cores: list[int] | None) -> None:
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))


def serve(stdin: IO[str], out: IO[str]) -> None:
    """The measuring process's loop: settings line, then request lines until stdin closes."""
    first = stdin.readline()
    if not first:
        return
    spec = json.loads(first)
    _pin(setting(spec, "pin_cores"))
    for line in stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = {"id": request["id"], "metrics": measure(spec, request["path"])}
        except NasappError as error:
            answer = {"id": request["id"], "error": str(error)}
        except Exception as error:  # noqa: BLE001 - report, never die on one bad model
            answer = {"id": request["id"], "error": f"{type(error).__name__}: {error}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def main() -> None:
    # the protocol owns the real stdout; anything a library prints goes to stderr instead
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()
