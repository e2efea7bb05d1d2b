"""Torch model for the ``nb201`` space: NAS-Bench-201's cell network (Dong & Yang, 2020).

Stem conv3x3 + BN, three stages of N cells (C, 2C, 4C channels) joined by residual reduction blocks, then
BN-ReLU-global pool-linear. Imported lazily by :func:`nasapp.engine.spaces.nb201.build`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nasapp.engine.spaces.layers import init_weights, input_resize

# (target node, source node) of each edge, in the benchmark's order
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


def make_op(op: str, channels: int) -> nn.Module:
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity()
    raise ValueError(f"no module for op {op!r}")  # pragma: no cover - "none" edges are never built


class Cell(nn.Module):
    """A 4-node cell as NAS-Bench-201 builds it: node j is the sum of its incoming edges; node 3 is the output.

    Every edge but ``none`` is built, also one leaving a node that gets no input: the benchmark's network
    builds every edge (``none`` as a module that outputs zeros), so such a node is zero, and a ReLU-Conv-BN
    edge leaving it outputs BN's shift. Leaving those edges out would compute another function and count
    other parameters (4,250 of the 15,625 cells). A node that gets no input, the output included, is zeros.
    """

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges: list[tuple[int, int]] = []
        self.ops = nn.ModuleList()
        for (dst, src), op in zip(EDGES, ops, strict=True):
            if op != "none":
                self.edges.append((dst, src))
                self.ops.append(make_op(op, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        for (dst, src), op in zip(self.edges, self.ops, strict=True):
            source = nodes[src]
            if source is None:  # every edge into it is none: the node is zero
                source = nodes[src] = x * 0.0
            out = op(source)
            current = nodes[dst]
            nodes[dst] = out if current is None else current + out
        result = nodes[3]
        return x * 0.0 if result is None else result


class ResNetBasicBlock(nn.Module):
    """The reduction block between stages: two ReLU-Conv-BN (the first with stride 2) plus a
    avgpool-2x2 + 1x1 conv shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        if stride == 2:
            self.shortcut: nn.Module = nn.Sequential(nn.AvgPool2d(2, stride=2, ceil_mode=True,
                                                                  count_include_pad=False),
                                                     nn.Conv2d(cin, cout, 1, bias=False))
        else:
            self.shortcut = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, ops: Sequence[str], in_channels: int, channels: int, cells_per_stage: int,
                 num_classes: int, size: tuple[int, int], resolution: int | None) -> None:
        super().__init__()
        self.resize = input_resize(resolution)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                # a 1x1 feature map cannot be halved; keep it (only happens for tiny inputs)
                stride = 2 if min(size) > 1 else 1
                size = ((size[0] + stride - 1) // stride, (size[1] + stride - 1) // stride)
                layers.append(ResNetBasicBlock(c, c * 2, stride))
                c *= 2
            layers.extend(Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(self.resize(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))
