"""A real search with ONNX Runtime latency in its reward, and the latency gate."""

from __future__ import annotations

import pytest

import nasapp as nas
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.latency.gate import LatencyGate
from nasapp.engine.latency.predictor import LatencyPredictor
from nasapp.engine.rewards.reward import latency_factor
from nasapp.store import Store


@pytest.mark.slow
def test_search_with_a_latency_target_penalises_slow_models(tmp_path):
    raw = {
        "name": "mlp-latency", "seed": 0, "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"},
        "trainer": {"steps": 20, "eval_every": 10, "optimizer": "adamw", "lr": 0.003},
        "strategy": {"name": "random"}, "search": {"max_trials": 4, "parallel": 2, "devices": "cpu"},
        "reward": {"metric": "accuracy", "latency_target_ms": 0.02},
        "latency": {"device": "cpu-ort", "runs": 50},
    }
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, parse_job(raw))
    assert Runner(store, job_id).run() == "finished"
    trials = store.trials(job_id, "succeeded")
    assert len(trials) == 4
    for t in trials:
        m = t.metrics
        assert m["latency_ms"] > 0 and m["latency_p90_ms"] >= m["latency_ms"] * 0.5
        assert m["flops"] > 0 and m["params"] > 0 and m["onnx_bytes"] > 0
        assert t.reward == pytest.approx(m["accuracy"] * latency_factor(m["latency_ms"], 0.02))
        assert (store.trial_dir(job_id, t.number) / "model.onnx").is_file()
    # an equally accurate model over the target gets less reward than one under it
    over = {"accuracy": 0.9, "latency_ms": 0.04}
    under = {"accuracy": 0.9, "latency_ms": 0.01}
    assert 0.9 * latency_factor(over["latency_ms"], 0.02) < 0.9 * latency_factor(under["latency_ms"], 0.02)


def test_the_gate_skips_candidates_predicted_far_over_target():
    space = nas.space({"width": nas.choice([8, 16, 32, 64]), "depth": nas.integer(1, 8)})  # 32 archs
    gate = LatencyGate(LatencyPredictor(space), target_ms=1.0, skip_over=1.5)

    def latency(arch):
        return 0.1 * arch["depth"] * arch["width"] / 8

    assert gate.predict({"width": 64, "depth": 4}) is None  # says nothing before it has enough data
    for arch in space.enumerate():
        gate.observe(arch, latency(arch))
    slow, fast = {"width": 64, "depth": 8}, {"width": 8, "depth": 1}
    assert gate.skip_reason(gate.predict(slow)) is not None
    assert gate.skip_reason(gate.predict(fast)) is None


@pytest.mark.slow
def test_search_timed_by_a_custom_device_command(tmp_path):
    device = tmp_path / "device.py"
    device.write_text("import os, sys\nprint('timing', sys.argv[-1])\nprint(os.path.getsize(sys.argv[-1]) / 1e5)\n")
    raw = {
        "name": "custom-device", "seed": 0, "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"},
        "trainer": {"steps": 10, "eval_every": 10}, "strategy": {"name": "random"},
        "search": {"max_trials": 2, "parallel": 2, "devices": "cpu"},
        "reward": {"metric": "accuracy", "latency_target_ms": 5.0},
        "latency": {"command": ["python", "device.py"]},
    }
    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, parse_job(raw, base=tmp_path))
    assert Runner(store, job_id).run() == "finished"
    for t in store.trials(job_id, "succeeded"):
        onnx = store.trial_dir(job_id, t.number) / "model.onnx"
        assert t.metrics["latency_ms"] == pytest.approx(onnx.stat().st_size / 1e5)
        assert t.reward == pytest.approx(t.metrics["accuracy"] * latency_factor(t.metrics["latency_ms"], 5.0))
