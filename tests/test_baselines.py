"""Named baseline architectures of the prebuilt spaces, checked against the published figures (docs/BENCHMARKS.md,
"Fidelity"), and ``[search] baseline`` / ``reward.latency_target_ms = "0.8 * baseline"`` in a job."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from nasapp.engine.errors import NasappError
from nasapp.engine.latency.profile import model_profile
from nasapp.engine.rewards.options import RewardSpec, baseline_ratio
from nasapp.engine.spaces import mnasnet, nb201
from nasapp.engine.spaces.mnasnet_model import build_mnasnet
from nasapp.engine.spaces.prebuilt import get_prebuilt

SHARED_BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared/benchmarks"
NEEDS_SHARED = pytest.mark.skipif(not (SHARED_BENCHMARKS / "nb201_reference_params.csv").is_file(),
                                  reason="the shared NAS-Bench-201 files are not beside this checkout")
FULL = {"width": 1.0, "depth": 1.0, "resolution": None}
IMAGENET = torch.zeros(1, 3, 224, 224)


def test_mnasnet_a1_as_published_and_its_closest_setting_in_the_space():
    """MnasNet-A1 (paper: 3.9 M parameters, 312 M MACs) built with its own 112/160 channels; the space's closest
    setting (1.25 x 96 = 120, 0.75 x 192 = 144) is 4.3% lighter, and no other multiplier pair comes closer."""
    closest = mnasnet.BASELINES["mnasnet-a1-closest"]
    a1 = {"blocks": [{**block, "filters": 1.0} for block in closest["blocks"]]}  # the widths come from A1_WIDTHS
    exact = build_mnasnet(mnasnet.SPACE.canonical(a1), 3, (224, 224), 1000, FULL,
                          mnasnet.A1_WIDTHS, mnasnet.BASE_LAYERS, mnasnet.BASE_STRIDES)
    exact_a1 = model_profile(exact, IMAGENET)
    assert exact_a1 == {"macs": 311_579_072, "flops": 623_158_144, "params": 3_887_038}
    assert round(exact_a1["params"] / 1e6, 1) == 3.9 and round(exact_a1["macs"] / 1e6) == 312
    found = model_profile(mnasnet.build(closest, (3, 224, 224), 1000, None), IMAGENET)
    assert found == {"macs": 309_884_048, "flops": 619_768_096, "params": 3_720_794}
    assert round(found["params"] / exact_a1["params"] - 1, 3) == -0.043
    for f5 in mnasnet.FILTER_MULTIPLIERS:
        for f6 in mnasnet.FILTER_MULTIPLIERS:
            other = {"blocks": [dict(b) for b in closest["blocks"]]}
            other["blocks"][4]["filters"], other["blocks"][5]["filters"] = f5, f6
            params = sum(p.numel() for p in mnasnet.build(other, (3, 32, 32), 1000, None).parameters())
            assert abs(params - exact_a1["params"]) >= abs(found["params"] - exact_a1["params"])


@NEEDS_SHARED
def test_nb201_best_cell_matches_the_benchmark():
    with (SHARED_BENCHMARKS / "nb201_cifar10.csv").open() as handle:
        best = max(csv.DictReader(handle), key=lambda row: float(row["test_accuracy"]))
    arch = nb201.BASELINES["nb201-best-cifar10"]
    assert nb201.to_nb201_string(arch) == best["arch"] and float(best["test_accuracy"]) == 94.3733
    with (SHARED_BENCHMARKS / "nb201_reference_params.csv").open() as handle:
        reference = {row["arch"]: int(row["params"]) for row in csv.DictReader(handle)}
    model = nb201.build(arch, (3, 32, 32), 10, None)
    profile = model_profile(model, torch.zeros(1, 3, 32, 32))
    assert profile["params"] == reference[best["arch"]] == 1_073_466
    # as bench/nb201_flops.py counts: 7,783,040 shared, then per cell (5 per stage, 3 stages) four nor_conv_3x3
    # (2,359,296 each) and one nor_conv_1x1 (262,144); the paper's range is 7.8 M to 220.1 M
    assert profile["macs"] == 7_783_040 + 15 * (4 * 2_359_296 + 262_144) == 153_272_960


NB201_CELLS = {  # the example (two dead edges), the largest, the smallest
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|": (1_045_466, 4, 0),
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|":
        (1_531_546, 6, 0),
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": (73_306, 0, 0),
}


@NEEDS_SHARED
@pytest.mark.parametrize("cell", sorted(NB201_CELLS))
def test_nb201_example_cells_parameters_and_macs(cell):
    """Parameters as the benchmark's reference table says; MACs as the shared part (stem, reductions, classifier:
    7,783,040) plus, in each of the 15 cells, 2,359,296 per nor_conv_3x3 and 262,144 per nor_conv_1x1 (the
    same at every stage): 7.78 M to 220.12 M, the NAS-Bench-201 paper's 7.8 M to 220 M range."""
    params, conv3, conv1 = NB201_CELLS[cell]
    with (SHARED_BENCHMARKS / "nb201_reference_params.csv").open() as handle:
        assert {row["arch"]: int(row["params"]) for row in csv.DictReader(handle)}[cell] == params
    model = nb201.build(nb201.from_nb201_string(cell), (3, 32, 32), 10, None)
    assert model_profile(model, torch.zeros(1, 3, 32, 32)) == {
        "params": params, "macs": 7_783_040 + 15 * (conv3 * 2_359_296 + conv1 * 262_144),
        "flops": 2 * (7_783_040 + 15 * (conv3 * 2_359_296 + conv1 * 262_144))}


