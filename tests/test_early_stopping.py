"""The early-stopping rules on their own: the median rule and ASHA's rungs, stopping decisions, min_trials, and
resume (a fresh rule that observed the finished trials' reports decides as the live one does)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import NO_TORCH, TOY, nasapp_cli, toy_job, write_job

from nasapp.engine.early_stopping import EARLY_STOPPING, make_rule
from nasapp.engine.early_stopping.asha import AshaOptions, AshaRule
from nasapp.engine.early_stopping.median import MedianOptions, MedianRule
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store
from nasapp.store.records import Trial


def asha(**options: int) -> AshaRule:
    return AshaRule(AshaOptions(**options))


def reach_rung_0(rule: AshaRule, scores: list[float], step: int = 10) -> list[bool]:
    """Each trial (numbered 0, 1, ...) reports once at ``step``; the rule's answer for each."""
    return [rule.should_stop(trial, step, score) for trial, score in enumerate(scores)]


# ---- median --------------------------------------------------------------------------------------------------

def test_median_stops_a_trial_under_the_median_of_the_others_running_averages():
    rule = MedianRule(MedianOptions(min_trials=2))
    for trial, scores in enumerate([[0.5, 0.7], [0.4, 0.6]]):
        for step, score in enumerate(scores, start=1):
            assert not rule.should_stop(trial, step, score)
    # the others' running averages at step 2: 0.6 and 0.5, median 0.55
    assert rule.should_stop(2, 1, 0.5) is False  # at step 1 the averages are 0.5 and 0.4: median 0.45
    assert rule.should_stop(2, 2, 0.52) is True  # best 0.52 < 0.55
    assert rule.should_stop(3, 2, 0.56) is False


def test_median_waits_for_warmup_steps_and_min_trials():
    rule = MedianRule(MedianOptions(warmup_steps=3, min_trials=2))
    rule.should_stop(0, 5, 0.9)
    assert not rule.should_stop(1, 5, 0.1)  # one other trial: fewer than min_trials
    assert not rule.should_stop(2, 2, 0.1)  # before warmup_steps
    assert rule.should_stop(2, 5, 0.1)


def test_median_decides_the_same_after_replaying_what_it_observed():
    reports = [(0, 1, 0.5), (0, 2, 0.8), (1, 1, 0.6), (1, 2, 0.7), (2, 1, 0.2)]
    live, replayed = MedianRule(MedianOptions(min_trials=2)), MedianRule(MedianOptions(min_trials=2))
    for trial, step, score in reports:
        live.should_stop(trial, step, score)
        replayed.observe(trial, step, score)
    for trial, step, score in [(3, 1, 0.55), (3, 2, 0.7), (4, 2, 0.9)]:
        assert live.should_stop(trial, step, score) == replayed.should_stop(trial, step, score)


# ---- asha: rungs -------------------------------------------------------------------------------------------------

def test_asha_rungs_sit_at_min_steps_times_eta_to_the_k():
    rule = asha(min_steps=10, reduction_factor=3)
    assert [rule.rung_step(k) for k in range(4)] == [10, 30, 90, 270]


def test_asha_records_a_trial_at_its_first_report_at_or_past_a_rung_with_its_best_score_so_far():
    rule = asha(min_steps=10, reduction_factor=3)
    rule.should_stop(0, 5, 0.7)
    assert rule.rungs == []  # step 5 is before the first rung
    rule.should_stop(0, 12, 0.6)  # no report at exactly 10: the first one past it counts, with the best so far
    assert rule.rungs == [{0: 0.7}]
    rule.should_stop(0, 25, 0.9)
    assert rule.rungs == [{0: 0.7}]  # rung 0 is recorded once; 25 is before rung 1 (30)
    rule.should_stop(0, 100, 0.8)  # one report past rungs 1 and 2: recorded at both
    assert rule.rungs == [{0: 0.7}, {0: 0.9}, {0: 0.9}]


