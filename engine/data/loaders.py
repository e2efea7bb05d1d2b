"""Load a job's ``[data]`` table into in-memory arrays with a seeded, stratified train/validation split.

``load_dataset(spec, seed)`` returns a ``Dataset``: float32 features, int64 labels 0..K-1. Four kinds:

- ``digits``: scikit-learn's bundled 8x8 digits (no download), as (1, 8, 8) images in [0, 1].
- ``npz``: arrays ``x`` and ``y``; ``x`` of shape (N, F) is tabular, (N, H, W) becomes (N, 1, H, W),
  (N, C, H, W) is kept. ``uint8`` features are scaled to [0, 1]; other dtypes are taken as they are.
- ``imagefolder``: one sub-folder per class of PNG/JPEG files, resized, RGB (or grayscale), in [0, 1], CHW.
- ``csv``: numeric feature columns plus a label column; features standardised with train-split statistics.

``data_fraction`` < 1 keeps a class-balanced share of the training split (a proxy task); validation is whole.

Labels are class names or integers: an empty, missing (NaN) or fractional label is refused, never made a class
of its own. A data set needs ``MIN_EXAMPLES`` examples and ``MIN_PER_CLASS`` of every class, so that the split
leaves every class at least one example to train on and one to validate on.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from nasapp.engine.data.kinds import DATA_KINDS
from nasapp.engine.data.options import DataSpec
from nasapp.engine.errors import NasappError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_EXAMPLES = 10  # in all
MIN_PER_CLASS = 2  # one to train on, one to validate on
_MISSING = ("", "nan")  # label texts that mean "no label" (pandas writes a missing value as "" or "nan")


@dataclass
class Dataset:
    """A classification data set split into training and validation arrays."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: list[str]
    kind: str
    # how raw inputs became x: what a user of an exported model must do to feed it (see preprocessing())
    preprocessing: dict[str, Any] | None = None


def load_dataset(spec: DataSpec | Mapping[str, Any], seed: int) -> Dataset:
    """Load the data set that ``spec`` (the job's ``[data]`` table) describes and split it by ``seed``."""
    spec = data_options(spec)
    kind = DATA_KINDS.get(spec.kind)
    x, labels = kind.load(spec)
    y, class_names = encode_labels(labels)
    check_sizes(y, class_names)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = stratified_split(y, spec.val_fraction, rng)
    if spec.data_fraction < 1.0:
        train_idx = subsample(train_idx, y, spec.data_fraction, rng)
    x_train, x_val = x[train_idx], x[val_idx]
    stats = None
    if kind.standardise:
        x_train, x_val, stats = _standardise(x_train, x_val)
    return Dataset(
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=y[train_idx],
        x_val=np.ascontiguousarray(x_val, dtype=np.float32),
        y_val=y[val_idx],
        num_classes=len(class_names),
        input_shape=tuple(int(d) for d in x.shape[1:]),
        class_names=class_names,
        kind=spec.kind,
        preprocessing=preprocessing(spec, tuple(int(d) for d in x.shape[1:]), stats),
    )


def preprocessing(spec: DataSpec, input_shape: tuple[int, ...], stats: dict[str, list[float]] | None
                  ) -> dict[str, Any]:
    """How raw inputs of this data kind became the float32 arrays the model was trained on: what an exported
    model must be fed (report.json and the export's README state it). The kind says its part (``describe``)."""
    layout = "NCHW" if len(input_shape) == 3 else "NF"
    out: dict[str, Any] = {"kind": spec.kind, "dtype": "float32", "layout": layout,
                           "input_shape": list(input_shape), "mean": None, "std": None}
    describe = DATA_KINDS.get(spec.kind).describe
    out.update(describe(spec, input_shape) if describe is not None else
               {"source": f"data kind {spec.kind!r}", "scale": "as its loader makes it"})
    if stats is not None:
        out.update(stats)
    return out


def data_options(table: DataSpec | Mapping[str, Any]) -> DataSpec:
    """A ``[data]`` table as its kind's typed options (a plain table may carry keys of other kinds: dropped)."""
    if isinstance(table, DataSpec):
        return table
    kind = DATA_KINDS.get(table.get("kind", DATA_KINDS.default))
    known = {k: v for k, v in table.items() if k in kind.options.model_fields}
    try:
        return kind.options.model_validate(known)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise NasappError(f"data.{where}: {first['msg']} (got {first['input']!r})") from None


