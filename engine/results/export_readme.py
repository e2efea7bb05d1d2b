"""The README.md of an export folder: how to feed the model (the trainer's preprocessing, as a runnable ONNX
Runtime snippet) and how to get it back as a PyTorch module (``nasapp.load_model``).

The snippet is written for the data kind the job trained on, from ``report["preprocessing"]``; the tests run
the digits one as it stands. A custom trainer's export (whose preprocessing the trainer stated in its own
words) feeds the example input its trainer saved, ``example_input.npy``; the tests run that one too.
"""

from __future__ import annotations

from typing import Any

_HEAD = '''import json

import numpy as np
import onnxruntime as ort

report = json.load(open("report.json"))
session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
names = report["class_names"] or []
'''

_TAIL = '''
scores = session.run(None, {session.get_inputs()[0].name: x})[0]   # (N, classes): class scores; any batch size
predicted = scores.argmax(axis=1)
print("predicted:", [names[i] if names else int(i) for i in predicted[:10]])
'''

_SAVED_EXAMPLE = '''
x = np.load("example_input.npy")   # the example input the trainer saved; yours: prepared as "Input" says
'''

_PREPARE = {
    "digits": '''
from sklearn.datasets import load_digits
digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]   # (N, 1, 8, 8), values 0..1 as in training
''',
    "hard-digits": '''
from nasapp.engine.data.hard_digits import make_hard_digits
data = report["spec"]["data"]
x, labels = make_hard_digits(data["seed"], data["size"], data["copies"], data["noise"])   # (N, 1, S, S)
''',
    "imagefolder": '''
from pathlib import Path

from PIL import Image

prep = report["preprocessing"]
channels, height, width = prep["input_shape"]


def prepare(path):
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    if (image.height, image.width) != (height, width):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if channels == 1 else array.transpose(2, 0, 1)   # (C, H, W), RGB order


IMAGES = sorted(p for p in Path(report["spec"]["data"]["path"]).rglob("*")   # the job's images; or your own
                if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:16]
x = np.stack([prepare(path) for path in IMAGES])
''',
    "npz": '''
x = np.load(report["spec"]["data"]["path"])["x"]  # the job's file; or your own with the same layout
x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
x = x[:, None] if x.ndim == 3 else x
''',
    "csv": '''
import csv

data = report["spec"]["data"]
with open(data["path"], newline="") as handle:     # the job's file; or your own with the same columns
    rows = list(csv.DictReader(handle))
features = np.array([[float(v) for k, v in row.items() if k != data["label_column"]] for row in rows])
prep = report["preprocessing"]
mean, std = np.array(prep["mean"], np.float32), np.array(prep["std"], np.float32)
x = (features.astype(np.float32) - mean) / std     # (N, F), the numeric columns in file order
''',
}

_CHECK = {  # the digits are at hand: the snippet measures the model on all of them
    "digits": '''print(f"accuracy on all {len(x)} digits: {np.mean(predicted == digits.target):.4f}")
''',
}


def onnx_snippet(kind: str, saved_example: bool = False) -> str:
    """The runnable ONNX Runtime snippet for a model trained on data ``kind`` (``saved_example``: a custom
    trainer's export that holds ``example_input.npy``, fed when the kind has no snippet)."""
    prepare = _PREPARE.get(kind, _SAVED_EXAMPLE if saved_example else '''
x = ...   # your inputs, prepared as your trainer prepared them: float32, shape report["model"]["inputs"]
''')
    return _HEAD + prepare + _TAIL + _CHECK.get(kind, "")


_CHECK_WORDS = {
    None: "ONNX Runtime vs PyTorch check",
    "onnx-self": "ONNX Runtime self-check (no PyTorch model to compare with: batch 1 against batch 3, and"
                 " against the outputs PyTorch gave when the trainer saved the model)",
    "load-only": "ONNX Runtime load check (the trainer saved no example input to run)",
}


def _is_data_kind(prep: dict[str, Any]) -> bool:
    """Preprocessing as a data kind describes it (engine/data/loaders.py), not in a custom trainer's words."""
    return all(key in prep for key in ("kind", "input_shape", "layout", "source", "scale"))


def export_readme(report: dict[str, Any]) -> str:
    """The folder's README.md for ``report`` (report.json's content)."""
    job, trial = report["job"], report["trial"]
    prep = report.get("preprocessing") or {}
    kind = prep.get("kind") if _is_data_kind(prep) else "custom"
    metrics = report.get("metrics") or {}
    accuracy = metrics.get("accuracy")
    claim = f" Validation accuracy in the search: {accuracy:.4f}." if isinstance(accuracy, int | float) else ""
    lines = [
        f"# Trial {trial} of job {job['id']} ({job['name']})",
        "",
        f"`model.onnx` classifies into {len(report.get('class_names') or [])} classes"
        f" (`report.json` → `class_names`).{claim}",
        "",
        "## Input",
        "",
        *_input_lines(report, prep),
        "- output `output`: class scores (logits), shape `(batch, classes)`; the batch size is free",
        "",
        "## Run it with ONNX Runtime",
        "",
        "```python",
        onnx_snippet(str(kind), saved_example="pytorch" in report).rstrip(),  # custom exports say "pytorch"
        "```",
        "",
        *_pytorch_lines(report),
        "`arch.json` holds the architecture, `report.json` the metrics, the job's settings and the"
        f" {_CHECK_WORDS.get((report.get('check') or {}).get('kind'), _CHECK_WORDS[None])}.",
        "",
    ]
    return "\n".join(lines)


def _input_lines(report: dict[str, Any], prep: dict[str, Any]) -> list[str]:
    if _is_data_kind(prep):
        lines = [
            f"- `input`: float32, shape `(batch, {', '.join(map(str, prep['input_shape']))})` ({prep['layout']})",
            f"- from: {prep['source']}",
            f"- scaling: {prep['scale']}" + ("; mean and std per feature in `report.json` → `preprocessing`"
                                             if prep.get("mean") is not None else ""),
        ]
        if prep.get("channels"):
            lines.append(f"- channels: {prep['channels']}")
        if prep.get("resize"):
            lines.append(f"- resize: {prep['resize']}")
        return lines
    shape = (report.get("model") or {}).get("input", {}).get("shape")
    lines = [f"- `input`: float32, shape `({', '.join(map(str, shape))})`"] if shape else []
    if prep:
        lines.append("- preprocessing, as the trainer stated it (`report.json` → `preprocessing`):")
        lines += [f"  - {key}: {value}" for key, value in prep.items()]
    else:
        lines.append("- as the trainer prepared its inputs (it stated no preprocessing: pass"
                     " `preprocessing=` to `ctx.save_model`); the input and output names and shapes are in"
                     " `report.json` → `model`")
    return lines


def _pytorch_lines(report: dict[str, Any]) -> list[str]:
    pytorch = report.get("pytorch") or {}
    if report.get("state_dict"):
        built = f" (rebuilt by `{pytorch['builder']}`)" if pytorch.get("builder") else ""
        return [
            "## As a PyTorch module",
            "",
            "```python",
            "import nasapp",
            "",
            'model = nasapp.load_model(".")   # this folder: the architecture with its trained weights, eval mode',
            "```",
            "",
            f"`state_dict.pt` holds the weights{built}.",
            "",
        ]
    if pytorch.get("missing"):
        return [f"`nasapp.load_model` cannot rebuild this model ({pytorch['missing']}): `model.onnx` is the model"
                " to run.", ""]
    return []