def test_asha_max_rungs_bounds_the_rungs():
    rule = asha(min_steps=10, reduction_factor=2, max_rungs=2)
    rule.should_stop(0, 1000, 0.5)
    assert len(rule.rungs) == 2


# ---- asha: stopping decisions -----------------------------------------------------------------------------------

def test_asha_keeps_the_top_one_over_eta_of_the_scores_recorded_at_a_rung():
    rule = asha(min_steps=10, reduction_factor=3, min_trials=1)
    # up to 5 scores the top 1 goes on: trial 0 (alone), 2 (the best); at 6 and 7 the top 2: trial 5 (second
    # best), and trial 6, which ties the second best
    assert reach_rung_0(rule, [0.5, 0.4, 0.6, 0.58, 0.55, 0.59, 0.59]) == [False, True, False, True, True, False,
                                                                            False]


def test_asha_min_trials_holds_off_stopping_until_a_rung_has_that_many_scores():
    rule = asha(min_steps=10, reduction_factor=3, min_trials=4)
    assert reach_rung_0(rule, [0.9, 0.1, 0.2, 0.3, 0.4]) == [False, False, False, True, True]


def test_asha_compares_later_trials_with_everything_recorded_at_the_rung():
    rule = asha(min_steps=10, reduction_factor=2, min_trials=2)
    assert reach_rung_0(rule, [0.3, 0.5, 0.4, 0.45]) == [False, False, True, False]  # 4 scores: top 2 go on
    assert rule.rungs[0] == {0: 0.3, 1: 0.5, 2: 0.4, 3: 0.45}  # stopped trials stay in the rung's field


def test_asha_a_trial_stopped_at_a_rung_is_not_recorded_at_later_ones():
    rule = asha(min_steps=10, reduction_factor=3, min_trials=1)
    assert not rule.should_stop(0, 100, 0.9)  # passes rungs 0, 1, 2
    assert rule.should_stop(1, 100, 0.5)  # stopped at rung 0
    assert [sorted(rung) for rung in rule.rungs] == [[0, 1], [0], [0]]


def test_asha_a_trial_promoted_at_rung_0_is_judged_again_at_rung_1():
    rule = asha(min_steps=10, reduction_factor=2, min_trials=1)
    assert not rule.should_stop(0, 20, 0.9)  # rungs 0 and 1
    assert rule.should_stop(2, 10, 0.1) and rule.should_stop(3, 10, 0.2)
    assert not rule.should_stop(1, 10, 0.6)  # 4 scores at rung 0: the top 2 (0.9, 0.6) go on
    assert rule.should_stop(1, 20, 0.7)  # 2 scores at rung 1: the top 1 (trial 0's 0.9) goes on


