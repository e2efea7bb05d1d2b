"""The runner's latency service: measurements one at a time, in a subprocess, cached by fingerprint.

The runner owns one :class:`LatencyService`. It submits the ONNX file of each finished trial with the
architecture's fingerprint and polls for results between its other duties; measuring never blocks the
runner's thread. A fingerprint measured before (in this job, or before a resume: see
:mod:`~nasapp.engine.latency.cache`) is answered at once, without measuring.

The measuring process (:mod:`~nasapp.engine.latency.measuring`) gets the settings, then one request at a time,
so measurements never overlap. The service knows which request was in flight when that process dies or hangs
past ``request_timeout_s``: that request is answered with an error and a fresh process is started for the next.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.jsonlines import BadLine, JsonLinesReader
from nasapp.engine.execution.python_command import module_command
from nasapp.engine.latency import measuring
from nasapp.engine.latency.cache import LatencyCache
from nasapp.engine.latency.settings import as_settings, setting

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT_S = 600.0


@dataclass
class _Job:
    fingerprint: str
    path: str
    request_ids: list[int] = field(default_factory=list)
    sent_at: float = 0.0


class LatencyService:
    """Measures ONNX files in a subprocess, one at a time, with a persistent cache by fingerprint.

    ``spec`` is the job's ``LatencySpec`` (or its ``model_dump()`` dict); ``cache_path`` a JSON file (created
    when missing; kept across resumes). Use :meth:`start`, then :meth:`submit` and :meth:`poll`; :meth:`close`
    at the end (or use the service as a context manager).
    """

    def __init__(self, spec: Any, cache_path: str | os.PathLike[str], *,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.spec = as_settings(spec)
        self.cache_path = Path(cache_path)
        self.log_path = self.cache_path.with_name(self.cache_path.stem + ".log")
        self.request_timeout_s = request_timeout_s
        self.cache = LatencyCache(self.cache_path, self.spec)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: JsonLinesReader | None = None
        self._queue: collections.deque[_Job] = collections.deque()
        self._inflight: _Job | None = None
        self._ready: list[tuple[int, dict[str, Any]]] = []
        self._log_file: Any = None
        self._sent = 0
        self.measured = 0  # measurements made by this service (cache hits excluded)

    def cached(self, fingerprint: str) -> dict[str, Any] | None:
        """The cached metrics of ``fingerprint``, or None."""
        return self.cache.get(fingerprint)

    # -- process ------------------------------------------------------------------------------------------

    def start(self) -> LatencyService:
        """Start the measuring process (submit starts it too when needed)."""
        self._reap()
        if self._process is not None:
            return self
        cores = setting(self.spec, "pin_cores")
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
            module_command(measuring.MODULE),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self._process.stdout is not None
        self._reader = JsonLinesReader(self._process.stdout.fileno())
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
        self._reader = None
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

    def _handle(self, answer: Any) -> None:
        if isinstance(answer, BadLine) or not isinstance(answer, dict):
            text = answer.text if isinstance(answer, BadLine) else json.dumps(answer)
            log.warning("latency service wrote a line that is not a JSON object: %r", text[:200])
            return
        job, self._inflight = self._inflight, None
        if job is None:
            return
        if "metrics" in answer:
            metrics = dict(answer["metrics"])
            self.cache.put(job.fingerprint, metrics)
            self.measured += 1
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
        """Handle the answers the measuring process has written; at its end of file, it has died."""
        process, reader = self._process, self._reader
        if process is None or reader is None:
            return
        answers, eof = reader.read_available()
        for answer in answers:
            self._handle(answer)
        if eof and self._process is process:  # (an answer's follow-up write may have noticed the death first)
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
            self._died("stopped")

    def close(self) -> None:
        """Stop the measuring process (a measurement in flight is abandoned); the cache stays on disk."""
        process, self._process = self._process, None
        self._reader = None
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

