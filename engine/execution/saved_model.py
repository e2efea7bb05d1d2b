"""What ``ctx.save_model`` writes into a trial folder, and the record that describes it (``model.json``).

- ``model.onnx``: the model with fixed shapes at ``latency.batch_size`` (input ``input``, output ``output``):
  what the latency service times, so ONNX Runtime plans for exactly the timed shape;
- ``model.batch.onnx``: the same model with a dynamic batch axis, what ``nasapp export`` hands to users;
- ``model.pt``: the weights as a state dict (CPU, float32), for rebuilding the model in PyTorch;
- ``example_input.npy`` and ``example_output.npy``: up to ``EXAMPLE_ROWS`` rows of the example input and the
  PyTorch model's outputs for them, so an export can check ONNX Runtime against PyTorch without the model;
- ``model.json``: a ``SavedModel`` (shapes, class names, preprocessing and who stated them).

Class names and preprocessing default to the job's data kind (as prebuilt exports state them) when the
trainer gives none and the data fits the model (same input shape, as many classes as outputs).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError

INFO_FILE = "model.json"
DELIVERED_ONNX = "model.batch.onnx"
WEIGHTS_FILE = "model.pt"
EXAMPLE_INPUT = "example_input.npy"
EXAMPLE_OUTPUT = "example_output.npy"
EXAMPLE_ROWS = 8


@dataclass
class SavedModel:
    """``model.json``: the saved model's input and output, and what a user must know to feed it."""

    input_shape: list[int]  # one sample's shape (without the batch)
    output_shape: list[int]  # one sample's output shape: [classes] for a classifier
    class_names: list[str] | None
    preprocessing: dict[str, Any] | None
    stated_by: dict[str, str]  # "class_names"/"preprocessing" -> "trainer" or "data kind <name>"
    opset: int
    input_name: str = "input"
    output_name: str = "output"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, folder: Path) -> SavedModel | None:
        """The record in ``folder``, or None when the trainer saved no ``model.json`` (an older nasapp)."""
        path = folder / INFO_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            return None


def save_trained_model(model: Any, example_input: Any, workdir: Path, *, batch_size: int, opset: int,
                       class_names: list[str] | None = None, preprocessing: dict[str, Any] | None = None,
                       data: Any = None) -> tuple[Path, dict[str, float]]:
    """Write the files above into ``workdir``; the ONNX path and the model's MACs, FLOPs and params
    (measured at ``batch_size``, the timed batch). ``data``: the job's Dataset for the defaults, or None."""
    import numpy as np
    import torch

    from nasapp.engine.latency.onnx_export import export_onnx
    from nasapp.engine.latency.profile import model_profile

    model = copy.deepcopy(model).float().cpu().eval()
    rows = example_input[:EXAMPLE_ROWS].detach().float().cpu().contiguous()
    with torch.no_grad():
        outputs = _first_tensor(model(rows)).float()
    batch = rows[:1].expand(batch_size, *rows.shape[1:]).contiguous()
    profile = model_profile(model, batch)
    path = export_onnx(model, batch, workdir / "model.onnx", opset=opset)
    export_onnx(model, batch, workdir / DELIVERED_ONNX, opset=opset, dynamic_batch=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, workdir / WEIGHTS_FILE)
    np.save(workdir / EXAMPLE_INPUT, rows.numpy())
    np.save(workdir / EXAMPLE_OUTPUT, outputs.numpy())
    info = _describe(list(rows.shape[1:]), list(outputs.shape[1:]), class_names, preprocessing, data, opset)
    (workdir / INFO_FILE).write_text(json.dumps(info.to_json(), indent=2) + "\n")
    return path, profile


def _first_tensor(output: Any) -> Any:
    """A model's output, or its first element when it returns a tuple or list (that one is exported)."""
    return output[0] if isinstance(output, list | tuple) else output


def _describe(input_shape: list[int], output_shape: list[int], class_names: list[str] | None,
              preprocessing: dict[str, Any] | None, data: Any, opset: int) -> SavedModel:
    classes = output_shape[-1] if len(output_shape) == 1 else None
    stated: dict[str, str] = {}
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if classes is not None and len(class_names) != classes:
            raise NasappError(f"ctx.save_model: {len(class_names)} class_names for a model with {classes}"
                              " outputs per sample; give one name per output")
        stated["class_names"] = "trainer"
    elif data is not None and classes == len(data.class_names):
        class_names, stated["class_names"] = list(data.class_names), f"data kind {data.kind}"
    if preprocessing is not None:
        _check_json(preprocessing)
        stated["preprocessing"] = "trainer"
    elif data is not None and data.preprocessing and list(data.input_shape) == input_shape:
        preprocessing, stated["preprocessing"] = dict(data.preprocessing), f"data kind {data.kind}"
    return SavedModel(input_shape, output_shape, class_names, preprocessing, stated, opset)


def _check_json(preprocessing: Any) -> None:
    if not isinstance(preprocessing, dict):
        raise NasappError(f"ctx.save_model: preprocessing must be a dict (got {type(preprocessing).__name__}),"
                          ' e.g. {"scale": "x / 255", "mean": [...], "std": [...], "channel_order": "RGB"}')
    try:
        json.dumps(preprocessing, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise NasappError(f"ctx.save_model: preprocessing must hold JSON values (strings, numbers, lists): {error}"
                          ) from None
