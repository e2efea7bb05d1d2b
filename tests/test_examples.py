"""Every example job validates; the custom-space and command-trainer examples run end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import apply_overrides, parse_job, read_job_file
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
JOB_FILES = sorted(EXAMPLES.rglob("*.toml"))


def small(path: Path, steps: int = 30, trials: int = 3):
    raw = apply_overrides(read_job_file(path), max_trials=trials, parallel=2)
    raw["trainer"] = {**raw.get("trainer", {}), "steps": steps, "eval_every": 10}
    return parse_job(raw, source=str(path), base=path.parent)


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_job_files_validate(path):
    spec = small(path)
    assert spec.name


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["custom_space", "command_trainer"])
def test_custom_examples_run_end_to_end(tmp_path, folder):
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, small(EXAMPLES / folder / "job.toml"))
    assert Runner(store, job_id).run() == "finished"
    trials = store.trials(job_id)
    assert len(trials) == 3 and all(t.status == "succeeded" for t in trials), trials
    assert all(0.0 <= t.reward <= 1.0 for t in trials)
    assert all(store.metrics(t.id) for t in trials)  # intermediate reports arrived
    if folder == "custom_space":  # its trainer saves the model with class names and has build_model
        from nasapp.engine.results.export import export_trials

        (result,) = export_trials(store, store.job(job_id), [0], tmp_path / "out")
        assert result.check_kind == "onnx-vs-pytorch" and result.check_passed, result.check_text
