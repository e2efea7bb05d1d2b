"""The live progress line `nasapp run` and `nasapp resume` print while a job runs."""

from __future__ import annotations

import sys
import time

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


def eta_text(p: Progress) -> str:
    """Time left at this run's pace so far (its elapsed time per finished trial); "-" before the first one."""
    if p.status != "running":
        return "0:00" if p.done >= p.total else "-"
    done_here = p.done - p.done_at_start
    if done_here <= 0:
        return "-"
    return format_duration(p.elapsed_s / done_here * max(0, p.total - p.done))


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
