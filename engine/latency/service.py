"""The runner's latency service: measurements one at a time, in a subprocess, cached by fingerprint.

The runner owns one :class:`LatencyService`. It submits the ONNX file of each finished trial with the
architecture's fingerprint and polls for results between its other duties; measuring never blocks the
runner's thread. A fingerprint measured before (in this job, or before a resume: the cache is a JSON file)
is answered at once, without measuring.

The measuring process is ``python -m nasapp.engine.latency.service``. It reads the latency settings (the
job's ``[latency]`` table) as the first JSON line on stdin, then one request per line
(``{"id": 3, "path": "/.../model.onnx"}``) and answers each with one line on stdout
(``{"id": 3, "metrics": {...}}`` or ``{"id": 3, "error": "..."}``). It imports ONNX Runtime, not torch, and
pins itself to ``pin_cores`` when the settings name them. The parent sends one request at a time, so
measurements never overlap, and it knows which request was in flight when the process dies: that request
is answered with an error and a fresh process is started for the next one.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.python_command import module_command

log = logging.getLogger(__name__)

CACHE_FORMAT = "nasapp.latency-cache/1"
# settings that change what a measurement means: a cache written under other settings is not reused
_CACHE_KEYS = ("device", "command", "batch_size", "threads", "warmup", "runs", "opset", "pin_cores")
DEFAULT_REQUEST_TIMEOUT_S = 600.0


# ---- the measuring process -------------------------------------------------------------------------------

def measure(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """One measurement of the ONNX file at ``path`` under the latency settings ``spec``.

    With ``device = "cpu-ort"`` ONNX Runtime times the file on this CPU. With a ``command`` the user's
    program gives ``latency_ms``; when the device is "cpu-ort" as well, ONNX Runtime's figures are added
    (memory and file size as they are, its latency as ``cpu_latency_ms``).
    """
    from nasapp.engine.latency.timing import measure_command, measure_onnx

    metrics: dict[str, Any] = {}
    if spec.get("device", "none") == "cpu-ort":
        metrics = measure_onnx(path, threads=int(spec.get("threads", 1)), warmup=int(spec.get("warmup", 10)),
                               runs=int(spec.get("runs", 100)), batch_size=spec.get("batch_size"))
    command = spec.get("command")
    if command:
        measured = measure_command(command, path)
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


def serve(stdin: Any, out: Any) -> None:
    """The measuring process's loop: settings line, then request lines until stdin closes."""
    first = stdin.readline()
    if not first:
        return
    spec = json.loads(first)
    _pin(spec.get("pin_cores"))
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


# ---- the runner's side -----------------------------------------------------------------------------------

@dataclass
class _Job:
    fingerprint: str
    path: str
    request_ids: list[int] = field(default_factory=list)
    sent_at: float = 0.0


def _cache_key(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: spec.get(key) for key in _CACHE_KEYS}


