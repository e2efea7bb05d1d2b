"""The zero-cost scores (higher = predicted to train better), after the papers' reference code.

Each function takes ``(model, inputs, targets)`` and works on its own deep copy, so the caller's weights,
batch-norm statistics, gradients and train/eval mode stay as they were. References: SamsungLabs/zero-cost-nas
(``foresight/pruners/measures``: synflow, grad_norm, jacob_cov) and BayesWatch/nas-without-training
(``score_networks.py``, the ``hook_logdet`` score).
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

JACOB_COV_K = 1e-5  # the reference's eigenvalue offset


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The layers the reference scores sum over: convolutions and linear layers (their weights only)."""
    return [m for m in model.modules() if isinstance(m, _ConvNd | nn.Linear)]


def synflow(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """SynFlow: data-free; only ``inputs``' shape is read.

    As the reference does for NAS-Bench-201: batch norm switched off (its forward made the identity), every
    parameter replaced by its absolute value, float64 (the product of many layers overflows float32), one
    all-ones input, ``R = sum(output)``; the score is ``sum |w * dR/dw|`` over conv/linear weights. The copy is
    put in eval mode so that dropout, the only layer left that differs by mode, does not make it random.
    """
    net = copy.deepcopy(model).double().eval()
    for module in net.modules():
        if isinstance(module, _BatchNorm):
            module.forward = types.MethodType(lambda self, x: x, module)  # type: ignore[method-assign]
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    net.zero_grad(set_to_none=True)
    net(ones).sum().backward()
    return _sum_over_weights(net, lambda w: (w * w.grad).abs().sum())


def grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over conv/linear layers of the L2 norm of the weight gradient of the batch's mean cross-entropy
    (train mode, batch norm on, as the reference)."""
    net = copy.deepcopy(model).float().train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(inputs.float()), targets).backward()
    return _sum_over_weights(net, lambda w: w.grad.norm())


def naswot(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """NASWOT: ``log|det K|`` where ``K[i, j]`` counts the ReLU units on which inputs ``i`` and ``j`` agree
    (both active or both inactive), summed over every ``nn.ReLU`` module (a unit is active when the ReLU's
    input is > 0). Train mode, as the reference. ReLUs called as functions (``F.relu``) are not seen; a
    model without ``nn.ReLU`` modules scores ``-inf``, as does one whose K is singular."""
    net = copy.deepcopy(model).float().train()
    n = inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

    def count(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        codes = (args[0].detach().reshape(n, -1) > 0).float()
        agree = codes @ codes.t() + (1.0 - codes) @ (1.0 - codes).t()
        kernel.add_(agree.double())

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(inputs.float())
    finally:
        for hook in hooks:
            hook.remove()
    sign, logdet = np.linalg.slogdet(kernel.cpu().numpy())
    return float(logdet) if sign != 0 else -math.inf


def jacob_cov(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Jacobian covariance (NASWOT v1): the Jacobians ``J_i = d sum(f(x_i)) / d x_i`` of the batch, their
    correlation matrix's eigenvalues ``v``, score ``-sum(log(v + k) + 1 / (v + k))`` with ``k = 1e-5``
    (train mode, as the reference). A network whose Jacobians are constant (the correlation is undefined)
    scores ``-inf`` where the reference gives NaN: it cannot tell its inputs apart."""
    net = copy.deepcopy(model).float().train().requires_grad_(False)  # only the input's gradient is needed
    x = inputs.detach().float().clone().requires_grad_(True)
    out = net(x)
    out.backward(torch.ones_like(out))
    assert x.grad is not None
    jacobians = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.all(np.isfinite(corr)):
        return -math.inf
    values = np.linalg.eigvalsh(corr)
    score = -float(np.sum(np.log(values + JACOB_COV_K) + 1.0 / (values + JACOB_COV_K)))
    return score if math.isfinite(score) else -math.inf


def _sum_over_weights(net: nn.Module, metric: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``sum(metric(weight))`` over conv/linear weights that got a gradient, as one float."""
    total = torch.zeros((), dtype=torch.float64)
    for layer in weighted_layers(net):
        weight = layer.weight
        if weight.grad is not None:
            total += metric(weight).detach().double().cpu()
    return float(total)
