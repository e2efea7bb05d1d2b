"""The live progress line `nasapp run` and `nasapp resume` print while a job runs; it lives in
engine/execution/progress.py (with its text and the ETA rule) so that `JobHandle.wait()` shows the same line."""

from __future__ import annotations

from nasapp.engine.execution.progress import ProgressLine, eta_seconds, eta_text, format_duration, format_progress

__all__ = ["ProgressLine", "eta_seconds", "eta_text", "format_duration", "format_progress"]
