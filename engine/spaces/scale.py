"""The proxy ``scale`` of a prebuilt model: width and depth multipliers and an input resolution.

A scale is a plain dict ``{"width": 1.0, "depth": 1.0, "resolution": None}``; missing keys take these
defaults. ``width`` multiplies every channel count (rounded to a multiple of 8, at least 8), ``depth``
multiplies every layer/cell count (rounded up, at least 1), and ``resolution`` (an int, or None for "as
given") makes the model resize its input to ``resolution x resolution`` first. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nasapp.engine.errors import NasappError

DEFAULT_SCALE: dict[str, Any] = {"width": 1.0, "depth": 1.0, "resolution": None}

CHANNEL_DIVISOR = 8


def normalize_scale(scale: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a complete, checked scale dict; ``None`` or missing keys give the defaults."""
    if scale is None:
        return dict(DEFAULT_SCALE)
    if not isinstance(scale, Mapping):
        raise NasappError(f"scale must be a table with keys width, depth, resolution; got {scale!r}")
    unknown = sorted(set(scale) - set(DEFAULT_SCALE))
    if unknown:
        raise NasappError(f"scale: unknown key(s) {', '.join(map(str, unknown))}; "
                          "allowed keys are width, depth, resolution")
    out = dict(DEFAULT_SCALE)
    for key in ("width", "depth"):
        if key in scale and scale[key] is not None:
            value = scale[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value <= 0:
                raise NasappError(f"scale.{key} must be a positive number; got {value!r}")
            out[key] = float(value)
    resolution = scale.get("resolution")
    if resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise NasappError(f"scale.resolution must be a positive integer or absent; got {resolution!r}")
        out["resolution"] = int(resolution)
    return out


def make_divisible(value: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), never going below 90%
    of ``value`` (the MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def scale_channels(channels: float, width: float) -> int:
    """A channel count multiplied by ``width``, rounded to a multiple of 8 (minimum 8)."""
    return make_divisible(channels * width)


def scale_count(count: int, depth: float) -> int:
    """A layer/cell count multiplied by ``depth``, rounded up (minimum 1)."""
    return max(1, math.ceil(count * depth - 1e-9))


def check_image_shape(input_shape: Any, space_name: str) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)`` positive ints, or a NasappError naming the space."""
    shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
    if shape is None or len(shape) != 3 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise NasappError(f"space '{space_name}' needs image inputs of shape (C, H, W); got {input_shape!r}")
    return shape  # type: ignore[return-value]


def image_size(input_shape: tuple[int, int, int], scale: Mapping[str, Any]) -> tuple[int, int]:
    """The spatial size the model body sees: the resolution when set, else the input's H and W."""
    resolution = scale.get("resolution")
    if resolution:
        return int(resolution), int(resolution)
    return int(input_shape[1]), int(input_shape[2])


def check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise NasappError(f"num_classes must be a positive integer; got {num_classes!r}")
    return num_classes
