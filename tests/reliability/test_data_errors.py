"""Data that would invent or leak classes, or leave nothing to validate on, is refused when the job is created,
with a message naming the file, the line or column and what to change; never a search whose every trial fails
or whose accuracy is inflated."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from helpers import nasapp_cli, write_job
from PIL import Image

from nasapp.engine.data.loaders import MIN_EXAMPLES, MIN_PER_CLASS, load_dataset
from nasapp.engine.errors import NasappError


def csv_file(path: Path, header: str, rows: list[str]) -> dict:
    path.write_text("\n".join([header, *rows]) + "\n")
    return {"kind": "csv", "path": str(path)}


def rows(n: int, classes: int = 2, label=lambda i, k: str(i % k)) -> list[str]:
    return [f"{i * 0.5:.2f},{(i * 7) % 5},{label(i, classes)}" for i in range(n)]


def test_a_duplicated_label_column_is_refused_not_read_as_a_feature(tmp_path):
    """Before: the second `label` column became a feature, and validation accuracy was 1.0."""
    body = [f"{r},{r.rsplit(',', 1)[1]}" for r in rows(40)]
    with pytest.raises(NasappError, match=r"column 'label' 2 times \(columns 3, 4\)"):
        load_dataset(csv_file(tmp_path / "d.csv", "a,b,label,label", body), seed=0)
    with pytest.raises(NasappError, match=r"column 'b' 2 times"):
        load_dataset(csv_file(tmp_path / "e.csv", "a,b,b,label", [f"1,2,3,{i % 2}" for i in range(20)]), seed=0)


@pytest.mark.parametrize(("bad", "needle"), [
    ("0.5", "the label '0.5' is not a whole number"),
    ("", "an empty label"),
    ("nan", "a missing label ('nan')"),
])
def test_a_fractional_empty_or_missing_label_is_refused_with_its_line(tmp_path, bad, needle):
    """Before: `0.5` and `` silently became classes of their own."""
    body = rows(30)
    body[6] = body[6].rsplit(",", 1)[0] + "," + bad
    with pytest.raises(NasappError) as caught:
        load_dataset(csv_file(tmp_path / "d.csv", "a,b,label", body), seed=0)
    message = str(caught.value)
    assert needle in message and "line 8" in message and "column 'label'" in message, message


@pytest.mark.parametrize("labels", [np.array([0.5, 1.0] * 10), np.array(["cat", ""] * 10), np.array(["1", "2.5"] * 10)])
def test_npz_labels_that_are_not_classes_are_refused(tmp_path, labels):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((20, 3), np.float32), y=labels)
    with pytest.raises(NasappError, match="give every example a class|use integer or string class labels"):
        load_dataset({"kind": "npz", "path": str(path)}, seed=0)


def test_whole_numbers_written_as_floats_are_integer_classes(tmp_path):
    data = load_dataset(csv_file(tmp_path / "d.csv", "a,b,label", rows(20, label=lambda i, k: f"{i % k}.0")), 0)
    assert data.class_names == ["0", "1"]


def test_too_few_examples_are_refused_with_the_minimums(tmp_path):
    """Before: a 2-row CSV was accepted and every trial then failed (no validation example)."""
    with pytest.raises(NasappError) as caught:
        load_dataset(csv_file(tmp_path / "two.csv", "a,b,label", rows(2)), seed=0)
    assert "only 2 examples" in str(caught.value) and f"at least {MIN_EXAMPLES} examples" in str(caught.value)
    lonely = rows(20) + ["9,9,rare"]
    with pytest.raises(NasappError, match=r"too few examples: 'rare' \(1\).*2 of every class"):
        load_dataset(csv_file(tmp_path / "lonely.csv", "a,b,label", lonely), seed=0)


def test_an_image_class_with_one_image_is_refused(tmp_path):
    for name, count in (("cats", 6), ("dogs", 6), ("eel", 1)):
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.fromarray(np.full((4, 4, 3), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(NasappError, match=r"'eel' \(1\)"):
        load_dataset({"kind": "imagefolder", "path": str(tmp_path)}, seed=0)


@pytest.mark.parametrize("val_fraction", [0.01, 0.2, 0.9])
def test_the_smallest_accepted_set_validates_and_trains_on_every_class(tmp_path, val_fraction):
    classes = MIN_EXAMPLES // MIN_PER_CLASS
    body = rows(MIN_EXAMPLES, classes=classes)
    data = load_dataset({**csv_file(tmp_path / "d.csv", "a,b,label", body), "val_fraction": val_fraction}, seed=3)
    assert set(data.y_val.tolist()) == set(data.y_train.tolist()) == set(range(classes))


def test_nasapp_run_refuses_bad_data_before_the_job_exists(tmp_path):
    (tmp_path / "two.csv").write_text("a,label\n1,0\n2,1\n")
    job = write_job(tmp_path, """
        name = "tiny"
        [space]
        prebuilt = "mlp"
        [data]
        kind = "csv"
        path = "two.csv"
        [search]
        devices = "cpu"
    """)
    db = tmp_path / "s.db"
    store_first = nasapp_cli("run", str(job), "--db", str(db))
    assert store_first.returncode == 2 and "Traceback" not in store_first.stderr
    lines = store_first.stderr.strip().splitlines()
    assert len(lines) == 1 and "only 2 examples" in lines[0], store_first.stderr
    if db.exists():
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
