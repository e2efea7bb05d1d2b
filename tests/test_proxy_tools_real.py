"""`nasapp proxy variance` and `nasapp stage2` with the prebuilt trainer on digits: real training in real
processes, with settings small enough for CI (the tool logic is tested on toy trainers beside them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import nasapp_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mnasnet-digits.toml"
pytestmark = pytest.mark.slow


def _small_job(folder: Path, steps: int) -> Path:
    text = EXAMPLE.read_text().replace('parallel = "auto"', "parallel = 2").replace('devices = "auto"',
                                                                                     'devices = "cpu"')
    job = folder / "digits.toml"
    job.write_text(text.replace("steps = 150", f"steps = {steps}\neval_every = 10"))
    return job


def test_proxy_variance_trains_copies_of_one_model(tmp_path):
    result = nasapp_cli("proxy", "variance", str(_small_job(tmp_path, 60)), "--copies", "2", "--db",
                        str(tmp_path / "s.db"), "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["succeeded"] == 2 and summary["cv"] is not None and len(set(summary["scores"])) == 2
    assert summary["curve_noise"] is not None and max(summary["scores"]) > 0.2  # learnt past chance


def test_stage2_retrains_the_best_models_with_more_steps(tmp_path):
    db = tmp_path / "s.db"
    nasapp_cli("run", str(_small_job(tmp_path, 10)), "--max-trials", "3", "--db", str(db), check=True)
    summary = json.loads(nasapp_cli("stage2", "1", "--top", "2", "--steps", "30", "--db", str(db), "--json",
                                    check=True).stdout)
    assert [m["status"] for m in summary["models"]] == ["succeeded", "succeeded"]
    assert all(m["stage2_reward"] is not None and m["search_reward"] is not None for m in summary["models"])
