"""The prebuilt classification trainer on digits with a small hand-written builder (CPU, a few seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nasapp.engine.data.loaders import Dataset, load_dataset
from nasapp.engine.errors import NasappError, TrialFailed
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.trainers.classification import Settings, train


def build_mlp(arch: dict, input_shape: tuple[int, ...], num_classes: int, scale: dict) -> torch.nn.Module:
    features = 1
    for dim in input_shape:
        features *= dim
    width = int(arch["width"] * scale.get("width", 1.0))
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(features, width),
        torch.nn.BatchNorm1d(width),
        torch.nn.ReLU(),
        torch.nn.Dropout(arch.get("dropout", 0.0)),
        torch.nn.Linear(width, num_classes),
    )


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset({"kind": "digits"}, seed=0)


def make_ctx(
    tmp_path: Path, data: Dataset, stop: Any = None, seed: int = 0, **proxy: Any
) -> tuple[TrialContext, list[tuple[int, dict[str, float]]]]:
    reports: list[tuple[int, dict[str, float]]] = []
    ctx = TrialContext(
        trial_id=1,
        number=0,
        seed=seed,
        device="cpu",
        workdir=tmp_path / f"trial-{seed}",
        proxy={"steps": 150, "batch_size": 32, "eval_every": 50, **proxy},
        data=data,
        build=build_mlp,
        scale={"width": 1.0},
        _report=lambda step, metrics: reports.append((step, metrics)),
        _should_stop=stop,
    )
    return ctx, reports


ARCH = {"width": 64, "dropout": 0.1}


def test_learns_digits_reports_and_saves_weights(tmp_path: Path, digits: Dataset) -> None:
    ctx, reports = make_ctx(tmp_path, digits)
    result = train(ARCH, ctx)
    assert result["accuracy"] > 0.7
    assert result["best_accuracy"] >= result["accuracy"]
    assert result["steps"] == 150 and result["train_time_s"] > 0 and result["loss"] > 0
    assert result["params"] == sum(p.numel() for p in build_mlp(ARCH, (1, 8, 8), 10, {}).parameters())
    assert [step for step, _ in reports] == [50, 100, 150]
    assert set(reports[-1][1]) == {"accuracy", "loss"} and reports[-1][1]["accuracy"] == result["accuracy"]
    state = torch.load(ctx.workdir / "model.pt")
    model = build_mlp(ARCH, (1, 8, 8), 10, {})
    model.load_state_dict(state)
    assert all(t.device.type == "cpu" for t in state.values())


def test_same_seed_same_accuracy(tmp_path: Path, digits: Dataset) -> None:
    first = train(ARCH, make_ctx(tmp_path, digits, steps=60)[0])
    second = train(ARCH, make_ctx(tmp_path, digits, steps=60)[0])
    other = train(ARCH, make_ctx(tmp_path, digits, steps=60, seed=1)[0])
    assert first["accuracy"] == second["accuracy"] and first["loss"] == second["loss"]
    assert other["loss"] != first["loss"]


def test_huge_lr_fails_with_nan(tmp_path: Path, digits: Dataset) -> None:
    ctx, _ = make_ctx(tmp_path, digits, lr=1e6, momentum=0.99, weight_decay=0.0)
    with pytest.raises(TrialFailed) as failure:
        train({"width": 64}, ctx)
    assert failure.value.reason == "nan"
    assert "lower trainer.lr" in failure.value.message and "at step" in failure.value.message


def test_should_stop_returns_early(tmp_path: Path, digits: Dataset) -> None:
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 30

    ctx, reports = make_ctx(tmp_path, digits, stop=stop, steps=500, eval_every=20)
    result = train(ARCH, ctx)
    assert result["steps"] == 30
    assert [step for step, _ in reports] == [20, 30]
    assert 0.0 <= result["accuracy"] <= 1.0 and (ctx.workdir / "model.pt").exists()


def test_ema_and_adamw_options(tmp_path: Path, digits: Dataset) -> None:
    plain = train(ARCH, make_ctx(tmp_path, digits, optimizer="adamw", lr=3e-3)[0])
    ema = train(ARCH, make_ctx(tmp_path, digits, optimizer="adamw", lr=3e-3, ema=0.99, grad_clip=1.0)[0])
    assert plain["accuracy"] > 0.7 and ema["accuracy"] > 0.7
    assert ema["loss"] != plain["loss"]


def test_data_fraction_dataset_with_small_train_set(tmp_path: Path) -> None:
    tiny = load_dataset({"kind": "digits", "data_fraction": 0.02}, seed=0)
    result = train(ARCH, make_ctx(tmp_path, tiny, steps=20, batch_size=512)[0])
    assert result["steps"] == 20


def test_settings_defaults_and_errors() -> None:
    s = Settings.from_proxy({})
    assert (s.steps, s.batch_size, s.optimizer, s.lr, s.eval_every, s.ema) == (200, 64, "sgd", 0.05, 50, 0.0)
    assert Settings.from_proxy({"optimizer": "adamw"}).lr == 1e-3
    with pytest.raises(NasappError, match="trainer.optimizer"):
        Settings.from_proxy({"optimizer": "lion"})
    with pytest.raises(NasappError, match="trainer.steps"):
        Settings.from_proxy({"steps": 0})
    with pytest.raises(NasappError, match="trainer.ema"):
        Settings.from_proxy({"ema": 1.5})


class _OomAbove(torch.nn.Module):
    """Raises CUDA's out-of-memory error for batches larger than ``limit`` (a stand-in for a full GPU)."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


@pytest.mark.parametrize(("limit", "fails"), [(16, False), (8, True)])
def test_out_of_memory_retries_with_half_batch_then_fails(
    tmp_path: Path, digits: Dataset, limit: int, fails: bool
) -> None:
    ctx, _ = make_ctx(tmp_path, digits, steps=20, batch_size=32)
    ctx.build = lambda arch, shape, k, scale: _OomAbove(build_mlp(arch, shape, k, scale), limit)
    if fails:
        with pytest.raises(TrialFailed) as failure:
            train(ARCH, ctx)
        assert failure.value.reason == "oom" and "batch_size 16" in failure.value.message
    else:
        assert train(ARCH, ctx)["steps"] == 20
