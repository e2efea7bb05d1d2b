"""`nasapp stage2`: a search's best distinct models retrained as a child job with the stage-2 settings, the
rank correlation between the two rewards, a resumed run that trains nothing again, and mistakes in one line."""

from __future__ import annotations

import json

import pytest
from helpers import NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.store import Store, StoreError


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A store holding a finished toy search (job 1) of 8 trials."""
    folder = tmp_path_factory.mktemp("stage2")
    nasapp_cli("run", str(toy_job(folder, max_trials=8, parallel=1)), "--db", str(folder / "s.db"), check=True,
               env=NO_TORCH)
    return folder / "s.db"


@pytest.mark.slow
def test_the_best_models_are_retrained_and_their_ranks_compared(searched):
    result = nasapp_cli("stage2", "1", "--top", "3", "--steps", "50", "--db", str(searched), "--json", check=True,
                        env=NO_TORCH)
    summary = json.loads(result.stdout)
    store = Store(searched)
    best = []
    for trial in store.best_trials(1, 8):
        if trial.fingerprint not in {t.fingerprint for t in best}:
            best.append(trial)
    assert [m["search_trial"] for m in summary["models"]] == [t.number for t in best[:3]]
    child = store.job(summary["job"])
    assert child.name == "toy-stage2" and child.spec["trainer"]["steps"] == 50
    assert child.spec["strategy"]["source_job"] == 1 and child.spec["early_stopping"]["rule"] == "none"
    # the toy trainer's reward depends on the architecture alone: stage 2 agrees with the search exactly
    assert [m["stage2_reward"] for m in summary["models"]] == [m["search_reward"] for m in summary["models"]]
    assert summary["kendall_tau"] == pytest.approx(1.0)

    listed = nasapp_cli("ls", "--db", str(searched), check=True).stdout
    assert "toy-stage2 (stage 2 of job 1)" in listed
    shown = nasapp_cli("show", "1", "--db", str(searched), check=True).stdout
    assert f"stage 2: job {summary['job']} · 3/3 retrained · Kendall tau 1.00" in shown
    # (the toy trainer saves no model, so the export itself is refused after the hint)
    exported = nasapp_cli("export", "1", "--best", "1", "-o", str(searched.parent / "out"), "--db",
                          str(searched)).stdout
    assert f"has a stage 2 (job {summary['job']}): `nasapp export {summary['job']} --best K`" in exported
    shown = json.loads(nasapp_cli("show", "1", "--db", str(searched), "--json", check=True).stdout)
    assert shown["stage2_jobs"] == [summary["job"]]

    again = nasapp_cli("stage2", "--resume", str(summary["job"]), "--db", str(searched), "--json", check=True,
                       env=NO_TORCH)
    assert json.loads(again.stdout)["models"] == summary["models"] and len(store.trials(summary["job"])) == 3


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["7"], "no job '7'"),
    (["1", "--top", "0"], "--top 0"),
    (["1", "--data-fraction", "2"], "--data-fraction 2"),
    (["--resume", "1"], "not a stage-2 run"),
    ([], "give the search job"),
])
def test_mistakes_are_one_line(searched, args, message):
    result = nasapp_cli("stage2", *args, "--db", str(searched), env=NO_TORCH)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_the_new_job_screen_offers_searching_strategies_only():
    from nasapp.app.screens.new_job import _searching_strategies

    offered = _searching_strategies()
    assert "given" not in offered and "copies" not in offered and {"tpe", "evolution", "prescreen"} <= set(offered)


def _has_job(db) -> bool:
    try:
        return bool(Store(db, create=False).jobs())
    except StoreError:  # not there yet, or being made
        return False


@pytest.mark.slow
def test_every_k_retrains_new_top_models_beside_a_running_search(tmp_path):
    db = tmp_path / "s.db"
    search = start_nasapp("run", str(toy_job(tmp_path, max_trials=12, parallel=1, sleep=0.6)), "--db", str(db),
                          log=tmp_path / "search.log", env=NO_TORCH)
    try:
        wait_for(lambda: _has_job(db), "the search's job", proc=search, log=tmp_path / "search.log")
        result = nasapp_cli("stage2", "toy", "--top", "3", "--every", "4", "--db", str(db), "--json",
                            env=NO_TORCH, check=True)
        assert search.wait(timeout=120) == 0
    finally:
        stop_process(search)
    summary = json.loads(result.stdout)
    store = Store(db)
    assert store.job(1).status == "finished"
    final_top = []
    for trial in store.best_trials(1, 12):
        if trial.fingerprint not in {t.fingerprint for t in final_top}:
            final_top.append(trial)
    retrained = {m["search_trial"] for m in summary["models"] if m["status"] == "succeeded"}
    assert {t.number for t in final_top[:3]} <= retrained  # the final top 3 are all retrained
    assert "waiting for 4 finished trials" in result.stderr
    assert summary["kendall_tau"] is not None and len(store.trials(summary["job"])) == len(summary["models"])
