"""`nasapp check`: validate, build the extremes, a short trial, a test stage, and the job's estimate."""

from __future__ import annotations

import json

import pytest
from helpers import NO_TORCH, nasapp_cli, toy_job

from nasapp.engine.jobs.check import StageTrial as T
from nasapp.engine.jobs.check import estimate, outside_time


def test_the_job_s_first_trials_cost_the_stage_s_time_and_the_rest_run_in_waves():
    """Two slots; each worker's first trial took 4 s more (starting the worker), the others 1 s: the stage of 5
    trials took 7 s, and the other 15 trials of the job take 15 x 1 s on 2 slots."""
    stage = [T("cpu0", 5.0), T("cpu1", 5.0), T("cpu0", 1.0), T("cpu1", 1.0), T("cpu0", 1.0)]  # no reports
    found = estimate(stage, stage_wall_s=7.0, slots=2, max_trials=20)
    assert found["stage_mean_s"] == 1.0 and found["startup_s"] == 4.0 and found["wall_s"] == 14.5
    assert found["device_hours"] == pytest.approx((13 + 15) / 3600, abs=1e-3)


def test_every_trial_counts_less_the_start_up_its_reports_show():
    """The first trials spent 4 s more than the others beyond their steps at their steady pace (the workers'
    start-up); trial 1 trained the stage's costliest architecture. It counts, less the 4 s."""
    stage = [T("cpu0", 9.5, 4.5), T("cpu1", 28.5, 4.5), T("cpu0", 1.5, 0.5), T("cpu1", 1.5, 0.5), T("cpu0", 1.5, 0.5)]
    found = estimate(stage, stage_wall_s=33.0, slots=2, max_trials=20)
    assert found["startup_s"] == 4.0
    assert found["mean_trial_s"] == pytest.approx((5.5 + 24.5 + 1.5 * 3) / 5, abs=0.01)  # 6.9 s
    assert found["wall_s"] == pytest.approx(33.0 + 15 * 6.9 / 2, abs=0.1)


def test_the_time_outside_a_trial_s_steps_is_what_its_steady_pace_leaves():
    # a 20 s trial with reports at steps 50, 100, 150, 2 s apart: 0.04 s a step, 6 s for its 150 steps
    assert outside_time(20.0, [(50, 112.0), (100, 114.0), (150, 116.0)]) == pytest.approx(14.0)
    assert outside_time(20.0, [(50, 112.0)]) is None and outside_time(20.0, [(50, 112.0), (50, 113.0)]) is None


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
    stage = [T("cpu0", 5.0, 4.0), T("cpu1", 5.0, 4.0), T("cpu0", 5.0, 4.0), T("cpu1", 5.0, 4.0)]
    assert estimate(stage, 10.5, 2, 20, warm_workers=False)["wall_s"] == 50.5  # the stage's 10.5 s + 16 x 5 s / 2


def test_trials_a_strategy_steers_are_costed_as_the_stage_s_larger_half():
    """Evolution's first 4 trials are random; the other 16 move towards the better architectures, usually the
    larger ones: they are costed as the stage's trials of at least the median parameter count."""
    stage = [T("cpu0", 2.0, 0.0, 100), T("cpu1", 6.0, 0.0, 400), T("cpu0", 2.0, 0.0, 200), T("cpu1", 4.0, 0.0, 300)]
    random = estimate(stage, 8.0, 2, 20)
    steered = estimate(stage, 8.0, 2, 20, random_start=4)
    assert random["mean_trial_s"] == 3.5 and random["steered_trials"] == 0
    assert steered["steered_trial_s"] == 5.0 and steered["steered_trials"] == 16
    assert steered["mean_trial_s"] == pytest.approx((4 * 3.5 + 16 * 5.0) / 20)
    no_params = [T(t.slot, t.seconds, t.outside_s) for t in stage]  # a trainer that does not report params
    assert estimate(no_params, 8.0, 2, 20, random_start=4)["mean_trial_s"] == 3.5


def test_each_strategy_says_how_long_it_proposes_at_random():
    from nasapp.engine.strategies import STRATEGIES

    def start(name: str, **options: object) -> int | None:
        return STRATEGIES.get(name).options(name=name, **options).random_start

    assert start("random") is None and start("given") is None
    assert start("evolution", population=8, sample_size=3) == 8
    assert start("tpe") == 10 and start("predictor", initial=12) == 12 and start("local") == 10
    assert start("nsga2") == 20 and start("rl") == 0


def test_the_baseline_is_paid_once_and_is_not_a_sample_of_the_space():
    """Trial 0 is the job's baseline (MnasNet-B1, say): 20 s, run once; the space's trials take 2 s."""
    stage = [T("cpu0", 20.0, 0.0, 900, once=True), T("cpu1", 2.0, 0.0), T("cpu0", 2.0, 0.0), T("cpu1", 2.0, 0.0)]
    found = estimate(stage, 24.0, 2, 20)
    assert found["stage_mean_s"] == 2.0 and found["mean_trial_s"] == pytest.approx((20.0 + 19 * 2.0) / 20)


def test_a_trial_holds_its_slot_until_the_next_one_starts_there():
    """The runner frees a slot when the trainer returns; latency and waiting for the baseline come after. Slot
    a: trials 0 (0-10 s, ended at 14 s after its latency) and 2 (from 10 s, last report at 15 s, ended at 22 s):
    trial 2, the slot's last, held it to its last report plus the others' median 1 s after theirs (6 s)."""
    from nasapp.engine.jobs.check import slot_seconds

    spans = [("a", 0.0, 14.0, 9.0), ("b", 0.0, 6.0, 5.0), ("a", 10.0, 22.0, 15.0), ("b", 6.0, 30.0, None)]
    assert slot_seconds(spans) == [10.0, 6.0, 6.0, 24.0]
