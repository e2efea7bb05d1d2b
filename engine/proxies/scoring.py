"""Computing zero-cost proxies: on a built model (:func:`score_model`) or on architectures of a space
(:func:`score_archs`, what a strategy's pre-screen calls).

Determinism: the global torch RNG is seeded with ``seed`` before each model is built and before each proxy,
inside ``torch.random.fork_rng``, so the caller's RNG streams are left as they were and a score depends only on
the architecture, the seed and the batch. ``score_archs(seed=s)`` builds each model exactly as the
classification trainer does for a trial of seed ``s``, so the data-free proxies (synflow, params, flops) agree
with that trial's ``zc_*`` metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasapp.engine.proxies import PROXIES, check_names

BuildFn = Callable[..., nn.Module]
DEFAULT_BATCH_SIZE = 64


def score_model(model: nn.Module, names: Sequence[str], inputs: torch.Tensor, targets: torch.Tensor,
                seed: int) -> dict[str, float]:
    """``{name: value}`` of the named proxies of ``model`` on one batch; ``model`` is not changed."""
    functions = {name: PROXIES.get(name).function() for name in check_names(list(names))}
    values = {}
    with _forked_rng(inputs.device):
        for name, function in functions.items():
            torch.manual_seed(seed)
            values[name] = float(function(model, inputs, targets))
    return values


def synthetic_batch(input_shape: Sequence[int], num_classes: int, batch_size: int = DEFAULT_BATCH_SIZE,
                    seed: int = 0, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch without data: standard-normal inputs and uniform labels, from a generator seeded with
    ``seed`` (for the data-dependent proxies when no real batch is at hand)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=generator)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)
    return x.to(device), y.to(device)


def score_archs(space: str | BuildFn, archs: Sequence[Any], proxy: str, input_shape: Sequence[int],
                num_classes: int, seed: int, *, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                scale: Mapping[str, Any] | None = None, device: str = "cpu") -> list[float]:
    """One proxy's value for each architecture, in order (higher = predicted better for a score).

    ``space`` is a prebuilt space's name or a ``build(arch, input_shape, num_classes, scale)`` function.
    ``batch`` is ``(inputs, targets)``; without one a :func:`synthetic_batch` of ``seed`` is used (the
    data-free proxies read only its shape).
    """
    return [row[proxy] for row in measure_archs(space, archs, [proxy], input_shape, num_classes, seed,
                                                batch=batch, scale=scale, device=device)]


def measure_archs(space: str | BuildFn, archs: Sequence[Any], proxies: Sequence[str],
                  input_shape: Sequence[int], num_classes: int, seed: int, *,
                  batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                  scale: Mapping[str, Any] | None = None, device: str = "cpu") -> list[dict[str, float]]:
    """``{proxy: value}`` for each architecture, in order: :func:`score_archs` for several proxies at once."""
    names = check_names(list(proxies))
    build = resolve_build(space)
    shape = tuple(int(d) for d in input_shape)
    inputs, targets = batch if batch is not None else synthetic_batch(shape, num_classes, seed=seed)
    inputs, targets = inputs.to(device), targets.to(device)
    rows = []
    for arch in archs:
        with _forked_rng(inputs.device):
            torch.manual_seed(seed)
            model = build(arch, shape, int(num_classes), dict(scale or {})).to(device).train()
        rows.append(score_model(model, names, inputs, targets, seed))
    return rows


def resolve_build(space: str | BuildFn) -> BuildFn:
    """The model builder of a prebuilt space named ``space``, or ``space`` itself when it is a function."""
    if isinstance(space, str):
        from nasapp.engine.spaces.prebuilt import get_prebuilt

        return get_prebuilt(space).build
    return space


@contextlib.contextmanager
def _forked_rng(device: torch.device) -> Iterator[None]:
    """Leave the global torch RNG (and this CUDA device's) as it was after the block."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
