"""`nasapp proxy select`: rounds to growing fractions of full training that continue from the round before,
the models dropped for adding least to the spread, the abort after a first round with too many failures,
kill -9 and `--resume`, real training, and mistakes in one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from helpers import NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.errors import NasappError
from nasapp.engine.results.selection import least_spread, round_plan, survivors

ROOT = Path(__file__).resolve().parents[1]


def test_rounds_train_to_growing_fractions_of_full_training():
    assert round_plan(30, 10, 5, 3000) == [100, 120, 150, 200, 3000]
    assert round_plan(8, 4, 3, 600) == [20, 24, 600]  # the last round may drop fewer
    with pytest.raises(NasappError, match="raise --full-steps"):
        round_plan(30, 10, 5, 40)
    with pytest.raises(NasappError, match="raise --drop"):
        round_plan(40, 2, 2, 3000)


def test_the_models_dropped_are_those_in_the_densest_places():
    points = {"low": (0.10,), "a": (0.50,), "b": (0.51,), "c": (0.52,), "high": (0.90,)}
    dropped = least_spread(points, 2)
    # b sits between a and c; then a and c are as close, and c's second-nearest (high) is the closer one
    assert dropped == ["b", "c"]
    # two objectives, each scaled to its range: q, between p and r in score but far in latency, is kept;
    # p and r are each other's nearest, and r's second-nearest (q) is the closer one
    points = {"p": (0.50, 1.0), "q": (0.51, 9.0), "r": (0.52, 1.1), "s": (0.90, 5.0)}
    assert least_spread(points, 1) == ["r"]


def test_survivors_never_fall_below_end_and_drop_failed_models():
    models = {str(i): {"status": "succeeded", "score": i / 10, "latency_ms": None} for i in range(6)}
    models["5"]["status"], models["5"]["score"] = "failed", None
    kept, dropped = survivors(models, end=4, drop=3)
    assert len(kept) == 4 and len(dropped) == 1 and "5" not in kept


def _cycles_job(folder: Path, **options: object) -> Path:
    more = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    return toy_job(folder, trainer="cycles", parallel=2, options=more)


def _select(db: Path, *args: str, check: bool = True, env: dict[str, str] = NO_TORCH):
    """`nasapp proxy select ARGS --json` (toy trainers need no torch: its workers start faster without)."""
    result = nasapp_cli("proxy", "select", *args, "--db", str(db), "--json", check=check, env=env)
    return json.loads(result.stdout) if check else result


def _trials(db: Path, job: int) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT number, status, json_extract(metrics, '$.started_at_step'), attempts"
                            " FROM trials WHERE job_id = ? ORDER BY number", (job,)).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_a_run_drops_models_round_by_round_and_trains_the_rest_fully(tmp_path):
    db = tmp_path / "s.db"
    s = _select(db, str(_cycles_job(tmp_path)), "--begin", "8", "--end", "4", "--drop", "2", "--full-steps", "300")
    assert s["status"] == "finished" and s["steps"] == [10, 12, 300]
    assert [(r["trained"], len(r["dropped"])) for r in s["rounds"]] == [(8, 2), (6, 2), (4, 0)]
    assert [t[2] for t in _trials(db, s["rounds"][1]["job"])] == [10.0] * 6  # continued from round 1
    assert [t[2] for t in _trials(db, s["rounds"][2]["job"])] == [12.0] * 4
    selected = [m for m in s["models"] if m["model"] in s["selected"]]
    assert len(selected) == 4 and all(m["full_score"] == m["scores"]["300"] for m in selected)
    assert sum(m["status"].startswith("dropped") for m in s["models"]) == 4

    again = _select(db, "--resume", str(s["run"]))
    assert again == s and len(_trials(db, s["rounds"][0]["job"])) == 8  # nothing trained again


@pytest.mark.slow
def test_a_first_round_with_too_many_failures_stops_the_run_saying_why(tmp_path):
    job = toy_job(tmp_path, trainer="always_fails", parallel=2)
    result = _select(tmp_path / "s.db", str(job), "--begin", "5", "--end", "2", "--drop", "3", "--full-steps",
                     "90", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "5 of 5 sampled models failed in the first round" in result.stderr and "error (5)" in result.stderr
    assert json.loads(result.stdout)["status"] == "aborted"


def _round_2_trained(db: Path) -> bool:
    try:
        return db.exists() and any(t[1] == "succeeded" for t in _trials(db, 2))
    except sqlite3.OperationalError:  # the store is being made
        return False


@pytest.mark.slow
def test_kill_9_in_a_round_then_resume_trains_nothing_again(tmp_path):
    db, gate = tmp_path / "s.db", tmp_path / "gate"
    job = _cycles_job(tmp_path, gate=str(gate), gate_steps=12, free=1)
    args = ("proxy", "select", str(job), "--begin", "8", "--end", "4", "--drop", "2", "--full-steps", "300",
            "--db", str(db))
    proc = start_nasapp(*args, log=tmp_path / "log", env=NO_TORCH)
    try:
        # round 2 (job 2, 12 steps): its first trial trains, the others wait at the gate
        wait_for(lambda: _round_2_trained(db), "a trial of round 2 to succeed", proc=proc, log=tmp_path / "log")
    finally:
        stop_process(proc)
    gate.touch()
    s = _select(db, "--resume", "1")
    assert s["status"] == "finished" and [r["job"] for r in s["rounds"]] == [1, 2, 3]
    assert [t[3] for t in _trials(db, 1)] == [1] * 8  # round 1: each model trained once
    assert all(t[1] == "succeeded" and t[2] == 10.0 for t in _trials(db, 2))
    assert len(s["selected"]) == 4


@pytest.mark.slow
def test_real_training_continues_from_checkpoints(tmp_path):
    job = tmp_path / "digits.toml"
    text = (ROOT / "examples" / "mnasnet-digits.toml").read_text()
    job.write_text(text.replace('parallel = "auto"', "parallel = 2").replace('devices = "auto"', 'devices = "cpu"'))
    db = tmp_path / "s.db"
    s = _select(db, str(job), "--begin", "3", "--end", "2", "--drop", "1", "--full-steps", "60", env={})
    assert s["status"] == "finished" and s["steps"] == [2, 60]
    conn = sqlite3.connect(db)
    resumed = conn.execute("SELECT json_extract(metrics, '$.continued_from_step'), json_extract(metrics,"
                           " '$.steps') FROM trials WHERE job_id = ?", (s["rounds"][1]["job"],)).fetchall()
    assert resumed == [(2, 60)] * 2
    assert all(0 < m["full_score"] <= 1 for m in s["models"] if m["model"] in s["selected"])


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    ([], "give the job file"),
    (["--resume", "9"], "no proxy select run '9'"),
    (["JOB", "--begin", "4", "--end", "4"], "--begin 4 must be more than --end 4"),
    (["JOB", "--end", "1"], "--end 1: give 2 or more"),
    (["JOB", "--drop", "0"], "--drop 0"),
])
def test_mistakes_are_one_line(tmp_path, args, message):
    job = str(toy_job(tmp_path))
    result = nasapp_cli("proxy", "select", *[job if a == "JOB" else a for a in args], "--db",
                        str(tmp_path / "s.db"), env=NO_TORCH)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
