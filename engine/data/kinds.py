"""Data kinds (``[data] kind = "..."``): each entry's options model and the loader of its raw arrays.

A loader returns ``(x, labels)`` for the whole set; splitting, label encoding and subsampling are shared
(engine/data/loaders.py). Adding a kind = its options model and loader + one ``register`` line below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nasapp.engine.data.options import DataSpec, FileData
from nasapp.engine.registry import Registry


@dataclass(frozen=True)
class DataKind:
    name: str
    description: str
    options: type[DataSpec]
    load: Callable[[Any], tuple[np.ndarray, np.ndarray]]
    standardise: bool = False  # features standardised with the training split's statistics
    # how raw inputs become x: describe(spec, input_shape) -> {"source": ..., "scale": ..., ...}; an export
    # states it so that its model can be fed (engine/data/loaders.py: preprocessing)
    describe: Callable[[Any, tuple[int, ...]], dict[str, Any]] | None = None


class DigitsData(DataSpec):
    kind: Literal["digits"] = "digits"


class HardDigitsData(DataSpec):
    """The digits made harder: 32x32, rotated, shifted, scaled, with distractor strokes and noise (offline)."""

    kind: Literal["hard-digits"] = "hard-digits"
    seed: int = Field(0, ge=0)  # the distortions' seed: the same data set for every job that keeps it
    size: int = Field(32, ge=16, le=128)
    copies: int = Field(1, ge=1, le=10)  # distorted versions of each digit (>1: copies straddle the split)
    noise: float = Field(0.1, ge=0, le=1)  # the Gaussian noise's standard deviation


class NpzData(FileData):
    kind: Literal["npz"] = "npz"


class ImageFolderData(FileData):
    kind: Literal["imagefolder"] = "imagefolder"
    image_size: list[int] | None = None
    grayscale: bool = False


class CsvData(FileData):
    kind: Literal["csv"] = "csv"
    label_column: str = "label"


def _digits(spec: DigitsData) -> tuple[np.ndarray, np.ndarray]:
    from nasapp.engine.data.loaders import load_digits_arrays

    return load_digits_arrays()


def _hard_digits(spec: HardDigitsData) -> tuple[np.ndarray, np.ndarray]:
    from nasapp.engine.data.hard_digits import make_hard_digits

    return make_hard_digits(spec.seed, spec.size, spec.copies, spec.noise)


def _npz(spec: NpzData) -> tuple[np.ndarray, np.ndarray]:
    from nasapp.engine.data.loaders import existing_path, load_npz

    return load_npz(existing_path(spec.path, "npz", want_dir=False))


def _imagefolder(spec: ImageFolderData) -> tuple[np.ndarray, np.ndarray]:
    from nasapp.engine.data.loaders import existing_path, load_imagefolder

    return load_imagefolder(existing_path(spec.path, "imagefolder", want_dir=True), spec.image_size, spec.grayscale)


def _csv(spec: CsvData) -> tuple[np.ndarray, np.ndarray]:
    from nasapp.engine.data.loaders import existing_path, load_csv

    return load_csv(existing_path(spec.path, "csv", want_dir=False), spec.label_column)


def _digits_input(spec: DigitsData, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"source": "sklearn.datasets.load_digits().images (8x8, values 0..16)", "scale": "x / 16",
            "channels": "1 (grayscale)"}


def _hard_digits_input(spec: HardDigitsData, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"source": "nasapp.engine.data.hard_digits.make_hard_digits(seed, size, copies, noise), values in"
                      " [0, 1] as made", "scale": "none", "channels": "1 (grayscale)"}


def _npz_input(spec: NpzData, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"source": "the x array of the .npz file", "scale": "x / 255 when x is uint8, else none"}


def _imagefolder_input(spec: ImageFolderData, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"source": "an image file read with Pillow", "scale": "x / 255",
            "channels": "1 (Pillow mode L, grayscale)" if spec.grayscale else "3, RGB order (Pillow mode RGB)",
            "resize": f"to {shape[1]}x{shape[2]} (height x width), bilinear, when the size differs"}


def _csv_input(spec: CsvData, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"source": f"the numeric columns of the CSV file in file order, without {spec.label_column!r}",
            "scale": "(x - mean) / std"}


DATA_KINDS: Registry[DataKind] = Registry("data kind", "data.kind", default="digits")
DATA_KINDS.register(DataKind("digits", "scikit-learn's bundled 8x8 digits (1x8x8 images, 10 classes)",
                             DigitsData, _digits, describe=_digits_input))
DATA_KINDS.register(DataKind("hard-digits", "the digits made harder, offline: 1x32x32, rotated, shifted, scaled,"
                             " distractor strokes, noise (deterministic from data.seed)", HardDigitsData,
                             _hard_digits, describe=_hard_digits_input))
DATA_KINDS.register(DataKind("npz", "arrays x and y in a .npz file (tabular or images)", NpzData, _npz,
                             describe=_npz_input))
DATA_KINDS.register(DataKind("imagefolder", "one sub-folder of PNG/JPEG images per class", ImageFolderData,
                             _imagefolder, describe=_imagefolder_input))
DATA_KINDS.register(DataKind("csv", "numeric feature columns and a label column", CsvData, _csv,
                             standardise=True, describe=_csv_input))


def data_path(spec: DataSpec) -> Path | None:
    """The file or folder a data set is read from (None for kinds that ship their data)."""
    path = getattr(spec, "path", None)
    return Path(path) if path else None
