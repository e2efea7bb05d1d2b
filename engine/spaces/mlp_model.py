"""Torch model for the ``mlp`` space (imported lazily by :func:`nasapp.engine.spaces.mlp.build`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasapp.engine.spaces.layers import init_weights, input_resize

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def make_norm(norm: str, width: int) -> nn.Module | None:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return None


class MLP(nn.Module):
    def __init__(self, in_features: int, widths: Sequence[int], activation: str, norm: str, dropout: float,
                 num_classes: int, resolution: int | None = None) -> None:
        super().__init__()
        self.resize = input_resize(resolution)
        layers: list[nn.Module] = []
        cin = in_features
        for width in widths:
            layers.append(nn.Linear(cin, width))
            norm_layer = make_norm(norm, width)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            cin = width
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.resize(x), 1)
        return self.classifier(self.body(x))
