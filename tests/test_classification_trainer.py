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
    tmp_path: Path, data: Dataset, stop: Any = None, seed: int = 0, folder: str | None = None,
    resume_from: Path | None = None, **proxy: Any
) -> tuple[TrialContext, list[tuple[int, dict[str, float]]]]:
    reports: list[tuple[int, dict[str, float]]] = []
    ctx = TrialContext(
        trial_id=1,
        number=0,
        seed=seed,
        device="cpu",
        workdir=tmp_path / (folder or f"trial-{seed}"),
        resume_from=resume_from,
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


# ---- training in cycles: checkpoints and continued training ----------------------------------------------------

CYCLE = {"schedule_steps": 120, "eval_every": 20, "ema": 0.9, "optimizer": "adamw"}


def _weights(ctx: TrialContext) -> dict[str, torch.Tensor]:
    return torch.load(ctx.workdir / "model.pt")


def test_a_continued_run_ends_exactly_as_one_longer_run(tmp_path: Path, digits: Dataset) -> None:
    """40 steps, a checkpoint, then on to 90 (mid-epoch, with dropout and EMA): the same weights and figures as
    90 steps in one go, all on a schedule spanning 120."""
    whole, whole_reports = make_ctx(tmp_path, digits, folder="whole", steps=90, **CYCLE)
    expected = train(ARCH, whole)
    first, _ = make_ctx(tmp_path, digits, folder="first", steps=40, checkpoint=True, **CYCLE)
    assert train(ARCH, first)["steps"] == 40 and first.checkpoint_path.is_file()
    second, second_reports = make_ctx(tmp_path, digits, folder="second", steps=90,
                                      resume_from=first.checkpoint_path, **CYCLE)
    result = train(ARCH, second)
    for key in ("accuracy", "loss", "steps", "best_accuracy"):
        assert result[key] == expected[key], key
    assert second_reports == [r for r in whole_reports if r[0] > 40]
    got, want = _weights(second), _weights(whole)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_schedule_spans_full_training_not_the_cycle(tmp_path: Path, digits: Dataset) -> None:
    short = train(ARCH, make_ctx(tmp_path, digits, folder="a", steps=40, **CYCLE)[0])
    decayed = train(ARCH, make_ctx(tmp_path, digits, folder="b", steps=40, **{**CYCLE, "schedule_steps": 40})[0])
    assert short["loss"] != decayed["loss"]  # cosine to zero at step 40 trains differently from 40 of 120


def test_a_checkpoint_of_another_schedule_is_refused(tmp_path: Path, digits: Dataset) -> None:
    first, _ = make_ctx(tmp_path, digits, folder="first", steps=20, checkpoint=True, **CYCLE)
    train(ARCH, first)
    other, _ = make_ctx(tmp_path, digits, folder="other", steps=40, resume_from=first.checkpoint_path,
                        **{**CYCLE, "schedule_steps": 200})
    with pytest.raises(TrialFailed, match="schedule_steps = 120, this run 200"):
        train(ARCH, other)
    missing, _ = make_ctx(tmp_path, digits, folder="m", steps=40, resume_from=tmp_path / "nope.pt", **CYCLE)
    with pytest.raises(TrialFailed, match="no checkpoint"):
        train(ARCH, missing)


def test_schedule_steps_below_steps_is_a_mistake() -> None:
    from pydantic import ValidationError

    from nasapp.engine.trainers.options import ProxySettings

    with pytest.raises(ValidationError, match="must be at least trainer.steps"):
        ProxySettings(steps=100, schedule_steps=50)
