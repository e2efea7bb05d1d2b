"""Torch model for the ``mnasnet`` space: stem, seven searched blocks, head.

Imported lazily by :func:`nasapp.engine.spaces.mnasnet.build`. Only Conv/BN/ReLU/Sigmoid/pooling/Linear and an
optional input Resize, so every model exports to ONNX and runs in channels_last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasapp.engine.spaces.layers import init_weights, input_resize
from nasapp.engine.spaces.scale import scale_channels, scale_count

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
HEAD_DROPOUT = 0.2


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global mean, two small linear layers, sigmoid gate per channel."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Linear(channels, squeeze)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Linear(squeeze, channels)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate(self.expand(self.act(self.reduce(x.mean((2, 3))))))
        return x * w[:, :, None, None]


class Layer(nn.Module):
    """One layer of a block: ``conv`` | ``dwconv`` | ``mbconv{1,3,6}``, optional SE and identity skip."""

    def __init__(self, op: str, cin: int, cout: int, kernel: int, stride: int, se: float,
                 skip: str) -> None:
        super().__init__()
        squeeze = max(1, int(cin * se)) if se > 0 else 0
        layers: list[nn.Module] = []
        if op == "conv":
            layers.append(conv_bn(cin, cout, kernel, stride))
            if squeeze:
                layers.append(SqueezeExcite(cout, squeeze))
        elif op == "dwconv":
            # depthwise-separable convolution (MobileNetV1 style: both convolutions followed by ReLU)
            layers.append(conv_bn(cin, cin, kernel, stride, groups=cin))
            if squeeze:
                layers.append(SqueezeExcite(cin, squeeze))
            layers.append(conv_bn(cin, cout, 1))
        elif op.startswith("mbconv"):
            # inverted residual (MobileNetV2): 1x1 expand, depthwise, SE, linear 1x1 projection
            hidden = cin * int(op[len("mbconv"):])
            if hidden != cin:
                layers.append(conv_bn(cin, hidden, 1))
            layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden))
            if squeeze:
                layers.append(SqueezeExcite(hidden, squeeze))
            layers.append(conv_bn(hidden, cout, 1, relu=False))
        else:  # pragma: no cover - the space validates ops before building
            raise ValueError(f"unknown op {op!r}")
        self.body = nn.Sequential(*layers)
        self.residual = skip == "identity" and stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


class MnasNet(nn.Module):
    def __init__(self, stem: nn.Module, blocks: nn.Sequential, head: nn.Module, classifier: nn.Module,
                 resize: nn.Module) -> None:
        super().__init__()
        self.resize = resize
        self.stem = stem
        self.blocks = blocks
        self.head = head
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(self.resize(x))))
        return self.classifier(torch.flatten(x, 1))


def _stride(stride: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """The stride actually used, and the feature size after it: a stride of 2 is dropped once the feature
    map is already 2 pixels or less, so small inputs (8x8 digits) never shrink below 2x2."""
    if stride > 1 and min(size) <= 2:
        stride = 1
    return stride, ((size[0] + stride - 1) // stride, (size[1] + stride - 1) // stride)


def _kernel(kernel: int, size: tuple[int, int]) -> int:
    """The kernel actually built: on an s x s feature map (zero padding kernel // 2) only the central
    (2s - 1) x (2s - 1) taps ever touch a pixel, the rest only see padding; trimming them gives the same
    function for this input size with less work (a 7x7 kernel on a 2x2 map is built as 3x3)."""
    return min(kernel, 2 * max(size) - 1)


def build_mnasnet(arch: Mapping[str, Any], in_channels: int, size: tuple[int, int], num_classes: int,
                  scale: Mapping[str, Any], base_widths: Sequence[int], base_layers: Sequence[int],
                  base_strides: Sequence[int]) -> MnasNet:
    width, depth = float(scale["width"]), float(scale["depth"])
    stem_ch = scale_channels(STEM_CHANNELS, width)
    stride, size = _stride(2, size)
    stem = conv_bn(in_channels, stem_ch, 3, stride)
    cin = stem_ch
    blocks: list[nn.Module] = []
    for block, base_w, base_n, base_s in zip(arch["blocks"], base_widths, base_layers, base_strides,
                                             strict=True):
        cout = scale_channels(base_w * float(block["filters"]), width)
        n = scale_count(max(1, base_n + int(block["layer_delta"])), depth)
        layers: list[nn.Module] = []
        for i in range(n):
            kernel = _kernel(int(block["kernel"]), size)
            stride, size = _stride(base_s if i == 0 else 1, size)
            layers.append(Layer(block["op"], cin, cout, kernel, stride, float(block["se"]), block["skip"]))
            cin = cout
        blocks.append(nn.Sequential(*layers))
    head_ch = scale_channels(HEAD_CHANNELS, width)
    head = nn.Sequential(conv_bn(cin, head_ch, 1), nn.AdaptiveAvgPool2d(1))
    classifier = nn.Sequential(nn.Dropout(HEAD_DROPOUT), nn.Linear(head_ch, num_classes))
    model = MnasNet(stem, nn.Sequential(*blocks), head, classifier, input_resize(scale.get("resolution")))
    init_weights(model)
    return model
