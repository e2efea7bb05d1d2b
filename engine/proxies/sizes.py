"""Size "proxies": trainable parameters, multiply-adds (MACs) and FLOPs (2 x MACs). Costs, not scores: none
says higher is better.

Multiply-adds are what the NAS papers count (often calling them FLOPs): for each convolution ``output
elements x (in_channels / groups) x kernel area``, for each linear layer ``output elements x in_features``;
biases, batch norm, pooling, activations and additions count nothing. They are counted with forward hooks over one input
(batch of one) in eval mode, so only the layers a forward pass actually runs count.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd


def params(model: nn.Module, inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> float:
    """The number of trainable parameters (``requires_grad``); the batch is not used."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


def macs(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """Multiply-adds of one forward pass of ``inputs[:1]`` (see the module docstring)."""
    return float(count_macs(model, inputs[:1]))


def flops(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """Two floating-point operations per multiply-add: 2 x ``macs``."""
    return 2.0 * macs(model, inputs)


def layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds of one call of a conv or linear ``module`` that produced ``output``; 0 for other layers."""
    if isinstance(module, _ConvNd):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-adds of one eval-mode forward pass of ``example_input`` (its batch size counts), on a copy."""
    net = copy.deepcopy(model).eval()
    total = 0

    def add(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += layer_macs(module, output)

    hooks = [m.register_forward_hook(add) for m in net.modules() if isinstance(m, _ConvNd | nn.Linear)]
    try:
        with torch.no_grad():
            net(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    return total
