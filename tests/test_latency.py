"""engine/latency: ONNX export, ONNX Runtime timing, command devices, the measuring service, the predictor and
`nasapp latency` (its plain function). Real ONNX Runtime, real subprocesses; fast settings (few runs)."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nasapp.app.latency_command import latency_command, parse_shape
from nasapp.engine.errors import NasappError, SpaceError
from nasapp.engine.jobs.spec import LatencySpec
from nasapp.engine.latency import (
    LatencyPredictor,
    LatencyService,
    export_onnx,
    measure_command,
    measure_onnx,
    measuring,
    model_profile,
    timing,
    within,
)
from nasapp.engine.latency.measuring import measure, serve
from nasapp.engine.latency.predictor import graph_features
from nasapp.engine.spaces import choice, integer, space
from nasapp.engine.spaces.prebuilt import get_prebuilt

FAST = {"warmup": 2, "runs": 20}
DEMO_SCALE = {"width": 0.25, "depth": 0.5}


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    return export_onnx(tiny_model(), torch.randn(1, 1, 8, 8), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


def fast_spec(**changes) -> dict:
    return LatencySpec(device="cpu-ort", **{**FAST, **changes}).model_dump()


def wait_for(service: LatencyService, count: int, timeout: float = 60.0) -> list[tuple[int, dict]]:
    results: list[tuple[int, dict]] = []
    deadline = time.monotonic() + timeout
    while len(results) < count and time.monotonic() < deadline:
        results.extend(service.poll(timeout=1.0))
    assert len(results) == count, f"got {results} after {timeout} s"
    return results


# ---- export, profile, timing --------------------------------------------------------------------------------

def test_export_and_measure_a_tiny_model(tiny_onnx: Path):
    metrics = measure_onnx(tiny_onnx, **FAST)
    assert metrics["latency_ms"] > 0
    assert metrics["latency_p90_ms"] >= metrics["latency_ms"]
    assert metrics["latency_mean_ms"] > 0 and metrics["latency_cv"] >= 0
    assert metrics["onnx_bytes"] == tiny_onnx.stat().st_size
    assert metrics["runs"] == 20 and metrics["threads"] == 1 and metrics["batch_size"] == 1
    if sys.platform.startswith("linux"):
        assert metrics["memory_mb"] is not None and 0 <= metrics["memory_mb"] < 500


def test_exported_onnx_matches_torch_in_a_fresh_session(tmp_path: Path):
    model = tiny_model()
    example = torch.randn(2, 1, 8, 8)
    path = export_onnx(model, example, tmp_path / "m.onnx")
    assert model.training  # the caller's mode is restored
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [[2, 1, 8, 8]]  # static: batch and shape from the example
    sample = torch.randn(2, 1, 8, 8)
    (got,) = session.run(None, {session.get_inputs()[0].name: sample.numpy()})
    with torch.no_grad():
        expected = model.eval()(sample).numpy()
    assert np.max(np.abs(got - expected)) <= 1e-4


def test_prebuilt_mnasnet_exports_and_matches(tmp_path: Path):
    prebuilt = get_prebuilt("mnasnet")
    model = prebuilt.build(prebuilt.space.sample(4), (1, 8, 8), 10, DEMO_SCALE).eval()
    example = torch.randn(1, 1, 8, 8)
    path = export_onnx(model, example, tmp_path / "mnas.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": example.numpy()})
    with torch.no_grad():
        assert np.max(np.abs(got - model(example).numpy())) <= 1e-4


def test_export_failure_names_the_operator(tmp_path: Path):
    class Histogram(nn.Module):
        def forward(self, x):
            return torch.histc(x, bins=4)

    with pytest.raises(NasappError, match=r"aten::histc"):
        export_onnx(Histogram(), torch.randn(4, 4), tmp_path / "bad.onnx")
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_model_profile_counts_macs_flops_and_params():
    model = nn.Linear(4, 3)
    assert model_profile(model, torch.randn(2, 4)) == {"macs": 2 * 4 * 3, "flops": 2 * 2 * 4 * 3, "params": 15}


def test_onnx_graph_macs_and_params_agree_with_torch(tmp_path):
    """MACs read from an exported ONNX graph (shape inference, batch set) equal the hook count of the model
    they came from; params are the graph's initializers."""
    from nasapp.engine.latency.onnx_costs import onnx_costs
    from nasapp.engine.proxies.sizes import count_macs
    from nasapp.engine.spaces import mnasnet

    model = mnasnet.build(mnasnet.SPACE.sample(0), (3, 64, 64), 10, {"width": 0.5, "depth": 0.5}).eval()
    x = torch.randn(1, 3, 64, 64)
    path = export_onnx(model, x, tmp_path / "m.onnx")
    costs = onnx_costs(path, batch_size=1)
    assert costs["macs"] == count_macs(model, x) > 0 and costs["flops"] == 2 * costs["macs"]
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).eval()
    path = export_onnx(linear, torch.randn(3, 3, 4), tmp_path / "l.onnx")
    assert onnx_costs(path, batch_size=3) == {"macs": 3 * 12 * 5, "flops": 2 * 3 * 12 * 5, "params": 65}


