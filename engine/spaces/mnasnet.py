"""The ``mnasnet`` prebuilt: MnasNet's factorized hierarchical search space (Tan et al., 2019).

Seven blocks, each searched independently (its layers share the block's choices):

- ``op``: ``conv`` (regular conv), ``dwconv`` (depthwise-separable conv), ``mbconv1``/``mbconv3``/``mbconv6``
  (inverted residual with expansion 1, 3 or 6)
- ``kernel``: 3, 5 or 7
- ``se``: squeeze-and-excitation ratio 0.0 (off) or 0.25
- ``skip``: ``none`` or ``identity`` (the residual is only added where the stride is 1 and the channel
  count is unchanged, as in MnasNet)
- ``filters``: 0.75, 1.0 or 1.25 times the block's base width
- ``layer_delta``: -1, 0 or +1 layers on the block's base layer count (at least one layer)

Base widths, layer counts and strides are MobileNetV2's (MnasNet-B1's backbone), with a stride-2 stem conv
(32 channels) and a head of 1x1 conv (1280), global pool, dropout 0.2 and a linear classifier.

The model is built for its input size: a stride of 2 is skipped once the feature map is 2x2 or smaller (so
8x8 digits keep a 2x2 map to the end), and a kernel larger than the feature map can use is trimmed to the
taps that can reach a pixel (the same function, less work: a 7x7 depthwise kernel on a 2x2 map is 3x3).
Torch-free: the model code is in :mod:`nasapp.engine.spaces.mnasnet_model`, imported only by :func:`build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasapp.engine.spaces.core import choice, repeat, space
from nasapp.engine.spaces.scale import check_image_shape, check_num_classes, image_size, normalize_scale

NAME = "mnasnet"
DESCRIPTION = ("MnasNet factorized hierarchical space: 7 blocks x op/kernel/SE/skip/filters/layers "
               "(images, ~1.3e19 archs)")

OPS = ["conv", "dwconv", "mbconv1", "mbconv3", "mbconv6"]
KERNELS = [3, 5, 7]
SE_RATIOS = [0.0, 0.25]
SKIPS = ["none", "identity"]
FILTER_MULTIPLIERS = [0.75, 1.0, 1.25]
LAYER_DELTAS = [-1, 0, 1]

BASE_WIDTHS = (16, 24, 40, 80, 96, 192, 320)
BASE_LAYERS = (1, 2, 3, 4, 2, 3, 1)
BASE_STRIDES = (1, 2, 2, 2, 1, 2, 1)

SPACE = space({
    "blocks": repeat({
        "op": choice(OPS),
        "kernel": choice(KERNELS),
        "se": choice(SE_RATIOS),
        "skip": choice(SKIPS),
        "filters": choice(FILTER_MULTIPLIERS),
        "layer_delta": choice(LAYER_DELTAS),
    }, times=len(BASE_WIDTHS)),
})


def _block(op: str, kernel: int, layer_delta: int, skip: str = "identity", se: float = 0.0,
           filters: float = 1.0) -> dict[str, Any]:
    return {"op": op, "kernel": kernel, "se": se, "skip": skip, "filters": filters, "layer_delta": layer_delta}


# MnasNet-A1 as the paper built it (Tan et al. 2019, fig. 7): the same blocks as ``mnasnet-a1-closest`` but 112
# and 160 channels in blocks 5 and 6, which no filter multiplier of this space reaches. Built with
# ``build_mnasnet(..., A1_WIDTHS, ...)`` it has 3,887,038 parameters and 311,579,072 MACs at 224x224 with 1,000
# classes (the paper: 3.9 M, 312 M); tests/test_baselines.py checks both.
A1_WIDTHS = (16, 24, 40, 80, 112, 160, 320)

# Named reference architectures of the space (``[search] baseline``, ``nasapp latency --baseline``):
# - mnasnet-b1: torchvision's mnasnet1_0 exactly: 4,383,312 parameters, 314,415,872 MACs at 224x224, 1,000
#   classes (the paper and torchvision: 4.4 M, 315 M / 0.31 G).
# - mnasnet-a1-closest: MnasNet-A1's ops, kernels, SE and layers with the filter multipliers nearest its widths
#   (1.25 x 96 = 120 for 112, 0.75 x 192 = 144 for 160): 3,720,794 parameters (-4.3% against A1's 3,887,038),
#   309,884,048 MACs (-0.5%). The other multiplier pairs miss by 6.4% or more.
BASELINES: dict[str, Any] = {
    "mnasnet-b1": {"blocks": [
        _block("dwconv", 3, 0, skip="none"), _block("mbconv3", 3, 1), _block("mbconv3", 5, 0),
        _block("mbconv6", 5, -1), _block("mbconv6", 3, 0), _block("mbconv6", 5, 1), _block("mbconv6", 3, 0),
    ]},
    "mnasnet-a1-closest": {"blocks": [
        _block("dwconv", 3, 0, skip="none"), _block("mbconv6", 3, 0), _block("mbconv3", 5, 0, se=0.25),
        _block("mbconv6", 3, 0), _block("mbconv6", 3, 0, se=0.25, filters=1.25),
        _block("mbconv6", 5, 0, se=0.25, filters=0.75), _block("mbconv6", 3, 0),
    ]},
}


def build(arch: Any, input_shape: Any, num_classes: int, scale: Mapping[str, Any] | None = None):
    """Build the torch model for ``arch`` on ``(C, H, W)`` inputs; see :mod:`nasapp.engine.spaces.scale`."""
    arch = SPACE.canonical(arch)
    shape = check_image_shape(input_shape, NAME)
    num_classes = check_num_classes(num_classes)
    scale = normalize_scale(scale)
    from nasapp.engine.spaces.mnasnet_model import build_mnasnet

    return build_mnasnet(arch, shape[0], image_size(shape, scale), num_classes, scale,
                         BASE_WIDTHS, BASE_LAYERS, BASE_STRIDES)
