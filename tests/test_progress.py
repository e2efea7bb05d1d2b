"""The live progress line of `nasapp run` and `nasapp resume`: its ETA."""

from __future__ import annotations

from nasapp.app.progress import eta_text, format_progress
from nasapp.engine.execution.runner import Progress


def progress(done: int, total: int, elapsed: float, status: str = "running", at_start: int = 0) -> Progress:
    return Progress(job_id=1, done=done, total=total, running=2, failed=0, best=None, elapsed_s=elapsed,
                    status=status, done_at_start=at_start)


def test_eta_is_the_time_left_at_this_runs_pace():
    assert eta_text(progress(0, 10, 5.0)) == "-"  # no finished trial yet: no pace
    assert eta_text(progress(2, 10, 30.0)) == "2:00"  # 15 s per trial, 8 to go
    assert eta_text(progress(12, 20, 30.0, at_start=10)) == "2:00"  # a resume: only its own 2 trials set the pace
    assert eta_text(progress(10, 10, 30.0, status="finished")) == "0:00"
    assert eta_text(progress(4, 10, 30.0, status="stopped")) == "-"
    assert format_progress(progress(2, 10, 30.0)).endswith("elapsed 0:30  eta 2:00")
