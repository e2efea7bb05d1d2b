"""`nasapp proxy variance`: copies of one model, a model that runs out of memory replaced by another, the
figures in JSON, a resumed run that trains nothing again, and mistakes in one line."""

from __future__ import annotations

import json
import statistics

import pytest
from helpers import NO_TORCH, nasapp_cli, write_job

import nasapp as nas
from nasapp.engine.errors import TrialFailed
from nasapp.engine.strategies import TrialOutcome, make_strategy
from nasapp.store import Store

SPACE = nas.space({"a": nas.choice([0, 1, 2, 3, 4, 5, 6, 7]), "b": nas.choice([0, 1, 2, 3])})
SEED = 4


def train(arch, ctx):
    """A model that "runs out of memory" when it is the one named in the options; else a score that depends on
    the trial's seed (so copies differ) and a curve that rises to it."""
    if arch == ctx.proxy["options"]["oom_arch"]:
        raise TrialFailed("oom", "out of memory (simulated)")
    final = 0.9 + 0.01 * (ctx.seed % 5)
    for step in (1, 2, 3):
        ctx.report(step, accuracy=final * step / 3)
    return {"accuracy": final}


def test_copies_repeats_its_model_and_resamples_after_an_oom():
    strategy = make_strategy({"name": "copies"}, SPACE, seed=SEED)
    first = strategy.ask(1)[0]
    assert strategy.ask(3) == [first] * 3
    strategy.tell(TrialOutcome(0, first, "failed", reason="error"))  # not a reason to change model
    assert strategy.ask(1)[0] == first
    strategy.tell(TrialOutcome(1, first, "failed", reason="oom"))
    second = strategy.ask(1)[0]
    assert second != first
    strategy.tell(TrialOutcome(2, first, "failed", reason="oom"))  # a late copy of the old model: ignored
    assert strategy.ask(1)[0] == second


@pytest.mark.slow
def test_a_run_replaces_a_model_that_does_not_train_and_reports_the_spread(tmp_path):
    oom_arch = make_strategy({"name": "copies"}, SPACE, seed=SEED).current
    job = write_job(tmp_path, f"""
        name = "toy"
        seed = {SEED}
        [space]
        ref = "{__file__}:SPACE"
        [trainer]
        ref = "{__file__}:train"
        options = {{ oom_arch = {json.dumps(oom_arch).replace(":", " =").replace('"', "")} }}
        [search]
        max_trials = 100
        parallel = 1
        devices = "cpu"
        trial_timeout_s = 30
    """)
    db = tmp_path / "store.db"
    result = nasapp_cli("proxy", "variance", str(job), "--copies", "3", "--db", str(db), "--json", check=True,
                        env=NO_TORCH)
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 3 and summary["resampled"] == 1 and summary["arch"] != oom_arch
    trials = Store(db).trials(summary["job"])
    assert [t.status for t in trials] == ["failed", "succeeded", "succeeded", "succeeded"]
    assert trials[0].reason == "oom" and len({t.fingerprint for t in trials[1:]}) == 1
    scores = [t.metrics["accuracy"] for t in trials[1:]]
    assert summary["scores"] == scores
    assert summary["cv"] == pytest.approx(statistics.stdev(scores) / statistics.fmean(scores))
    assert summary["curve_noise"] == 0  # the curves only rise
    assert (summary["cv"] > 0.01) == bool(summary["advice"])

    again = nasapp_cli("proxy", "variance", "--resume", str(summary["job"]), "--db", str(db), "--json",
                       check=True, env=NO_TORCH)
    assert json.loads(again.stdout)["scores"] == scores and len(Store(db).trials(summary["job"])) == 4


@pytest.mark.parametrize("args, message", [
    (["--copies", "1"], "--copies 1: give 2 or more"),
    (["--resume", "42"], "no run '42'"),
    ([], "give the job file"),
])
def test_mistakes_are_one_line(tmp_path, args, message):
    result = nasapp_cli("proxy", "variance", *args, "--db", str(tmp_path / "s.db"), env=NO_TORCH)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_advice_names_only_what_the_job_has_not_tried():
    from nasapp.engine.results.variance import advice

    noisy = {"succeeded": 5, "cv": 0.03, "max_cv": 0.01, "curve_noise": 0.0, "max_curve_noise": 0.01,
             "metric": "accuracy"}
    (tip,) = advice(noisy, {"steps": 100, "schedule_steps": 3000, "ema": 0.0, "data_fraction": 0.5})
    assert "unset trainer.schedule_steps" in tip and "trainer.ema" in tip and "data_fraction, now 0.5" in tip
    (tip,) = advice(noisy, {"steps": 100, "ema": 0.99, "data_fraction": 1.0})
    assert "schedule_steps" not in tip and "ema" not in tip and "more steps (trainer.steps, now 100)" in tip
    assert advice({**noisy, "cv": 0.005}, {}) == []
    assert "fewer than 2 copies" in advice({**noisy, "succeeded": 1}, {})[0]