class LatencyService:
    """Measures ONNX files in a subprocess, one at a time, with a persistent cache by fingerprint.

    ``spec`` is ``LatencySpec.model_dump()``; ``cache_path`` a JSON file (created when missing; kept across
    resumes). Use :meth:`start`, then :meth:`submit` and :meth:`poll`; :meth:`close` at the end (or use the
    service as a context manager).
    """

    def __init__(self, spec: dict[str, Any], cache_path: str | os.PathLike[str], *,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.spec = dict(spec)
        self.cache_path = Path(cache_path)
        self.log_path = self.cache_path.with_name(self.cache_path.stem + ".log")
        self.request_timeout_s = request_timeout_s
        self.cache: dict[str, dict[str, Any]] = self._load_cache()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._queue: collections.deque[_Job] = collections.deque()
        self._inflight: _Job | None = None
        self._ready: list[tuple[int, dict[str, Any]]] = []
        self._log_file: Any = None
        self._sent = 0
        self.measured = 0  # measurements made by this service (cache hits excluded)

    # -- cache --------------------------------------------------------------------------------------------

    def _load_cache(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.cache_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("latency cache %s unreadable (%s); starting an empty one", self.cache_path, error)
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT \
                or data.get("settings") != _cache_key(self.spec) or not isinstance(data.get("results"), dict):
            log.info("latency cache %s was written under other settings; not reused", self.cache_path)
            return {}
        return dict(data["results"])

    def _save_cache(self) -> None:
        document = {"format": CACHE_FORMAT, "settings": _cache_key(self.spec), "results": self.cache}
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache_path.with_name(self.cache_path.name + ".partial")
        partial.write_text(json.dumps(document, indent=1, sort_keys=True))
        os.replace(partial, self.cache_path)

    def cached(self, fingerprint: str) -> dict[str, Any] | None:
        """The cached metrics of ``fingerprint``, or None."""
        found = self.cache.get(fingerprint)
        return dict(found) if found is not None else None

    # -- process ------------------------------------------------------------------------------------------

    def start(self) -> LatencyService:
        """Start the measuring process (submit starts it too when needed)."""
        self._reap()
        if self._process is not None:
            return self
        cores = self.spec.get("pin_cores")
        if cores and hasattr(os, "sched_getaffinity"):
            allowed = os.sched_getaffinity(0)
            missing = sorted(set(cores) - allowed)
            if missing:
                raise NasappError(f"latency.pin_cores: core(s) {missing} are not available to this process"
                                  f" (available: {sorted(allowed)})")
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process's life
        self._process = subprocess.Popen(
            module_command("nasapp.engine.latency.service"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._buffer = b""
        self._write(self.spec)
        self._send_next()
        return self

    def _write(self, message: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write((json.dumps(message) + "\n").encode())
        self._process.stdin.flush()

    def _reap(self) -> None:
        """Notice a process that has ended: read what it wrote before, then fail its request in flight."""
        if self._process is not None and self._process.poll() is not None:
            self._read_available()
            if self._process is not None:
                self._died("stopped")

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def fileno(self) -> int:
        """The measuring process's stdout, for a selector: readable means :meth:`poll` has news."""
        if self._process is None or self._process.stdout is None:
            raise NasappError("the latency service is not started")
        return self._process.stdout.fileno()

    def _log_tail(self) -> str:
        try:
            text = self.log_path.read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-8:])

    def _died(self, why: str) -> None:
        """The process is gone: the request in flight gets an error; the next submit or poll restarts it."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            with contextlib.suppress(OSError):
                process.kill()
            with contextlib.suppress(Exception):
                code = process.wait(timeout=5)
            for stream in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        job, self._inflight = self._inflight, None
        if job is not None:
            tail = self._log_tail()
            message = f"latency service {why} (exit code {code}) while measuring {job.path}"
            if tail:
                message += f":\n{tail}"
            log.warning("%s", message)
            for request_id in job.request_ids:
                self._ready.append((request_id, {"error": message}))

    # -- requests -----------------------------------------------------------------------------------------

    def submit(self, request_id: int, onnx_path: str | os.PathLike[str], fingerprint: str) -> None:
        """Ask for the metrics of ``onnx_path``; a cached fingerprint is answered at the next poll at once."""
        hit = self.cached(fingerprint)
        if hit is not None:
            self._ready.append((request_id, hit))
            return
        for job in ([self._inflight] if self._inflight else []) + list(self._queue):
            if job.fingerprint == fingerprint:  # the same architecture is already on its way
                job.request_ids.append(request_id)
                return
        self._queue.append(_Job(fingerprint, str(onnx_path), [request_id]))
        if not self._alive():
            self.start()  # first use, or a restart after the process died
        else:
            self._send_next()

    def _send_next(self) -> None:
        if self._inflight is not None or not self._queue or not self._alive():
            return
        job = self._queue.popleft()
        job.sent_at = time.monotonic()
        self._inflight = job
        self._sent += 1
        try:
            self._write({"id": self._sent, "path": job.path})
        except (BrokenPipeError, OSError):
            self._died("stopped")

    def _handle(self, line: bytes) -> None:
        try:
            answer = json.loads(line)
        except ValueError:
            log.warning("latency service wrote a line that is not JSON: %r", line[:200])
            return
        job, self._inflight = self._inflight, None
        if job is None:
            return
        if "metrics" in answer:
            metrics = dict(answer["metrics"])
            self.cache[job.fingerprint] = metrics
            self.measured += 1
            self._save_cache()
            result: dict[str, Any] = metrics
        else:
            result = {"error": str(answer.get("error", "unknown error"))}
        for request_id in job.request_ids:
            self._ready.append((request_id, dict(result)))
        self._send_next()

    def pending(self) -> int:
        """Requests not answered yet (in flight and queued)."""
        jobs = ([self._inflight] if self._inflight else []) + list(self._queue)
        return sum(len(job.request_ids) for job in jobs)

    def poll(self, timeout: float = 0) -> list[tuple[int, dict[str, Any]]]:
        """Answers that are ready: ``(request_id, metrics)`` or ``(request_id, {"error": ...})``.

        Waits up to ``timeout`` seconds for the first answer when none is ready; returns at once when nothing
        is pending.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self._read_available()
            self._reap()
            if self._queue and self._process is None:
                self.start()  # after a death: carry on with the queue
            if self._inflight is not None and \
                    time.monotonic() - self._inflight.sent_at > self.request_timeout_s:
                self._died(f"took longer than {self.request_timeout_s:g} s and was stopped")
                if self._queue:
                    self.start()
            if self._ready or (self._inflight is None and not self._queue):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wait_readable(min(left, 0.5))
        ready, self._ready = self._ready, []
        return ready

    def _wait_readable(self, seconds: float) -> None:
        if self._process is None or self._process.stdout is None:
            time.sleep(seconds)
            return
        with contextlib.suppress(OSError, ValueError):
            select.select([self._process.stdout], [], [], seconds)

    def _read_available(self) -> None:
        process = self._process
        if process is None or process.stdout is None:
            return
        fd = process.stdout.fileno()
        while True:
            try:
                readable, _, _ = select.select([fd], [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                return
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:  # end of file: the process has gone
                with contextlib.suppress(Exception):
                    process.wait(timeout=5)
                self._consume_lines()
                self._died("stopped")
                return
            self._buffer += chunk
            self._consume_lines()

    def _consume_lines(self) -> None:
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                self._handle(line)

    def close(self) -> None:
        """Stop the measuring process (a measurement in flight is abandoned); the cache stays on disk."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(Exception):
                    process.wait(timeout=5)
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LatencyService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