# ---------------------------------------------------------------- labels and splits


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map integer or string labels to 0..K-1 (sorted order; numeric strings sort as numbers).

    An empty or missing label, or a fractional one (``0.5``: a regression target, not a class), is refused.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if len(bad):
            raise NasappError(f"data labels must be classes, but example {bad[0]} has the label {labels[bad[0]]!r}"
                              f" ({len(bad)} such); use integer or string class labels (nasapp classifies; it"
                              " does not regress)")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind in "US":
        labels = np.char.strip(labels.astype(str))
        values = np.unique(labels)
        for value in values:
            problem = _label_problem(str(value))
            if problem:
                first = int(np.flatnonzero(labels == value)[0])
                raise NasappError(f"data labels: example {first}: {problem}; give every example a class"
                                  " (a name or an integer) or drop it")
        if all(_is_int(v) for v in values):
            labels = labels.astype(np.int64)
        elif all(_is_float(v) for v in values):  # "1.0", "2": integral numbers written as floats
            labels = labels.astype(np.float64).astype(np.int64)
    elif labels.dtype.kind not in "iub":
        raise NasappError(f"data labels have dtype {labels.dtype}; use integer or string class labels")
    values, y = np.unique(labels, return_inverse=True)
    if len(values) < 2:
        only = values[0] if len(values) else "none"
        raise NasappError(f"data has only one class ({only}); a classification task needs at least two")
    return y.reshape(-1).astype(np.int64), [str(v) for v in values]


def _label_problem(text: str) -> str | None:
    """Why `text` cannot be a class label (empty, missing, fractional), or None."""
    if text.lower() in _MISSING:
        return f"a missing label ({text!r})" if text else "an empty label"
    if not _is_int(text) and _is_float(text):
        value = float(text)
        if not np.isfinite(value) or value != round(value):
            return f"the label {text!r} is not a whole number (nasapp classifies; it does not regress)"
    return None


def check_sizes(y: np.ndarray, class_names: list[str]) -> None:
    """Refuse a data set too small to split: every class needs examples to train on and to validate on."""
    counts = np.bincount(y, minlength=len(class_names))
    rule = (f"a search needs at least {MIN_EXAMPLES} examples and {MIN_PER_CLASS} of every class (one to train"
            " on, one to validate on)")
    if len(y) < MIN_EXAMPLES:
        raise NasappError(f"data has only {len(y)} examples; {rule}")
    small = [f"{name!r} ({int(n)})" for name, n in zip(class_names, counts, strict=True) if n < MIN_PER_CLASS]
    if small:
        listed = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
        raise NasappError(f"data has classes with too few examples: {listed}; {rule}. Add examples or drop"
                          " those classes")


