"""`nasapp check`: validate, build the extremes, a short trial, a test stage, and the job's estimate."""

from __future__ import annotations

import json

import pytest
from helpers import NO_TORCH, nasapp_cli, toy_job

from nasapp.engine.jobs.check import estimate


def test_the_estimate_counts_worker_start_up_once_and_trials_in_waves():
    """Two slots; each worker's first trial took 4 s more (starting the worker), the others 1 s: the stage of 5
    trials took 7 s = 4 s start-up + 3 waves of 1 s, so 20 trials take 4 + 10 x 1 s."""
    stage = [("cpu0", 5.0), ("cpu1", 5.0), ("cpu0", 1.0), ("cpu1", 1.0), ("cpu0", 1.0)]
    found = estimate(stage, stage_wall_s=7.0, slots=2, max_trials=20)
    assert found["mean_trial_s"] == 1.0 and found["startup_s"] == 4.0 and found["wall_s"] == 14.0
    assert found["device_hours"] == pytest.approx(20 / 3600, abs=1e-3)


@pytest.mark.slow
def test_check_runs_a_short_trial_and_a_test_stage_and_estimates_the_job(tmp_path):
    job = toy_job(tmp_path, max_trials=40, parallel=2)
    result = nasapp_cli("check", str(job), "--trials", "4", "--json", check=True, env=NO_TORCH)
    summary = json.loads(result.stdout)
    assert summary["valid"] and summary["extremes"] is None  # a custom space: its trainer builds the models
    assert summary["short_trial"]["status"] == "finished" and len(summary["short_trial"]["trials"]) == 1
    stage = summary["test_stage"]
    assert stage["status"] == "finished" and len(stage["trials"]) == 4 and stage["failure_rate"] == 0
    assert summary["estimate"]["max_trials"] == 40 and summary["estimate"]["slots"] == 2
    assert summary["estimate"]["wall_s"] > 0
    assert not (tmp_path / "nasapp.db").exists()  # nothing in any store of the user's
    text = nasapp_cli("check", str(job), "--trials", "2", check=True, env=NO_TORCH).stdout
    assert "job file: valid" in text and "estimate for 40 trials on 2 slot(s): wall time" in text


def test_a_bad_job_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[space]\nprebuilt = "nope"\n[data]\nkind = "digits"\n')
    result = nasapp_cli("check", str(bad), env=NO_TORCH)
    assert result.returncode == 2 and "unknown space 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_a_command_trainer_pays_its_start_up_in_every_trial():
    stage = [("cpu0", 5.0), ("cpu1", 5.0), ("cpu0", 5.0), ("cpu1", 5.0)]
    assert estimate(stage, 10.5, 2, 20, warm_workers=False)["wall_s"] == 50.5  # 0.5 s start-up + 10 waves x 5 s