def test_measure_onnx_errors(tmp_path: Path, tiny_onnx: Path):
    with pytest.raises(NasappError, match="not found"):
        measure_onnx(tmp_path / "missing.onnx")
    with pytest.raises(NasappError, match="batch size of 1"):
        measure_onnx(tiny_onnx, batch_size=4, **FAST)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(NasappError, match="cannot load"):
        measure_onnx(garbage, **FAST)


# ---- a user's command ---------------------------------------------------------------------------------------

def script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_command_device_reads_the_last_number(tmp_path: Path, tiny_onnx: Path):
    command = script(tmp_path, "device.py", """
        import sys
        assert sys.argv[-1].endswith(".onnx")
        print("warming up 3 runs")
        print("12.5")
    """)
    assert measure_command(command, tiny_onnx) == {"latency_ms": 12.5,
                                                   "onnx_bytes": tiny_onnx.stat().st_size}


def test_failing_command_raises_with_its_stderr(tmp_path: Path, tiny_onnx: Path):
    failing = script(tmp_path, "fail.py", """
        import sys
        print("adb: device not found", file=sys.stderr)
        sys.exit(3)
    """)
    with pytest.raises(NasappError) as caught:
        measure_command(failing, tiny_onnx)
    assert "fail.py" in str(caught.value) and "exit code 3" in str(caught.value)
    assert "adb: device not found" in str(caught.value)
    silent = script(tmp_path, "silent.py", "print('done')\n")
    with pytest.raises(NasappError, match="no number"):
        measure_command(silent, tiny_onnx)
    with pytest.raises(NasappError, match="not found"):
        measure_command([str(tmp_path / "no-such-program")], tiny_onnx)


# ---- the service ----------------------------------------------------------------------------------------------

def test_service_measures_caches_persists_and_reloads(tmp_path: Path, tiny_onnx: Path):
    cache = tmp_path / "job" / "latency-cache.json"
    with LatencyService(fast_spec(), cache) as service:
        service.submit(1, str(tiny_onnx), "fp-a")
        [(request, metrics)] = wait_for(service, 1)
        assert request == 1 and metrics["latency_ms"] > 0 and "error" not in metrics
        service.submit(2, str(tiny_onnx), "fp-a")  # the same architecture: answered from the cache at once
        started = time.monotonic()
        assert service.poll(0) == [(2, metrics)]
        assert time.monotonic() - started < 0.1
        assert service.measured == 1
    saved = json.loads(cache.read_text())
    assert saved["results"]["fp-a"] == metrics
    with LatencyService(fast_spec(), cache) as resumed:  # a resumed job keeps its measurements
        resumed.submit(7, str(tmp_path / "gone.onnx"), "fp-a")
        assert resumed.poll(0) == [(7, metrics)]
        assert resumed.measured == 0
    assert LatencyService(fast_spec(threads=2), cache).cached("fp-a") is None  # other settings: not reused


def test_service_reports_bad_files_and_duplicates_share_one_measurement(tmp_path: Path, tiny_onnx: Path):
    with LatencyService(fast_spec(), tmp_path / "cache.json") as service:
        service.submit(1, str(tmp_path / "missing.onnx"), "fp-missing")
        service.submit(2, str(tiny_onnx), "fp-b")
        service.submit(3, str(tiny_onnx), "fp-b")
        results = dict(wait_for(service, 3))
        assert "not found" in results[1]["error"]
        assert results[2] == results[3] and results[2]["latency_ms"] > 0
        assert service.measured == 1 and service.cached("fp-missing") is None