@pytest.mark.parametrize("name", ["mnasnet", "nb201"])
def test_every_named_baseline_is_in_its_space(name):
    prebuilt = get_prebuilt(name)
    assert prebuilt.baselines
    for arch in prebuilt.baselines.values():
        prebuilt.space.validate(arch)


@pytest.mark.parametrize(("text", "ratio"), [("baseline", 1.0), ("0.8 * baseline", 0.8), ("baseline*1.5", 1.5),
                                             ("fast", None), ("2 * baseline * 3", None)])
def test_baseline_relative_latency_targets(text, ratio):
    assert baseline_ratio(text) == ratio
    if ratio is None:
        with pytest.raises(ValueError):
            RewardSpec(latency_target_ms=text)
    else:
        assert RewardSpec(latency_target_ms=text).with_baseline(10.0).latency_target_ms == pytest.approx(10 * ratio)


JOB = """
name = "baseline"
[space]
prebuilt = "mnasnet"
[data]
kind = "digits"
[trainer]
prebuilt = "classification"
steps = 5
[search]
max_trials = 2
devices = "cpu"
"""


def test_a_relative_target_needs_a_baseline(tmp_path):
    from helpers import write_job

    from nasapp.engine.jobs.spec import load_job
    from nasapp.engine.jobs.validation import validate_job

    job = write_job(tmp_path, JOB + '[latency]\ndevice = "cpu-ort"\n[reward]\nlatency_target_ms = "0.8 * baseline"\n')
    with pytest.raises(NasappError, match=r"relative to the baseline, but the job has none: set \[search\] baseline"):
        validate_job(load_job(job))
    job = write_job(tmp_path, JOB.replace("max_trials = 2", 'max_trials = 2\nbaseline = "mnasnet-a9"'))
    with pytest.raises(NasappError, match="'mnasnet-a9' is not a baseline of space mnasnet; its baselines:"
                                          " mnasnet-b1, mnasnet-a1-closest"):
        validate_job(load_job(job))
    job = write_job(tmp_path, JOB.replace("max_trials = 2", 'max_trials = 2\nbaseline = {blocks = []}'))
    with pytest.raises(NasappError, match="search.baseline: "):
        validate_job(load_job(job))


def _baseline_job(tmp_path, max_trials: int) -> dict:
    device = tmp_path / "device.py"  # a deterministic "device": the latency is the ONNX file's size / 1e5
    device.write_text("import os, sys\nprint(os.path.getsize(sys.argv[-1]) / 1e5)\n")
    return {
        "name": "baseline-target", "seed": 3, "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"},
        "trainer": {"steps": 5, "eval_every": 5}, "strategy": {"name": "random"},
        "search": {"max_trials": max_trials, "parallel": 2, "devices": "cpu", "baseline": BASELINE_MLP},
        "reward": {"metric": "accuracy", "latency_target_ms": "0.5 * baseline"},
        "latency": {"command": ["python", "device.py"]},
    }


