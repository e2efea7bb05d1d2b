"""Starting a new job: the one path `nasapp run` and `nasapp.run()` share, from a job file (or its tables, or
the built-in demo) to a validated spec, then to the job's row in a store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import JobSpec, apply_overrides, load_job, parse_job
from nasapp.engine.jobs.validation import ValidatedJob, create_job, validate_job
from nasapp.store import Store

JobSource = str | os.PathLike[str] | Mapping[str, Any] | None


def run_spec(job: JobSource = None, *, max_trials: int | None = None, parallel: int | None = None,
             seed: int | None = None) -> JobSpec:
    """The spec of a job to run: a job file, its tables as a dict (paths relative to the working directory),
    or None for the built-in demo; the overrides replace the file's values."""
    overrides = {"max_trials": max_trials, "parallel": parallel, "seed": seed}
    if job is None:
        from nasapp.engine.jobs.demo import demo_job

        return parse_job(apply_overrides(demo_job(), **overrides), source="built-in demo job")
    if isinstance(job, Mapping):
        return parse_job(apply_overrides(dict(job), **overrides), source="job")
    return load_job(job, **overrides)


def check_executor(spec: JobSpec) -> None:
    """Build the job's executor without starting it, as the runner will: a [search] it cannot honour (no GPU
    for devices = "cuda") raises its NasappError here, before anything is written."""
    from nasapp.engine.execution.executors import EXECUTORS

    with tempfile.TemporaryDirectory(prefix="nasapp-check-") as folder:
        EXECUTORS.get(spec.search.executor).make(spec, Path(folder), {}).close()


def ready_to_run(spec: JobSpec) -> ValidatedJob:
    """Every check before the job row exists: the job's own (validate_job) and its executor's."""
    checked = validate_job(spec)
    check_executor(spec)  # e.g. devices = "cuda" without a GPU
    return checked


def add_job(store: Store, checked: ValidatedJob) -> int:
    """Write the job's row; returns its id. A read-only store is refused with what to do instead."""
    if store.readonly:
        raise NasappError(f"the store {store.path} is read-only: running a job adds it to the store; make it"
                          " writable or give another store (--db, or db= in Python)")
    return create_job(store, checked)
