"""The ``mlp`` prebuilt: a multilayer perceptron for tabular data (and flattened images).

An architecture lists the hidden layers' widths (1 to 4 layers) and the shared activation, normalization and
dropout::

    {"widths": [128, 64], "activation": "gelu", "norm": "layer", "dropout": 0.1}

Each hidden layer is Linear -> norm -> activation -> dropout; a final Linear gives the class scores. Inputs of
shape ``(F,)`` are used as they are; image inputs ``(C, H, W)`` are flattened (after the optional resize).
Torch-free: the model code is in :mod:`nasapp.engine.spaces.mlp_model`, imported only by :func:`build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.spaces.core import choice, repeat, space
from nasapp.engine.spaces.scale import check_num_classes, normalize_scale, scale_channels, scale_count

NAME = "mlp"
DESCRIPTION = ("MLP for tabular data (or flattened images): 1-4 layers x width, activation, norm, dropout "
               "(16,320 archs)")

WIDTHS = [32, 64, 128, 256]
ACTIVATIONS = ["relu", "gelu", "silu", "tanh"]
NORMS = ["none", "batch", "layer"]
DROPOUTS = [0.0, 0.1, 0.2, 0.3]
MAX_LAYERS = 4

SPACE = space({
    "widths": repeat(choice(WIDTHS), min=1, max=MAX_LAYERS),
    "activation": choice(ACTIVATIONS),
    "norm": choice(NORMS),
    "dropout": choice(DROPOUTS),
})


def scaled_widths(widths: list[int], scale: Mapping[str, Any]) -> list[int]:
    """Hidden widths after the scale: each width times ``scale.width`` (multiple of 8), and the layer list
    stretched or shrunk to ``ceil(len x scale.depth)`` layers (each layer repeated or kept in order)."""
    n = scale_count(len(widths), scale["depth"])
    return [scale_channels(widths[i * len(widths) // n], scale["width"]) for i in range(n)]


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
    if shape is None or len(shape) not in (1, 3) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise NasappError(f"space 'mlp' needs inputs of shape (F,) or (C, H, W); got {input_shape!r}")
    return shape


def build(arch: Any, input_shape: Any, num_classes: int, scale: Mapping[str, Any] | None = None):
    """Build the MLP for ``arch``; ``scale.resolution`` resizes image inputs and is ignored for ``(F,)``."""
    arch = SPACE.canonical(arch)
    shape = _check_shape(input_shape)
    num_classes = check_num_classes(num_classes)
    scale = normalize_scale(scale)
    from nasapp.engine.spaces.mlp_model import MLP

    resolution = scale["resolution"] if len(shape) == 3 else None
    if len(shape) == 3:
        height, width = (resolution, resolution) if resolution else shape[1:]
        in_features = shape[0] * height * width
    else:
        in_features = shape[0]
    return MLP(in_features, scaled_widths(list(arch["widths"]), scale), arch["activation"], arch["norm"],
               float(arch["dropout"]), num_classes, resolution)
