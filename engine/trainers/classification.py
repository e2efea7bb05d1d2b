"""The prebuilt classification trainer: ``train(arch, ctx) -> dict``.

The whole data set sits on the trial's device as tensors; mini-batches are drawn by indexing with a seeded
permutation per epoch. SGD with momentum or AdamW with a per-step cosine decay to zero at the
last proxy step, optional EMA of the weights, gradient clipping, bf16 autocast and channels-last on CUDA.
Validation runs every ``eval_every`` steps and at the end and is streamed with ``ctx.report``.

A CUDA out-of-memory error retries the trial once with half the batch size, then fails it with reason
``oom``; a non-finite loss fails it with reason ``nan``. The trained weights (the EMA weights when ``ema``
is on, since those are the ones evaluated) are saved to ``ctx.workdir / "model.pt"`` as CPU tensors.

Training in cycles: the cosine schedule spans ``schedule_steps`` (default ``steps``), so a cycle that stops at
``steps`` short of it can be continued. With ``trainer.checkpoint = true`` the trainer saves
``ctx.checkpoint_path`` at the end; a later trial given that file as ``ctx.resume_from`` (and a larger
``steps``, the same ``schedule_steps`` and batch size) continues from it, and ends exactly as one run of its
``steps`` would have.
With ``trainer.zero_cost``, the named zero-cost proxies (:mod:`nasapp.engine.proxies`) of the untrained model
are scored on the first training batch and returned as ``zc_<name>`` metrics.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, ValidationError

from nasapp.engine.errors import NasappError, TrialFailed
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.proxies.scoring import score_model
from nasapp.engine.trainers.options import ProxySettings

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LR = {"sgd": 0.05, "adamw": 1e-3}
NAN_CHECK_EVERY = 10  # steps between host reads of the loss (one device sync each)


class Settings(ProxySettings):
    """The job's proxy settings (``[trainer]``, validated by the spec) as this trainer runs them: ``lr`` resolved
    to the optimiser's default when unset, and the evaluation batch size (halved with the batch on an OOM)."""

    lr: float = Field(0.05, gt=0)  # type: ignore[assignment]
    eval_batch_size: int = Field(1024, gt=0)

    @classmethod
    def from_proxy(cls, proxy: dict[str, Any]) -> Settings:
        proxy = {k: v for k, v in proxy.items() if v is not None}
        optimizer = str(proxy.get("optimizer", "sgd")).lower()
        if optimizer not in OPTIMIZERS:
            raise NasappError(f"trainer.optimizer: {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        try:
            return cls.model_validate({"lr": DEFAULT_LR[optimizer], **proxy, "optimizer": optimizer})
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise NasappError(f"trainer.{where}: {first['msg']} (got {first['input']!r})") from None


class Ema:
    """Exponential moving average of a model's weights with the warm-up ``min(decay, (1+t)/(10+t))``."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values(), strict=True))
        self._floats = [(e, m) for e, m in pairs if e.is_floating_point()]
        self._others = [(e, m) for e, m in pairs if not e.is_floating_point()]

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_([e for e, _ in self._floats], [m for _, m in self._floats], 1.0 - decay)
        for ema_tensor, model_tensor in self._others:
            ema_tensor.copy_(model_tensor)


@dataclass
class Run:
    """One training attempt: the model, its optimiser and the data on the device."""

    settings: Settings
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    ema: Ema | None
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    generator: torch.Generator
    batch_size: int
    use_amp: bool
    perm: torch.Tensor | None = None

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else self.model

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.use_amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The mini-batch for ``step``: a seeded permutation per epoch, the last partial batch dropped."""
        per_epoch = len(self.x_train) // self.batch_size
        pos = step % per_epoch
        if pos == 0:
            self.perm = torch.randperm(len(self.x_train), generator=self.generator).to(self.device)
        assert self.perm is not None
        idx = self.perm[pos * self.batch_size : (pos + 1) * self.batch_size]
        return self.x_train[idx], self.y_train[idx]


def train(arch: Any, ctx: TrialContext) -> dict[str, Any]:
    """Train ``arch`` on ``ctx.data`` with the proxy settings in ``ctx.proxy``; return its final metrics."""
    if ctx.data is None or ctx.build is None:
        raise NasappError(
            "the prebuilt classification trainer needs a [data] table and a prebuilt [space] with a model "
            "builder; use a custom trainer (trainer.ref) otherwise"
        )
    settings = Settings.from_proxy(ctx.proxy)
    started = time.perf_counter()
    try:
        return _attempt(arch, ctx, settings, started)
    except torch.cuda.OutOfMemoryError:
        pass  # leave the except block first so the failed attempt's tensors can be freed
    _release_cuda_memory()
    if settings.batch_size < 2:
        raise TrialFailed("oom", "out of GPU memory with batch_size 1; lower the model scale")
    half = settings.model_copy(update={"batch_size": settings.batch_size // 2,
                                       "eval_batch_size": max(1, settings.eval_batch_size // 2)})
    try:
        return _attempt(arch, ctx, half, started)
    except torch.cuda.OutOfMemoryError:
        pass
    _release_cuda_memory()
    raise TrialFailed(
        "oom",
        f"out of GPU memory even with batch_size {half.batch_size}; lower trainer.batch_size or the scale",
    )


def _attempt(arch: Any, ctx: TrialContext, settings: Settings, started: float) -> dict[str, Any]:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run = setup(arch, ctx, settings)
    start, best = continue_from(run, ctx.resume_from) if ctx.resume_from is not None else (0, 0.0)
    zero_cost = zero_cost_metrics(run, ctx.seed) if start == 0 else {}
    losses = torch.zeros(settings.steps, device=run.device)
    done, checked, last_eval = start, start, -1
    accuracy = loss = 0.0
    for step in range(start, settings.steps):
        if ctx.should_stop():
            break
        _set_lr(run, step)
        losses[step] = train_step(run, *run.batch(step))
        done = step + 1
        if run.ema is not None:
            run.ema.update(step)
        if done % NAN_CHECK_EVERY == 0 or done % settings.eval_every == 0:
            checked = _check_finite(losses, checked, done)
        if done % settings.eval_every == 0 and done < settings.steps:
            accuracy, loss = _evaluate_and_report(run, ctx, done)
            best, last_eval = max(best, accuracy), done
    _check_finite(losses, checked, done)
    if last_eval != done:
        accuracy, loss = _evaluate_and_report(run, ctx, done)
        best = max(best, accuracy)
    _save_weights(run.eval_model, ctx)
    if settings.checkpoint:
        save_checkpoint(run, done, best, ctx.checkpoint_path)
    ctx.save_model(run.eval_model, run.x_val[:1])
    extra = {"gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20} if run.device.type == "cuda" else {}
    return {
        **extra,
        "accuracy": accuracy,
        "loss": loss,
        "params": sum(p.numel() for p in run.model.parameters()),
        "train_time_s": time.perf_counter() - started,
        "steps": done,
        "best_accuracy": best,
        **zero_cost,
        **({"continued_from_step": start} if ctx.resume_from is not None else {}),
    }


def setup(arch: Any, ctx: TrialContext, settings: Settings) -> Run:
    """Seed every RNG, build the model and its optimiser, and put the whole data set on the device."""
    _seed_everything(ctx.seed)
    device = torch.device(ctx.device)
    data = ctx.data
    assert ctx.build is not None
    model = ctx.build(arch, tuple(data.input_shape), int(data.num_classes), ctx.scale)
    channels_last = settings.channels_last and device.type == "cuda" and len(data.input_shape) == 3
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format).train()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    def to_device(array: np.ndarray, features: bool) -> torch.Tensor:
        tensor = torch.from_numpy(array).to(device)
        return tensor.contiguous(memory_format=memory_format) if features and channels_last else tensor

    n_train = len(data.x_train)
    return Run(
        settings=settings,
        device=device,
        model=model,
        optimizer=_make_optimizer(model, settings),
        ema=Ema(model, settings.ema) if settings.ema > 0 else None,
        x_train=to_device(data.x_train, True),
        y_train=to_device(data.y_train, False),
        x_val=to_device(data.x_val, True),
        y_val=to_device(data.y_val, False),
        generator=torch.Generator().manual_seed(ctx.seed),
        batch_size=max(1, min(settings.batch_size, n_train)),
        use_amp=settings.amp and device.type == "cuda",
    )


def zero_cost_metrics(run: Run, seed: int) -> dict[str, float]:
    """The ``trainer.zero_cost`` proxies of the untrained model on the first training batch, as ``zc_<name>``.

    The batch generator's state is put back, and the proxies fork the global RNG and work on copies, so training
    runs the same with or without them. A value that is not finite (a degenerate network, e.g. NASWOT of a
    network whose every cell is ``none``) is left out: a trial's final metrics must be finite numbers.
    """
    if not run.settings.zero_cost:
        return {}
    state = run.generator.get_state()
    inputs, targets = run.batch(0)
    run.generator.set_state(state)
    values = score_model(run.model, run.settings.zero_cost, inputs, targets, seed)
    return {f"zc_{name}": value for name, value in values.items() if math.isfinite(value)}


def train_step(run: Run, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """One optimiser step on a mini-batch; returns the (detached, on-device) training loss."""
    with run.autocast():
        loss = F.cross_entropy(run.model(xb), yb)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if run.settings.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.settings.grad_clip)
    run.optimizer.step()
    return loss.detach()


@torch.no_grad()
def evaluate(run: Run) -> tuple[float, float]:
    """Validation accuracy (0..1) and mean cross-entropy of the evaluated model (EMA weights when on)."""
    model = run.eval_model
    model.eval()
    correct = torch.zeros((), device=run.device, dtype=torch.int64)
    total_loss = torch.zeros((), device=run.device)
    size = run.settings.eval_batch_size
    for start in range(0, len(run.x_val), size):
        xb, yb = run.x_val[start : start + size], run.y_val[start : start + size]
        with run.autocast():
            logits = model(xb)
        total_loss += F.cross_entropy(logits.float(), yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
    run.model.train()
    n = max(1, len(run.x_val))
    return correct.item() / n, total_loss.item() / n


def _evaluate_and_report(run: Run, ctx: TrialContext, step: int) -> tuple[float, float]:
    accuracy, loss = evaluate(run)
    if not math.isfinite(loss):
        raise TrialFailed("nan", f"validation loss became {loss} at step {step}; lower trainer.lr")
    ctx.report(step, accuracy=accuracy, loss=loss)
    return accuracy, loss


def _make_optimizer(model: torch.nn.Module, s: Settings) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def _set_lr(run: Run, step: int) -> None:
    """Cosine decay from ``lr`` at step 0 towards zero at the end of the schedule (``schedule_steps``, by
    default the last proxy step)."""
    lr = 0.5 * run.settings.lr * (1.0 + math.cos(math.pi * step / schedule_length(run.settings)))
    for group in run.optimizer.param_groups:
        group["lr"] = lr


def schedule_length(settings: Settings) -> int:
    return settings.schedule_steps or settings.steps


_CHECKPOINT_FORMAT = 1


def save_checkpoint(run: Run, step: int, best: float, path: Path) -> None:
    """Everything training needs to go on from ``step`` exactly as one longer run would: weights, optimiser,
    EMA, the batch order (generator and this epoch's permutation) and the global torch RNG (dropout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": _CHECKPOINT_FORMAT, "step": step, "best_accuracy": best,
        "schedule_steps": schedule_length(run.settings), "batch_size": run.batch_size,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "ema": run.ema.model.state_dict() if run.ema is not None else None,
        "generator": run.generator.get_state(), "perm": run.perm.cpu() if run.perm is not None else None,
        "torch_rng": torch.get_rng_state(),
    }
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)  # a crash mid-save leaves the previous checkpoint, never half of one


def continue_from(run: Run, path: Path) -> tuple[int, float]:
    """Load the checkpoint at ``path`` into ``run``; returns its step and best accuracy so far. A checkpoint
    of another schedule or batch size would not continue the same run: the trial fails saying so."""
    if not path.is_file():
        raise TrialFailed("error", f"no checkpoint {path} to continue from")
    state = torch.load(path, map_location=run.device, weights_only=False)
    expected = {"format": _CHECKPOINT_FORMAT, "schedule_steps": schedule_length(run.settings),
                "batch_size": run.batch_size}
    for key, value in expected.items():
        if state.get(key) != value:
            raise TrialFailed("error", f"checkpoint {path} has {key} = {state.get(key)}, this run {value}:"
                                       " continuing would not give the result of one longer run")
    if state["step"] > run.settings.steps:
        raise TrialFailed("error", f"checkpoint {path} is at step {state['step']}, past trainer.steps ="
                                   f" {run.settings.steps}")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.ema is not None and state["ema"] is not None:
        run.ema.model.load_state_dict(state["ema"])
    run.generator.set_state(state["generator"])
    run.perm = state["perm"].to(run.device) if state["perm"] is not None else None
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), float(state["best_accuracy"])


def _check_finite(losses: torch.Tensor, start: int, end: int) -> int:
    """Fail the trial if a training loss in steps ``start..end`` is not finite; return ``end``."""
    if end > start:
        bad = (~torch.isfinite(losses[start:end])).nonzero()
        if len(bad):
            step = start + int(bad[0, 0]) + 1
            value = "nan" if torch.isnan(losses[step - 1]) else "inf"
            raise TrialFailed(
                "nan", f"loss became {value} at step {step}; lower trainer.lr or set trainer.grad_clip"
            )
    return end


def _save_weights(model: torch.nn.Module, ctx: TrialContext) -> None:
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, ctx.workdir / "model.pt")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _release_cuda_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