def stratified_split(
    y: np.ndarray, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/validation indices with each class split ``val_fraction`` (a class of one trains)."""
    train, val = [], []
    for cls in range(int(y.max()) + 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_val = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


def subsample(train_idx: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Keep ``fraction`` of each class of ``train_idx`` (at least one example per class), shuffled."""
    kept = []
    for cls in np.unique(y[train_idx]):
        idx = train_idx[y[train_idx] == cls]
        kept.append(rng.choice(idx, size=max(1, round(len(idx) * fraction)), replace=False))
    return rng.permutation(np.concatenate(kept))


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- paths


def existing_path(raw: str | None, kind: str, want_dir: bool) -> Path:
    what = "a folder of class sub-folders" if want_dir else f"a .{kind} file"
    if not raw:
        raise NasappError(f"data.path is missing; data.kind = {kind!r} needs path = {what}")
    path = Path(raw)
    if not path.exists():
        raise NasappError(f"data.path: {path} does not exist; point it at {what}")
    if want_dir and not path.is_dir():
        raise NasappError(f"data.path: {path} is a file; data.kind = 'imagefolder' needs {what}")
    if not want_dir and not path.is_file():
        raise NasappError(f"data.path: {path} is a folder; data.kind = {kind!r} needs {what}")
    return path


# ---------------------------------------------------------------- loaders


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return x, digits.target.astype(np.int64)


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise NasappError(
                    f"data.path: {path} has arrays {archive.files} but no {' or '.join(missing)}; "
                    "save it with np.savez(path, x=features, y=labels)"
                )
            x, y = archive["x"], archive["y"]
    except NasappError:
        raise
    except ValueError as exc:
        raise NasappError(
            f"data.path: {path} holds object arrays; save x as numbers and y as int or str"
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise NasappError(f"data.path: {path} is not a readable .npz file ({exc})") from exc
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise NasappError(f"data.path: {path}: y has shape {y.shape}; it must hold one label per example")
    if len(x) != len(y):
        raise NasappError(f"data.path: {path}: x has {len(x)} examples but y has {len(y)}; they must match")
    if x.dtype.kind not in "fiub":
        raise NasappError(f"data.path: {path}: x has dtype {x.dtype}; it must be numeric")
    if x.ndim not in (2, 3, 4):
        raise NasappError(
            f"data.path: {path}: x has shape {x.shape}; use (N, features), (N, H, W) or (N, C, H, W)"
        )
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise NasappError(f"data.path: {path}: x contains NaN or infinite values; clean them first")
    return (x[:, None] if x.ndim == 3 else x), y


def load_imagefolder(
    root: Path, image_size: Sequence[int] | None, grayscale: bool
) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise NasappError(
            f"data.path: {root} has no class sub-folders; put each class's images in its own folder"
        )
    files: list[tuple[Path, str]] = []
    for folder in classes:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise NasappError(
                f"data.path: class folder {folder} has no PNG/JPEG images; add some or remove it"
            )
        files.extend((p, folder.name) for p in images)
    size = _image_size(image_size, files[0][0])
    mode = "L" if grayscale else "RGB"
    x = np.stack([_read_image(path, size, mode) for path, _ in files])
    return x, np.array([name for _, name in files])


def _image_size(image_size: Sequence[int] | None, first: Path) -> tuple[int, int]:
    if image_size is None:
        from PIL import Image

        try:
            with Image.open(first) as img:
                return img.height, img.width
        except OSError as exc:
            raise NasappError(f"data: cannot read image {first} ({exc}); fix or delete the file") from exc
    if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
        raise NasappError(f"data.image_size: {list(image_size)} is not [height, width]; use e.g. [32, 32]")
    return int(image_size[0]), int(image_size[1])


def _read_image(path: Path, size: tuple[int, int], mode: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if (img.height, img.width) != size:
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as exc:
        raise NasappError(f"data: cannot read image {path} ({exc}); fix or delete the file") from exc
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NasappError(f"data.path: {path} is not a readable CSV file ({exc})") from exc
    if not rows or not rows[0]:
        raise NasappError(f"data.path: {path} is empty; it needs a header row and one row per example")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if any(c.strip() for c in r)]
    if label_column not in header:
        raise NasappError(
            f"data.label_column: {label_column!r} is not a column of {path}; available: {', '.join(header)}"
        )
    for name in dict.fromkeys(header):
        where = [i + 1 for i, h in enumerate(header) if h == name]
        if len(where) > 1:
            raise NasappError(f"data.path: {path} has the column {name!r} {len(where)} times (columns"
                              f" {', '.join(map(str, where))}); rename or drop the copies (a copy of the label"
                              " column would be read as a feature)")
    if not body:
        raise NasappError(f"data.path: {path} has a header but no rows")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise NasappError(
                f"data.path: {path} line {number} has {len(row)} fields but the header has {len(header)}"
            )
    label_at = header.index(label_column)
    for number, row in enumerate(rows[1:], start=2):
        if any(c.strip() for c in row) and _label_problem(row[label_at].strip()):
            raise NasappError(f"data.path: {path} line {number}, column {label_column!r}:"
                              f" {_label_problem(row[label_at].strip())}; give every row a class (a name or an"
                              " integer) or drop the row")
    features = [i for i in range(len(header)) if i != label_at]
    if not features:
        raise NasappError(f"data.path: {path} has no feature columns besides {label_column!r}")
    x = np.empty((len(body), len(features)), dtype=np.float32)
    for j, col in enumerate(features):
        x[:, j] = _numeric_column(header[col], [row[col] for row in body], path)
    return x, np.array([row[label_at].strip() for row in body])


def _numeric_column(name: str, values: list[str], path: Path) -> np.ndarray:
    try:
        column = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise NasappError(
            f"data: column {name!r} of {path} is not numeric (value {bad!r}); "
            "encode it as numbers or drop the column"
        ) from None
    if not np.all(np.isfinite(column)):
        raise NasappError(f"data: column {name!r} of {path} has NaN or infinite values; fill or drop them")
    return column


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _standardise(x_train: np.ndarray, x_val: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, list[float]]]:
    """Both splits standardised with the training split's mean and std (returned too: an export states them)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    stats = {"mean": [float(v) for v in np.ravel(mean)], "std": [float(v) for v in np.ravel(std)]}
    return (x_train - mean) / std, (x_val - mean) / std, stats
