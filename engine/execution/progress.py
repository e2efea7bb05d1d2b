"""A running job's progress as one line of text, and the ETA rule the dashboard shares: `nasapp run` redraws it
on a terminal (ProgressLine), `JobHandle.wait()` in a notebook too (LiveLine)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runner imports numpy and every registry: `nasapp ls` needs none of them
    from nasapp.engine.execution.runner import Progress


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(p: Progress) -> str:
    best = f"{p.best:.4f}" if p.best is not None else "-"
    return (f"trials {p.done}/{p.total}  running {p.running}  failed {p.failed}  best {best}"
            f"  elapsed {format_duration(p.elapsed_s)}  eta {eta_text(p)}")


def eta_seconds(done: int, total: int, elapsed_s: float, done_at_start: int = 0) -> float | None:
    """Time left at the pace so far: elapsed time per trial finished since ``done_at_start`` (what was finished
    when the clock started), times the trials left; None before the first one."""
    done_here = done - done_at_start
    if done_here <= 0 or elapsed_s <= 0:
        return None
    return elapsed_s / done_here * max(0, total - done)


def eta_text(p: Progress) -> str:
    """The progress line's ETA at this run's pace; "-" before its first finished trial."""
    if p.status != "running":
        return "0:00" if p.done >= p.total else "-"
    left = eta_seconds(p.done, p.total, p.elapsed_s, p.done_at_start)
    return "-" if left is None else format_duration(left)


class ProgressLine:
    """On a terminal: one line redrawn in place. Elsewhere (pipes, CI): a line each time a trial ends."""

    def __init__(self, stream=None, min_interval_s: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.min_interval_s = min_interval_s
        self._last_text = ""
        self._last_done = -1
        self._last_draw = 0.0

    def __call__(self, p: Progress) -> None:
        text = format_progress(p)
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= self.min_interval_s or p.status != "running":
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
                self._last_draw = now
        elif p.done != self._last_done:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last_text, self._last_done = text, p.done

    def close(self) -> None:
        if self.tty and self._last_text:
            self.stream.write("\n")
            self.stream.flush()


class LiveLine:
    """The progress line for Python users: in a Jupyter kernel one output line updated in place (IPython's
    display, when importable), elsewhere a ProgressLine on stdout."""

    def __init__(self, min_interval_s: float = 0.5) -> None:
        self.min_interval_s = min_interval_s
        self._handle = _notebook_display()
        self._fallback = None if self._handle is not None else ProgressLine(sys.stdout, min_interval_s)
        self._last_draw = 0.0

    def __call__(self, p: Progress) -> None:
        if self._fallback is not None:
            self._fallback(p)
            return
        now = time.monotonic()
        if now - self._last_draw >= self.min_interval_s or p.status != "running":
            self._handle.update({"text/plain": format_progress(p)}, raw=True)
            self._last_draw = now

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()


def _notebook_display() -> Any:
    """An IPython display handle when this runs in a Jupyter kernel; None elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:  # a terminal IPython redraws with \r instead
        return None
    return display({"text/plain": "waiting for the first trial …"}, raw=True, display_id=True)