def test_asha_decisions_are_deterministic_given_the_reports():
    reports = [(t % 7, 10 * (1 + t // 7), (t * 37 % 11) / 11) for t in range(28)]

    def answers() -> list[bool]:
        rule = asha(min_steps=10, reduction_factor=2, min_trials=2)
        return [rule.should_stop(trial, step, score) for trial, step, score in reports]

    assert answers() == answers()


def test_asha_decides_the_same_after_replaying_the_finished_trials_reports():
    finished = [(0, 10, 0.5), (0, 30, 0.7), (1, 10, 0.6), (1, 30, 0.65), (2, 10, 0.2), (3, 10, 0.55)]
    live, replayed = asha(min_steps=10, reduction_factor=3, min_trials=2), asha(min_steps=10, reduction_factor=3,
                                                                                 min_trials=2)
    for trial, step, score in finished:
        live.should_stop(trial, step, score)
    # the rungs do not depend on which trial's reports come first (each trial's own come in step order)
    for trial, step, score in sorted(finished, key=lambda report: -report[0]):
        replayed.observe(trial, step, score)
    assert replayed.rungs == live.rungs
    later = [(4, 10, 0.58), (4, 30, 0.7), (5, 10, 0.3), (6, 30, 0.9), (5, 30, 0.95)]
    assert [live.should_stop(*report) for report in later] == [replayed.should_stop(*report) for report in later]


def test_asha_finished_keeps_the_trial_in_its_rungs():
    rule = asha(min_steps=10, min_trials=1)
    rule.should_stop(0, 10, 0.9)
    rule.finished(0)
    assert rule.should_stop(1, 10, 0.5)  # trial 0's score still counts


# ---- asha: options --------------------------------------------------------------------------------------------

def _asha_job(tmp_path, table: str):
    return write_job(tmp_path, f'name = "j"\n[space]\nref = "{TOY}:space"\n[trainer]\nref = "{TOY}:train"\n'
                               f'[early_stopping]\nrule = "asha"\n{table}\n')


def test_asha_options_are_validated_with_the_key_that_is_wrong(tmp_path):
    bad = {
        "min_steps = 0": "early_stopping.min_steps: Input should be greater than or equal to 1",
        "reduction_factor = 1": "early_stopping.reduction_factor: Input should be greater than or equal to 2",
        "min_trials = 0": "early_stopping.min_trials: Input should be greater than or equal to 1",
        "max_rungs = 0": "early_stopping.max_rungs: Input should be greater than or equal to 1",
        "warmup_steps = 3": "early_stopping.warmup_steps: unknown key",
    }
    for table, message in bad.items():
        with pytest.raises(NasappError, match=message):
            load_job(_asha_job(tmp_path, table))
    spec = load_job(_asha_job(tmp_path, "min_steps = 20\nreduction_factor = 4"))
    assert spec.early_stopping == AshaOptions(min_steps=20, reduction_factor=4)
    assert isinstance(make_rule(spec.early_stopping), AshaRule)
    assert "asha" in EARLY_STOPPING.names()


# ---- asha in a real search, and every surface that shows its pruned trials ---------------------------------------

ASHA_TABLE = '[early_stopping]\nrule = "asha"\nmin_steps = 2\nreduction_factor = 2\nmin_trials = 2\n'


@pytest.fixture(scope="module")
def pruned_store(tmp_path_factory) -> Path:
    """A store holding one finished job (id 1) whose ASHA rule pruned some of its 12 trials."""
    folder = tmp_path_factory.mktemp("asha")
    job = toy_job(folder, trainer="long_curve", max_trials=12, parallel=1, extra=ASHA_TABLE)
    store = Store(folder / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert job_id == 1 and Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    return folder / "nasapp.db"


def _by_status(db: Path, status: str) -> list[Trial]:
    return Store(db).trials(1, status)


@pytest.mark.slow
def test_asha_prunes_trials_in_a_real_search(pruned_store):
    trials = Store(pruned_store).trials(1)
    pruned = [t for t in trials if t.status == "pruned"]
    assert len(trials) == 12 and pruned and any(t.status == "succeeded" for t in trials)
    for trial in pruned:
        step = trial.metrics["pruned_at_step"]
        assert trial.reason == "early_stopping" and step in (2, 4, 8)  # stopped at a rung, never between them
        assert "early_stopping.rule = 'asha'" in trial.message and trial.reward is None


@pytest.mark.slow
def test_show_ls_export_and_pareto_treat_pruned_trials_as_stopped_early(pruned_store, tmp_path):
    db = str(pruned_store)
    pruned, succeeded = _by_status(pruned_store, "pruned"), _by_status(pruned_store, "succeeded")
    shown = nasapp_cli("show", "1", "--db", db, check=True).stdout
    assert f"({len(succeeded)} succeeded, 0 failed, {len(pruned)} pruned)" in shown
    assert f"pruned: {len(pruned)} trial(s) stopped early by early_stopping.rule = 'asha' at step" in shown
    summary = json.loads(nasapp_cli("show", "1", "--json", "--db", db, check=True).stdout)
    steps = [t.metrics["pruned_at_step"] for t in pruned]
    assert summary["pruned"] == {"count": len(pruned), "rule": "asha", "min_step": min(steps), "max_step": max(steps)}
    assert {t["trial"] for t in summary["top"]} <= {t.number for t in succeeded}

    header, row = nasapp_cli("ls", "--db", db, check=True).stdout.splitlines()[:2]
    assert header.split()[:6] == ["id", "name", "status", "trials", "failed", "pruned"]
    assert row.split()[3:6] == ["12/12", "0", str(len(pruned))]

    refused = nasapp_cli("export", "1", "--trial", str(pruned[0].number), "-o", str(tmp_path), "--db", db)
    assert refused.returncode == 2
    assert f"was pruned at step {pruned[0].metrics['pruned_at_step']:g} by early stopping" in refused.stderr
    assert not list(tmp_path.iterdir())

    front = json.loads(nasapp_cli("pareto", "1", "--x", "accuracy", "--y", "reward", "--json", "--db", db,
                                  check=True).stdout)
    assert front["trials"] == len(succeeded)
    assert {p["trial"] for p in front["points"]} <= {t.number for t in succeeded}


@pytest.mark.slow
def test_the_dashboard_counts_pruned_trials_and_explains_them(pruned_store, tmp_path):
    pytest.importorskip("textual_plotext")
    from nasapp.app.screens.job import JobScreen, JobSummary
    from nasapp.app.screens.trial import TrialScreen
    from nasapp.app.tui import NasApp

    pruned = _by_status(pruned_store, "pruned")

    async def check() -> None:
        app = NasApp(pruned_store, refresh_s=0.2, export_root=tmp_path / "exports")
        async with app.run_test(size=(120, 30)) as pilot:
            app.open_job(1)
            await _until(pilot, lambda: isinstance(app.screen, JobScreen) and "pruned" in _text(app, JobSummary))
            assert f"{len(pruned)} pruned" in _text(app, JobSummary)
            app.open_trial(1, pruned[0].id)
            await _until(pilot, lambda: isinstance(app.screen, TrialScreen) and "pruned" in _text(app, "#failure"))
            screen = app.screen
            assert screen.has_class("-pruned")
            failure = str(screen.query_one("#failure").render())
            assert "pruned (early_stopping)" in failure and "stopped at step" in failure
            await pilot.press("e")
            await _until(pilot, lambda: any("was pruned at step" in n.message for n in app._notifications))
            assert not (tmp_path / "exports").exists()

    asyncio.run(check())


def _text(app: Any, selector: Any) -> str:
    """What the current screen's widget ``selector`` shows ("" before it is mounted)."""
    found = app.screen.query(selector)
    return str(found.first().render()) if found else ""


async def _until(pilot: Any, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.1)


@pytest.mark.slow
def test_a_trial_is_never_pruned_at_or_past_its_last_planned_step(tmp_path):
    """A rung at trainer.steps (or later) records the trial's score but stops nothing: it has trained already."""
    job = write_job(tmp_path, f"""
        name = "last-rung"
        seed = 1
        [space]
        ref = "{TOY}:space"
        [trainer]
        ref = "{TOY}:long_curve"
        steps = 4
        [strategy]
        name = "random"
        [search]
        max_trials = 8
        parallel = 1
        devices = "cpu"
        trial_timeout_s = 30
        [early_stopping]
        rule = "asha"
        min_steps = 2
        reduction_factor = 2
        min_trials = 2
    """)
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, load_job(job))
    assert Runner(store, job_id, worker_env=NO_TORCH).run() == "finished"
    pruned = [t.metrics["pruned_at_step"] for t in store.trials(job_id) if t.status == "pruned"]
    assert pruned and set(pruned) == {2}  # rung 0 prunes; rung 1 sits at step 4 = trainer.steps
