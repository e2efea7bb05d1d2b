"""engine.data: the four kinds, the seeded stratified split, the proxy subsample and the error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasapp.engine.data.loaders import Dataset, load_dataset
from nasapp.engine.errors import NasappError


def _spec(kind: str, path: Path | None = None, **extra: object) -> dict:
    return {"kind": kind, "path": str(path) if path is not None else None, **extra}


def _check_consistent(ds: Dataset) -> None:
    assert ds.x_train.dtype == np.float32 and ds.x_val.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_val.dtype == np.int64
    assert ds.x_train.shape[1:] == ds.input_shape == ds.x_val.shape[1:]
    assert len(ds.x_train) == len(ds.y_train) and len(ds.x_val) == len(ds.y_val)
    assert ds.num_classes == len(ds.class_names)
    assert set(np.unique(ds.y_train)) <= set(range(ds.num_classes))


@pytest.fixture
def npz_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    labels = np.array(["cat", "dog", "eel"] * 40)
    np.savez(path, x=rng.normal(size=(120, 5)).astype(np.float32), y=labels)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name, base in (("dark", 40), ("light", 200)):
        (root / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(base + rng.integers(-30, 30, size=(12, 10, 3)), 0, 255).astype(np.uint8)
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(pixels).save(root / name / f"{i}{suffix}")
    return root


def test_hard_digits_are_32x32_deterministic_from_their_seed_and_unlike_the_digits() -> None:
    a = load_dataset({"kind": "hard-digits"}, seed=0)
    b = load_dataset({"kind": "hard-digits"}, seed=0)
    other = load_dataset({"kind": "hard-digits", "seed": 1}, seed=0)
    assert a.input_shape == (1, 32, 32) and a.num_classes == 10 and a.kind == "hard-digits"
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, other.x_train)
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0 and len(a.y_train) + len(a.y_val) == 1797
    # noise and distractors: the background is far from the plain digits' zeros
    assert (a.x_train < 0.01).mean() < 0.5  # noise clipped at 0 leaves about 40% of the pixels at 0
    small = load_dataset({"kind": "hard-digits", "size": 16, "copies": 2}, seed=0)
    assert small.input_shape == (1, 16, 16) and len(small.y_train) + len(small.y_val) == 2 * 1797


def test_digits_are_8x8_images_in_unit_range() -> None:
    ds = load_dataset({"kind": "digits", "path": None}, seed=0)
    _check_consistent(ds)
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10 and ds.kind == "digits"
    assert ds.class_names == [str(i) for i in range(10)]
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert len(ds.x_train) + len(ds.x_val) == 1797
    assert abs(len(ds.x_val) / 1797 - 0.2) < 0.01


def test_split_is_stratified_and_deterministic_by_seed() -> None:
    a = load_dataset({"kind": "digits"}, seed=3)
    b = load_dataset({"kind": "digits"}, seed=3)
    c = load_dataset({"kind": "digits"}, seed=4)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_val, b.y_val)
    assert not np.array_equal(a.y_train, c.y_train)
    train_share = np.bincount(a.y_train) / len(a.y_train)
    val_share = np.bincount(a.y_val) / len(a.y_val)
    assert np.allclose(train_share, val_share, atol=0.01)


def test_data_fraction_subsamples_train_balanced_and_keeps_validation() -> None:
    full = load_dataset({"kind": "digits"}, seed=0)
    part = load_dataset({"kind": "digits", "data_fraction": 0.25}, seed=0)
    assert np.array_equal(full.y_val, part.y_val)
    assert abs(len(part.y_train) - 0.25 * len(full.y_train)) <= 10
    assert np.allclose(np.bincount(part.y_train) / len(part.y_train), 0.1, atol=0.01)
    tiny = load_dataset({"kind": "digits", "data_fraction": 0.0001}, seed=0)
    assert np.array_equal(np.bincount(tiny.y_train), np.ones(10))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_data_fraction_outside_unit_interval_is_rejected(fraction: float) -> None:
    with pytest.raises(NasappError, match="data_fraction"):
        load_dataset({"kind": "digits", "data_fraction": fraction}, seed=0)


def test_npz_tabular_with_string_labels(npz_file: Path) -> None:
    ds = load_dataset(_spec("npz", npz_file), seed=0)
    _check_consistent(ds)
    assert ds.input_shape == (5,) and ds.class_names == ["cat", "dog", "eel"]
    assert len(ds.y_val) == 24


def test_npz_images_get_a_channel_axis_and_uint8_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "imgs.npz"
    np.savez(path, x=np.full((20, 6, 7), 255, dtype=np.uint8), y=np.array([3, 7] * 10))
    ds = load_dataset(_spec("npz", path), seed=0)
    assert ds.input_shape == (1, 6, 7) and ds.class_names == ["3", "7"]
    assert ds.x_train.max() == 1.0
    path4 = tmp_path / "imgs4.npz"
    np.savez(path4, x=np.zeros((20, 3, 4, 4), dtype=np.float32), y=np.array([0, 1] * 10))
    assert load_dataset(_spec("npz", path4), seed=0).input_shape == (3, 4, 4)


def test_npz_errors(tmp_path: Path) -> None:
    wrong_keys = tmp_path / "keys.npz"
    np.savez(wrong_keys, features=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(NasappError, match="no x"):
        load_dataset(_spec("npz", wrong_keys), seed=0)
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.zeros((5, 2)), y=np.array([0, 1, 0]))
    with pytest.raises(NasappError, match="x has 5 examples but y has 3"):
        load_dataset(_spec("npz", mismatch), seed=0)
    one_class = tmp_path / "one.npz"
    np.savez(one_class, x=np.zeros((5, 2)), y=np.zeros(5, dtype=int))
    with pytest.raises(NasappError, match="only one class"):
        load_dataset(_spec("npz", one_class), seed=0)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all")
    with pytest.raises(NasappError, match="corrupt.npz"):
        load_dataset(_spec("npz", corrupt), seed=0)


def test_path_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(NasappError, match="data.path is missing"):
        load_dataset(_spec("npz"), seed=0)
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(NasappError, match="nowhere.npz does not exist"):
        load_dataset(_spec("npz", missing), seed=0)
    with pytest.raises(NasappError, match="is a folder"):
        load_dataset(_spec("csv", tmp_path), seed=0)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(NasappError, match="is a file"):
        load_dataset(_spec("imagefolder", a_file), seed=0)
    with pytest.raises(NasappError, match="unknown data kind"):
        load_dataset(_spec("parquet", a_file), seed=0)


def test_imagefolder_reads_resizes_and_scales(image_folder: Path) -> None:
    ds = load_dataset(_spec("imagefolder", image_folder), seed=0)
    _check_consistent(ds)
    assert ds.input_shape == (3, 12, 10) and ds.class_names == ["dark", "light"]
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    gray = load_dataset(_spec("imagefolder", image_folder, image_size=[8, 6], grayscale=True), seed=0)
    assert gray.input_shape == (1, 8, 6)
    dark = gray.x_train[gray.y_train == 0].mean()
    light = gray.x_train[gray.y_train == 1].mean()
    assert dark < 0.35 < 0.65 < light


def test_imagefolder_errors(image_folder: Path, tmp_path: Path) -> None:
    (image_folder / "light" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(NasappError, match="broken.png"):
        load_dataset(_spec("imagefolder", image_folder), seed=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NasappError, match="no class sub-folders"):
        load_dataset(_spec("imagefolder", empty), seed=0)
    (empty / "cats").mkdir()
    with pytest.raises(NasappError, match="has no PNG/JPEG images"):
        load_dataset(_spec("imagefolder", empty), seed=0)


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_standardises_with_train_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [
        f"{rng.normal(100, 5):.3f},{rng.normal(-3, 0.1):.3f},{'yes' if i % 3 else 'no'}" for i in range(90)
    ]
    path = _write_csv(tmp_path / "t.csv", "a,b,target", rows)
    ds = load_dataset(_spec("csv", path, label_column="target"), seed=1)
    _check_consistent(ds)
    assert ds.input_shape == (2,) and ds.class_names == ["no", "yes"]
    assert np.allclose(ds.x_train.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(ds.x_train.std(axis=0), 1, atol=1e-3)
    assert np.all(np.abs(ds.x_val.mean(axis=0)) < 1.0)


def test_csv_errors(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "t.csv", "a,colour,label", ["1,red,0", "2,blue,1", "3,red,0", "4,blue,1"])
    with pytest.raises(NasappError, match="'colour'"):
        load_dataset(_spec("csv", path), seed=0)
    with pytest.raises(NasappError, match="available: a, colour, label"):
        load_dataset(_spec("csv", path, label_column="y"), seed=0)
