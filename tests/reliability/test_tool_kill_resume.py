"""kill -9 of `nasapp proxy variance` and `nasapp stage2` in the middle of their run, then `--resume`: the
trials that finished are not trained again and the run ends as it would have. (`proxy select` and `proxy
search` have theirs in tests/test_proxy_select.py and tests/test_proxy_search.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from helpers import NO_TORCH, nasapp_cli, start_nasapp, stop_process, toy_job, wait_for

pytestmark = pytest.mark.slow


def _trials(db: Path, job: int) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT number, status, attempts FROM trials WHERE job_id = ? ORDER BY number",
                            (job,)).fetchall()
    except sqlite3.OperationalError:  # the store is being made
        return []
    finally:
        conn.close()


def _kill_when(args: tuple[str, ...], done: callable, what: str, log: Path) -> None:
    proc = start_nasapp(*args, log=log, env=NO_TORCH)
    try:
        wait_for(done, what, proc=proc, log=log)
    finally:
        stop_process(proc)  # SIGKILL of its whole process group: the tool and its workers


def test_proxy_variance_after_kill_9(tmp_path):
    db, gate = tmp_path / "s.db", tmp_path / "gate"
    job = toy_job(tmp_path, trainer="gated", parallel=2, options=f'gate = "{gate}", free = 2')
    _kill_when(("proxy", "variance", str(job), "--copies", "4", "--db", str(db)),
               lambda: sum(t[1] == "succeeded" for t in _trials(db, 1)) == 2, "two copies", tmp_path / "log")
    gate.touch()
    result = nasapp_cli("proxy", "variance", "--resume", "1", "--db", str(db), "--json", env=NO_TORCH, check=True)
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 4 and summary["cv"] is not None
    rows = _trials(db, 1)
    assert [r[1] for r in rows] == ["succeeded"] * 4 and [r[2] for r in rows[:2]] == [1, 1]


def test_stage2_after_kill_9(tmp_path):
    db, gate = tmp_path / "s.db", tmp_path / "gate"
    job = toy_job(tmp_path, trainer="gated", max_trials=8, parallel=1,
                  options=f'gate = "{gate}", free = 1, gate_steps = 7')  # holds stage 2's jobs (7 steps) only
    nasapp_cli("run", str(job), "--db", str(db), env=NO_TORCH, check=True)
    _kill_when(("stage2", "1", "--top", "3", "--steps", "7", "--db", str(db)),
               lambda: any(t[1] == "succeeded" for t in _trials(db, 2)), "a stage-2 trial", tmp_path / "log")
    gate.touch()
    result = nasapp_cli("stage2", "--resume", "2", "--db", str(db), "--json", env=NO_TORCH, check=True)
    summary = json.loads(result.stdout)
    assert [m["status"] for m in summary["models"]] == ["succeeded"] * 3
    assert summary["kendall_tau"] == pytest.approx(1.0)
    assert _trials(db, 2)[0][2] == 1  # the model retrained before the kill was not retrained
