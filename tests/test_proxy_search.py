"""`nasapp proxy search`: candidate proxies trained in chunks that continue from one another, judged by the
Kendall correlation with a selection run's full-training scores at every evaluation step; the cheapest that
meets the target is picked and its job-file lines printed; kill -9 and `--resume`; mistakes in one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from helpers import NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

from nasapp.engine.results.proxy_search import candidate_grid, chunk_ends, first_met


def test_the_grid_and_the_chunks():
    grid = candidate_grid([100, 200], [0.5, 1.0], [1.0])
    assert [c["name"] for c in grid] == ["steps=100 data=0.5 scale=1", "steps=100 data=1 scale=1",
                                         "steps=200 data=0.5 scale=1", "steps=200 data=1 scale=1"]
    assert chunk_ends(100, 4) == [25, 50, 75, 100] and chunk_ends(3, 4) == [1, 2, 3]
    series = [{"step": 10, "kendall_tau": 0.9, "p_value": 0.2}, {"step": 20, "kendall_tau": 0.7, "p_value": 0.01}]
    assert first_met(series, 0.65, 0.05)["step"] == 20  # a high tau that is not significant does not count


def _job(folder: Path, **options: object) -> Path:
    more = ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items())
    return toy_job(folder, trainer="cycles", parallel=2, options=more)


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """A store with a finished `proxy select` run (run 1): 6 toy models trained to 300 steps."""
    folder = tmp_path_factory.mktemp("psearch")
    nasapp_cli("proxy", "select", str(_job(folder)), "--begin", "8", "--end", "6", "--drop", "1", "--full-steps",
               "300", "--db", str(folder / "s.db"), check=True, env=NO_TORCH)
    return folder


def _search(folder: Path, db: Path, *args: str, check: bool = True, env: dict[str, str] = NO_TORCH):
    result = nasapp_cli("proxy", "search", *args, "--db", str(db), "--json", check=check, env=env)
    return json.loads(result.stdout) if check else result


@pytest.mark.slow
def test_candidates_stop_when_they_rank_like_full_training_and_the_cheapest_is_picked(selected, tmp_path):
    db = tmp_path / "s.db"
    (tmp_path / "s.db").write_bytes((selected / "s.db").read_bytes())
    (tmp_path / "runs").symlink_to(selected / "runs")
    s = _search(tmp_path, db, str(_job(tmp_path)), "--models", "1", "--steps", "40,400", "--checks", "4")
    assert s["status"] == "finished" and s["models"] == 6 and len(s["candidates"]) == 2
    short, long = s["candidates"]
    # the toy's score tends to the full-training ranking as the share of the schedule trained grows
    assert [p["step"] for p in short["correlation"]] == [10, 20, 30, 40][:len(short["correlation"])]
    assert long["stopped"] == "met" and long["kendall_tau"] >= 0.65 and long["p_value"] <= 0.05
    assert long["final_steps"] < 400  # it stopped at the first chunk that met the target
    met = [c for c in s["candidates"] if c["stopped"] == "met"]
    assert s["best"] == min(met, key=lambda c: c["median_train_time_s"])["name"]

    text = nasapp_cli("proxy", "search", "--resume", str(s["run"]), "--db", str(db), check=True, env=NO_TORCH).stdout
    best = next(c for c in s["candidates"] if c["name"] == s["best"])
    assert f"steps = {best['final_steps']}" in text and f"schedule_steps = {best['steps']}" in text
    assert "Kendall tau over steps" in text


def _chunks(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT j.name, t.status, t.attempts FROM trials t JOIN jobs j ON j.id = t.job_id"
                            " WHERE j.name LIKE '%psearch%' ORDER BY j.id, t.number").fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_9_in_a_chunk_then_resume_trains_nothing_again(selected, tmp_path):
    db, gate = tmp_path / "s.db", tmp_path / "gate"
    db.write_bytes((selected / "s.db").read_bytes())
    (tmp_path / "runs").symlink_to(selected / "runs")
    job = _job(tmp_path, gate=str(gate), gate_steps=80, free=1)  # chunk 2 (steps 40 to 80) waits at the gate
    proc = start_nasapp("proxy", "search", str(job), "--models", "1", "--steps", "80", "--checks", "2",
                        "--target", "1.0", "--db", str(db), log=tmp_path / "log", env=NO_TORCH)
    try:
        wait_for(lambda: any(name.endswith("-k2") and status == "succeeded" for name, status, _ in _chunks(db)),
                 "a trial of chunk 2 to succeed", proc=proc, log=tmp_path / "log")
    finally:
        stop_process(proc)
    gate.touch()
    s = _search(tmp_path, db, "--resume", "2")  # run 1 is the selection
    assert s["status"] == "finished" and s["candidates"][0]["stopped"] == "met"  # at step 80: the same ranking
    rows = _chunks(db)
    assert [r[2] for r in rows if r[0].endswith("-k1")] == [1] * 6  # chunk 1: each model trained once
    assert all(status == "succeeded" for _, status, _ in rows)


@pytest.mark.slow
def test_the_grid_comes_from_the_job_file_unless_the_command_line_gives_it(selected, tmp_path):
    db = tmp_path / "s.db"
    db.write_bytes((selected / "s.db").read_bytes())
    (tmp_path / "runs").symlink_to(selected / "runs")
    job = _job(tmp_path)
    job.write_text(job.read_text() + "\n[proxy_search]\nsteps = [20, 30]\nchecks = 1\ntarget = 0.9\n")
    s = _search(tmp_path, db, str(job), "--models", "1", "--steps", "30")
    assert [c["steps"] for c in s["candidates"]] == [30] and s["target_correlation"] == 0.9
    assert [len(c["jobs"]) for c in s["candidates"]] == [1]  # one check: one chunk
    s = _search(tmp_path, db, str(job), "--models", "1", "--checks", "2")
    assert [c["steps"] for c in s["candidates"]] == [20, 30] and [len(c["jobs"]) for c in s["candidates"]] == [2, 2]


@pytest.mark.slow
def test_real_training_select_then_search_end_to_end(tmp_path):
    """The prebuilt trainer on digits: select 4 models (full training 40 steps), then one candidate of 20 steps
    in 2 chunks, the second continuing from the first's checkpoints."""
    root = Path(__file__).resolve().parents[1]
    job = tmp_path / "digits.toml"
    text = (root / "examples" / "mnasnet-digits.toml").read_text()
    job.write_text(text.replace('parallel = "auto"', "parallel = 2").replace('devices = "auto"', 'devices = "cpu"')
                   .replace("batch_size = 64", "batch_size = 32\neval_every = 10"))
    db = tmp_path / "s.db"
    nasapp_cli("proxy", "select", str(job), "--begin", "4", "--end", "3", "--drop", "1", "--full-steps", "40",
               "--db", str(db), check=True)
    s = _search(tmp_path, db, str(job), "--models", "1", "--steps", "20", "--checks", "2", "--target", "0.1",
                "--max-p", "1", env={})
    (candidate,) = s["candidates"]
    assert candidate["stopped"] in ("met", "steps done") and s["models"] == 3
    assert [p["step"] for p in candidate["correlation"]][:1] == [10]
    assert candidate["median_train_time_s"] > 0 and candidate["cost_share"] > 0  # 10-step chunks: setup dominates
    conn = sqlite3.connect(db)
    steps = conn.execute("SELECT json_extract(metrics, '$.continued_from_step') FROM trials t JOIN jobs j ON"
                         " j.id = t.job_id WHERE j.name LIKE '%psearch%-k2'").fetchall()
    assert steps in ([], [(10,)] * 3)  # chunk 2, when it ran, continued from chunk 1


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    ([], "give the job file and --models"),
    (["JOB", "--models", "7"], "no proxy select run '7'"),
    (["JOB", "--models", "1", "--steps", "a,b"], "--steps 'a,b'"),
    (["JOB", "--models", "1", "--data-fraction", "2"], "--data-fraction 2.0"),
    (["JOB", "--models", "1", "--target", "0"], "--target 0"),
    (["JOB", "--models", "1", "--checks", "0"], "--checks 0"),
    (["--resume", "5"], "no proxy search run '5'"),
])
def test_mistakes_are_one_line(selected, args, message):
    job = str(_job(selected))
    result = nasapp_cli("proxy", "search", *[job if a == "JOB" else a for a in args], "--db",
                        str(selected / "s.db"), env=NO_TORCH)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
