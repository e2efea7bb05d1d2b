"""Zero-cost proxies (engine/proxies): values on tiny models, determinism, no side effects, exact
multiply-adds, the trainer's ``zc_*`` metrics and the ``trainer.zero_cost`` validation (CPU, seconds)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import write_job
from torch import nn

from nasapp.engine.data.loaders import Dataset, load_dataset
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.jobs.spec import load_job
from nasapp.engine.proxies import PROXIES
from nasapp.engine.proxies.scoring import measure_archs, score_archs, score_model, synthetic_batch
from nasapp.engine.proxies.sizes import count_macs
from nasapp.engine.trainers.classification import train
from nasapp.engine.trainers.options import TrainerSpec

NAMES = ["flops", "grad_norm", "jacob_cov", "macs", "naswot", "params", "synflow"]
SHAPE = (1, 8, 8)


def build_convnet(arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int,
                  scale: dict[str, Any]) -> nn.Module:
    """A tiny conv net with batch norm, ReLU and dropout: every layer kind the proxies treat specially."""
    width = int(arch["width"])
    return nn.Sequential(
        nn.Conv2d(input_shape[0], width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(width, num_classes),
    )


def test_the_registry_lists_the_proxies_and_says_which_are_sizes() -> None:
    assert PROXIES.names() == NAMES
    assert {entry.name for entry in PROXIES if entry.kind == "size"} == {"params", "macs", "flops"}
    assert {entry.name for entry in PROXIES if entry.data_free} == {"synflow", "params", "macs", "flops"}


def test_every_proxy_is_finite_and_deterministic_for_a_seed() -> None:
    archs = [{"width": 4}, {"width": 8}]
    first = measure_archs(build_convnet, archs, NAMES, SHAPE, 10, seed=3)
    again = measure_archs(build_convnet, archs, NAMES, SHAPE, 10, seed=3)
    other = measure_archs(build_convnet, archs, NAMES, SHAPE, 10, seed=4)
    assert first == again
    assert all(math.isfinite(value) for row in first for value in row.values()), first
    for name in ("synflow", "grad_norm", "jacob_cov", "naswot"):  # other weights, other scores
        assert first[0][name] != other[0][name], name
    assert first[1]["params"] > first[0]["params"] and first[1]["flops"] > first[0]["flops"]
    assert score_archs(build_convnet, archs, "synflow", SHAPE, 10, seed=3) == [row["synflow"] for row in first]


def test_proxies_leave_the_model_and_the_global_rng_as_they_were() -> None:
    torch.manual_seed(0)
    model = build_convnet({"width": 6}, SHAPE, 10, {}).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = synthetic_batch(SHAPE, 10, batch_size=16, seed=1)
    rng = torch.get_rng_state()
    values = score_model(model, NAMES, x, y, seed=0)
    assert values["synflow"] > 0
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and batch-norm statistics
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_synflow_is_data_free() -> None:
    torch.manual_seed(0)
    model = build_convnet({"width": 6}, SHAPE, 10, {})
    x1, y1 = synthetic_batch(SHAPE, 10, batch_size=4, seed=1)
    x2, y2 = synthetic_batch(SHAPE, 10, batch_size=9, seed=2)
    assert score_model(model, ["synflow"], x1, y1, 0) == score_model(model, ["synflow"], x2, y2, 0)


def test_multiply_adds_of_a_known_network_are_exact() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),                 # 8*32*32 outputs x 3*3*3     = 221,184
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4, bias=False),  # 8*16*16 x 2*3*3 = 36,864
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 10),                    # 10 x 2048                   = 20,480
    )
    expected = 221_184 + 36_864 + 20_480
    assert count_macs(model, torch.zeros(1, 3, 32, 32)) == expected
    assert count_macs(model, torch.zeros(2, 3, 32, 32)) == 2 * expected
    x, y = synthetic_batch((3, 32, 32), 10, batch_size=5)
    sizes = score_model(model, ["macs", "flops", "params"], x, y, seed=0)
    assert sizes == {"macs": float(expected), "flops": 2.0 * expected,
                     "params": float(sum(p.numel() for p in model.parameters()))}


def test_params_counts_only_trainable_parameters() -> None:
    model = build_convnet({"width": 4}, SHAPE, 10, {})
    model[0].requires_grad_(False)
    x, y = synthetic_batch(SHAPE, 10, batch_size=2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert score_model(model, ["params"], x, y, seed=0)["params"] == trainable


def test_degenerate_networks_score_minus_infinity() -> None:
    """A network whose output ignores its input: NASWOT's K and jacob_cov's correlation are undefined."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.zero_()
    x, y = synthetic_batch(SHAPE, 3, batch_size=8)
    values = score_model(model, ["naswot", "jacob_cov"], x, y, seed=0)
    assert values == {"naswot": -math.inf, "jacob_cov": -math.inf}


# -- the classification trainer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset({"kind": "digits"}, seed=0)


def _train(tmp_path: Path, data: Dataset, **proxy: Any) -> dict[str, Any]:
    ctx = TrialContext(
        trial_id=1, number=0, seed=7, device="cpu", workdir=tmp_path / f"trial-{len(proxy)}",
        proxy={"steps": 20, "batch_size": 32, "eval_every": 20, **proxy}, data=data, build=build_convnet,
        scale={}, _report=lambda step, metrics: None,
    )
    return train({"width": 8}, ctx)


def test_the_trainer_adds_zc_metrics_without_changing_the_training(tmp_path: Path, digits: Dataset) -> None:
    plain = _train(tmp_path, digits)
    scored = _train(tmp_path, digits, zero_cost=["synflow", "naswot"])
    assert {"zc_synflow", "zc_naswot"} <= set(scored) and not any(k.startswith("zc_") for k in plain)
    assert scored["zc_synflow"] > 0 and math.isfinite(scored["zc_naswot"])
    assert scored["loss"] == plain["loss"] and scored["accuracy"] == plain["accuracy"]
    # the trial's seed builds the same model as score_archs with that seed: the data-free proxy agrees
    assert scored["zc_synflow"] == score_archs(build_convnet, [{"width": 8}], "synflow", SHAPE, 10, seed=7)[0]


# -- validation ----------------------------------------------------------------------------------------------


def test_zero_cost_names_are_validated_against_the_registry(tmp_path: Path) -> None:
    assert TrainerSpec.model_validate({"zero_cost": ["synflow", "params"]}).zero_cost == ["synflow", "params"]
    assert TrainerSpec.model_validate({}).zero_cost == []
    job = write_job(tmp_path, 'name = "j"\n[space]\nprebuilt = "nb201"\n[trainer]\nzero_cost = ["synflo"]\n')
    with pytest.raises(NasappError) as error:
        load_job(job)
    message = str(error.value)
    assert "trainer.zero_cost: unknown zero-cost proxy 'synflo'" in message
    assert "flops, grad_norm, jacob_cov, macs, naswot, params, synflow" in message
    assert len(message.splitlines()) == 1


def test_the_proxy_registry_imports_without_torch() -> None:
    code = "import sys; import nasapp.engine.proxies as p; print(len(p.PROXIES.names()), 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(NAMES)), "False"]