BASELINE_MLP = {"widths": [256, 256], "activation": "relu", "norm": "none", "dropout": 0.0}


@pytest.mark.slow
def test_the_baseline_is_trial_0_and_sets_the_latency_target_across_a_resume(tmp_path):
    """Trial 0 trains the baseline; every reward uses 0.5 x its measured latency as the target, also after the
    job is extended and resumed; the strategy never asked for the baseline, so the resumed job proposes what an
    uninterrupted one does."""
    from nasapp.engine.execution.runner import Runner
    from nasapp.engine.jobs.spec import parse_job
    from nasapp.engine.jobs.validation import create_job
    from nasapp.engine.rewards.reward import latency_factor
    from nasapp.store import Store
    from nasapp.store.queries import events_after

    store = Store(tmp_path / "nasapp.db")
    straight = create_job(store, parse_job(_baseline_job(tmp_path, 5), base=tmp_path))
    assert Runner(store, straight).run() == "finished"
    extended = create_job(store, parse_job(_baseline_job(tmp_path, 3), base=tmp_path))
    assert Runner(store, extended).run() == "finished"
    spec = store.job(extended).spec
    spec["search"]["max_trials"] = 5
    store.update_job(extended, spec=spec, max_trials=5, status="stopped")
    assert Runner(store, extended).run() == "finished"
    for job_id in (straight, extended):
        trials = store.trials(job_id)
        assert [t.status for t in trials] == ["succeeded"] * 5
        assert trials[0].arch == get_prebuilt("mlp").space.canonical(BASELINE_MLP)
        target = 0.5 * trials[0].metrics["latency_ms"]
        for t in trials:
            assert t.reward == pytest.approx(t.metrics["accuracy"] * latency_factor(t.metrics["latency_ms"], target))
        events = [e["message"] for e in events_after(store, job_id)]
        assert any("so reward.latency_target_ms = 0.5 x baseline" in e for e in events)
    assert [t.arch for t in store.trials(straight)] == [t.arch for t in store.trials(extended)]
    # `nasapp latency --job J --trial 0` re-times the saved model with the job's [latency] settings (its device
    # command here), beside the figure the trial recorded
    from nasapp.app.latency_command import latency_command

    again = latency_command(store=store, job=store.job(straight), trial=0, as_json=True)
    first = store.trials(straight)[0]
    assert again["latency_ms"] == again["recorded_latency_ms"] == first.metrics["latency_ms"]
    assert again["ratio_to_recorded"] == 1.0 and again["params"] == first.metrics["params"]
    with pytest.raises(NasappError, match=f"job {straight} has no trial 9"):
        latency_command(store=store, job=store.job(straight), trial=9)
    # `nasapp show` prints the baseline beside the best trial
    from nasapp.app.cli import _baseline_line
    from nasapp.engine.results.summary import summarize

    shown = summarize(store, store.job(straight))["baseline"]
    assert shown["name"] == "architecture table" and shown["status"] == "succeeded"
    assert shown["target_ms"] == pytest.approx(0.5 * first.metrics["latency_ms"])
    assert _baseline_line(shown, "accuracy").startswith("baseline: trial 0 (architecture table) succeeded, accuracy ")


def test_tool_jobs_train_no_baseline_and_keep_the_target_in_ms():
    """proxy select/search/variance and stage 2 make jobs of their own from a job table: without the baseline
    trial, and with a relative target turned into the source job's milliseconds (or dropped when unknown)."""
    from nasapp.engine.jobs.baseline import without_baseline

    raw = {"search": {"baseline": "mnasnet-b1"}, "reward": {"latency_target_ms": "0.8 * baseline"}}
    assert without_baseline(raw, 2.5) == {"search": {"baseline": None}, "reward": {"latency_target_ms": 2.0}}
    raw = {"search": {"baseline": "mnasnet-b1"}, "reward": {"latency_target_ms": "baseline"}}
    assert without_baseline(raw)["reward"]["latency_target_ms"] is None
    raw = {"search": {}, "reward": {"latency_target_ms": 3.0}}
    assert without_baseline(raw, 9.0)["reward"]["latency_target_ms"] == 3.0