def test_service_with_a_command_device_restarts_after_dying(tmp_path: Path, tiny_onnx: Path):
    marker = tmp_path / "die-once"
    marker.write_text("")
    command = script(tmp_path, "device.py", f"""
        import os, signal
        if os.path.exists({str(marker)!r}):
            os.remove({str(marker)!r})
            os.kill(os.getppid(), signal.SIGKILL)  # the measuring process dies mid-measurement
        print("12.5")
    """)
    spec = LatencySpec(command=command).model_dump()
    with LatencyService(spec, tmp_path / "cache.json") as service:
        service.submit(1, str(tiny_onnx), "fp-1")
        [(request, answer)] = wait_for(service, 1)
        assert request == 1 and "latency service stopped" in answer["error"]
        service.submit(2, str(tiny_onnx), "fp-1")  # restarts the process; the failure was not cached
        [(request, answer)] = wait_for(service, 1)
        assert (request, answer["latency_ms"]) == (2, 12.5)


def test_service_rejects_unavailable_cores(tmp_path: Path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    service = LatencyService(fast_spec(pin_cores=[4096]), tmp_path / "cache.json")
    with pytest.raises(NasappError, match="pin_cores"):
        service.start()


def test_service_pins_its_process(tmp_path: Path, tiny_onnx: Path):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    core = min(os.sched_getaffinity(0))
    with LatencyService(fast_spec(pin_cores=[core]), tmp_path / "cache.json") as service:
        service.submit(1, str(tiny_onnx), "fp")
        [(_, metrics)] = wait_for(service, 1)
        assert metrics["latency_ms"] > 0
        assert os.sched_getaffinity(service._process.pid) == {core}


def test_service_takes_the_typed_spec_and_shares_its_cache_with_the_dict(tmp_path: Path, tiny_onnx: Path):
    spec = LatencySpec(device="cpu-ort", **FAST)
    cache = tmp_path / "cache.json"
    with LatencyService(spec, cache) as service:
        service.submit(1, str(tiny_onnx), "fp")
        [(_, metrics)] = wait_for(service, 1)
        assert metrics["latency_ms"] > 0
    assert LatencyService(spec.model_dump(), cache).cached("fp") == metrics
    # a dict without some keys means LatencySpec's defaults for them: the same settings, the same cache
    assert LatencyService({"device": "cpu-ort", **FAST}, cache).cached("fp") == metrics


def test_measure_takes_the_spec_values_and_latency_spec_defaults_for_missing_keys(monkeypatch):
    seen: list[dict] = []
    monkeypatch.setattr(timing, "measure_onnx", lambda path, **kwargs: seen.append(kwargs) or {"latency_ms": 1.0})
    assert measure({"device": "cpu-ort"}, "model.onnx") == {"latency_ms": 1.0}
    default = LatencySpec()
    assert seen[-1] == {"threads": default.threads, "warmup": default.warmup, "runs": default.runs,
                        "batch_size": default.batch_size}
    measure(LatencySpec(device="cpu-ort", threads=2, warmup=3, runs=7, batch_size=4).model_dump(), "model.onnx")
    assert seen[-1] == {"threads": 2, "warmup": 3, "runs": 7, "batch_size": 4}
    with pytest.raises(NasappError, match="measurement is off"):
        measure({}, "model.onnx")  # device "none" and no command: LatencySpec's defaults


def test_the_measuring_loop_answers_each_request_on_its_own_line(tmp_path: Path, tiny_onnx: Path):
    requests = [json.dumps(fast_spec()), json.dumps({"id": 1, "path": str(tiny_onnx)}), "",
                json.dumps({"id": 2, "path": str(tmp_path / "missing.onnx")})]
    out = io.StringIO()
    serve(io.StringIO("\n".join(requests) + "\n"), out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["id"] == 1 and first["metrics"]["latency_ms"] > 0
    assert second["id"] == 2 and "not found" in second["error"]


def test_service_skips_a_line_from_its_process_that_is_not_json(tmp_path: Path, monkeypatch, caplog):
    (tmp_path / "chatty_measuring.py").write_text(textwrap.dedent("""
        import json, sys
        settings = json.loads(sys.stdin.readline())
        for line in sys.stdin:
            request = json.loads(line)
            print("a library's banner, not JSON {", flush=True)
            print(json.dumps({"id": request["id"], "metrics": {"latency_ms": settings["runs"] / 10}}), flush=True)
    """))
    monkeypatch.setattr(measuring, "MODULE", "chatty_measuring")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    caplog.set_level(logging.WARNING, logger="nasapp.engine.latency.service")
    with LatencyService(LatencySpec(device="cpu-ort", runs=35), tmp_path / "cache.json") as service:
        service.submit(1, "model.onnx", "fp")
        assert wait_for(service, 1) == [(1, {"latency_ms": 3.5})]
        assert service.measured == 1 and service.pending() == 0
    assert "a library's banner" in caplog.text


# ---- the predictor ------------------------------------------------------------------------------------------

def test_predictor_fits_a_multiplicative_relationship_on_the_encoding():
    toy = space({"op": choice(["a", "b", "c"]), "width": integer(1, 8), "depth": integer(1, 4)})
    factor = {"a": 1.0, "b": 1.6, "c": 2.5}

    def latency(arch):
        return 0.5 * factor[arch["op"]] * 1.15 ** arch["width"] * 1.3 ** arch["depth"]

    archs = [toy.sample(seed) for seed in range(80)]
    predictor = LatencyPredictor(toy)
    assert not predictor.ready
    with pytest.raises(NasappError, match="not been fitted"):
        predictor.predict(archs[0])
    predictor.fit(archs[:5], [latency(a) for a in archs[:5]])
    assert not predictor.ready  # fewer than 10 measurements
    predictor.fit(archs[:60], [latency(a) for a in archs[:60]])
    assert predictor.ready
    predicted = [predictor.predict(a) for a in archs[60:]]
    assert within(predicted, [latency(a) for a in archs[60:]]) >= 0.95


def test_predictor_fits_an_additive_relationship_on_custom_features():
    toy = space({"convs": integer(0, 10), "adds": integer(0, 6)})

    def features(arch):
        return {"convs": arch["convs"], "adds": arch["adds"]}

    archs = [toy.sample(seed) for seed in range(40)]
    truth = [0.05 + 0.02 * a["convs"] + 0.004 * a["adds"] for a in archs]
    predictor = LatencyPredictor(toy, features).fit(archs[:30], truth[:30])
    assert within(predictor.predict_many(archs[30:]), truth[30:], tol=0.02) == 1.0


def test_graph_features_count_ops_by_kind():
    with torch.device("meta"):
        model, example = tiny_model(), torch.empty(1, 1, 8, 8)
    features = graph_features(model, example)
    assert features["n_conv3"] == 1 and features["n_dw3"] == 1 and features["n_linear"] == 1
    assert features["mflops_conv3"] == pytest.approx(2 * 9 * 4 * 64 / 1e6)


def test_within():
    assert within([1.0, 1.05, 1.2], [1.0, 1.0, 1.0]) == pytest.approx(2 / 3)
    assert within([], []) == 0.0


# ---- `nasapp latency` -------------------------------------------------------------------------------------

def test_latency_command_json_for_an_onnx_file(tiny_onnx: Path, capsys):
    result = latency_command(str(tiny_onnx), as_json=True, **FAST)
    printed = json.loads(capsys.readouterr().out)
    assert printed == result
    assert printed["latency_ms"] > 0
    # parameters of the ONNX file: the batch norm (4 scales, 4 shifts) is folded into the convolution
    assert printed["params"] == sum(p.numel() for p in tiny_model().parameters()) - 8
    # MACs from the graph: conv 4 x 8 x 8 x 9, depthwise conv 4 x 8 x 8 x 9, linear 3 x 4 (per input)
    batch = printed["batch_size"]
    assert printed["macs"] == batch * (4 * 64 * 9 + 4 * 64 * 9 + 12) and printed["flops"] == 2 * printed["macs"]


def test_latency_command_json_for_a_sampled_mnasnet_arch(capsys):
    result = latency_command(space="mnasnet", seed=3, input_shape="1,8,8", width=0.25, depth=0.5,
                             as_json=True, **FAST)
    printed = json.loads(capsys.readouterr().out)
    prebuilt = get_prebuilt("mnasnet")
    assert printed == result
    assert printed["arch"] == prebuilt.space.sample(3)
    assert printed["fingerprint"] == prebuilt.space.fingerprint(printed["arch"])
    assert printed["input_shape"] == [1, 8, 8] and printed["flops"] == 2 * printed["macs"] > 0
    assert printed["params"] > 0
    assert printed["latency_ms"] > 0 and printed["onnx_bytes"] > 0


def test_latency_command_takes_a_named_baseline(capsys):
    mnasnet = get_prebuilt("mnasnet")
    for given in ({"baseline": "mnasnet-a1-closest"}, {"arch": "mnasnet-a1-closest"}):
        result = latency_command(space="mnasnet", input_shape="1,8,8", width=0.25, depth=0.5, as_json=True,
                                 **given, **FAST)
        assert result["arch"] == mnasnet.space.canonical(mnasnet.baselines["mnasnet-a1-closest"])
        assert result["baseline"] == "mnasnet-a1-closest"
    with pytest.raises(NasappError, match="'b2' is not a baseline of space nb201; its baselines: nb201-best-cifar10"):
        latency_command(space="nb201", baseline="b2", **FAST)
    with pytest.raises(NasappError, match="give exactly one of"):
        latency_command(space="nb201", baseline="nb201-best-cifar10", seed=1, **FAST)


def test_latency_command_table_for_an_arch_file(tmp_path: Path, capsys):
    arch = get_prebuilt("mnasnet").space.sample(5)
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps({"arch": arch}))
    latency_command(space="mnasnet", arch_file=str(arch_file), input_shape="1x8x8", width=0.25, depth=0.5,
                    **FAST)
    text = capsys.readouterr().out
    assert "latency (median)" in text and "MACs" in text and "FLOPs (2 x MACs)" in text and "peak memory" in text


def test_latency_command_user_mistakes(tmp_path: Path):
    with pytest.raises(NasappError, match="not found"):
        latency_command(str(tmp_path / "missing.onnx"))
    with pytest.raises(NasappError, match="not both"):
        latency_command(str(tmp_path / "x.onnx"), space="mnasnet")
    with pytest.raises(NasappError, match="ONNX file .* or a prebuilt space"):
        latency_command()
    with pytest.raises(NasappError, match="not valid JSON"):
        latency_command(space="mnasnet", arch="{blocks: [")
    with pytest.raises(NasappError, match="exactly one of --arch"):
        latency_command(space="mnasnet")
    with pytest.raises(NasappError, match="unknown space"):
        latency_command(space="resnet", seed=0)
    bad = get_prebuilt("mnasnet").space.sample(0)
    bad["blocks"][3]["kernel"] = 9
    with pytest.raises(SpaceError, match=r"blocks\[3\]\.kernel: 9 is not one of"):
        latency_command(space="mnasnet", arch=json.dumps(bad))
    with pytest.raises(NasappError, match="input-shape"):
        parse_shape("3,a,32")
    assert parse_shape("(3, 32, 32)") == (3, 32, 32) and parse_shape(None) is None


def test_the_predictor_leaves_out_measurements_slowed_by_other_work():
    """Latency = 0.2 + 0.1 x width x depth / 8; two of 30 measurements were slowed by half again (a busy
    machine): the fit leaves them out and predicts the rest as if they had never been measured."""
    from nasapp.engine.latency.predictor import LatencyPredictor

    toy = space({"width": choice([8, 16, 32, 64]), "depth": integer(1, 8)})
    archs = list(toy.enumerate())[:30]

    def features(arch):
        return {"work": arch["width"] * arch["depth"] / 8}

    def latency(arch):
        return 0.2 + 0.1 * features(arch)["work"]

    measured = [latency(a) * (1.5 if i in (3, 17) else 1.0) for i, a in enumerate(archs)]
    predictor = LatencyPredictor(toy, features).fit(archs, measured)
    assert predictor.rejected == 2 and predictor.samples == 30
    assert predictor.predict_many(archs) == pytest.approx([latency(a) for a in archs], rel=0.01)
    clean = LatencyPredictor(toy, features).fit(archs, [latency(a) for a in archs])
    assert clean.rejected == 0
