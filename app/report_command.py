"""`nasapp report JOB -o report.html`: the job's self-contained HTML report (engine/results/job_report.py)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from nasapp.app.formatting import plain
from nasapp.engine.errors import NasappError
from nasapp.store import Store
from nasapp.store.records import Job


def report_command(store: Store, job: Job, target: Path, against: Job | None, sample: int, out: Console) -> None:
    _check_writable(target)  # before the analysis: a bad path fails at once
    from nasapp.engine.results.job_report import html_report

    text = html_report(store, job, against, sample).encode("utf-8")
    try:
        target.write_bytes(text)
    except OSError as error:
        raise NasappError(f"cannot write {target}: {error.strerror or error}") from None
    out.print(plain(f"wrote {target} ({_size(len(text))}): job {job.id} {job.name}", False))


def _check_writable(target: Path) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise NasappError(f"cannot write {target}: it is a folder; give a file name such as {target / 'report.html'}")
    if not folder.is_dir():
        raise NasappError(f"cannot write {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise NasappError(f"cannot write {target}: permission denied")


def _size(count: int) -> str:
    return f"{count / 1024:.1f} KB" if count < 1024 * 1024 else f"{count / 1024 / 1024:.2f} MB"
