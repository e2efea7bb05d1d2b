"""Export a torch model to ONNX with static shapes, and check the file.

The TorchScript exporter (``dynamo=False``) is used: it needs no extra package (onnxscript) and handles every
prebuilt model. Batch size and input shape are those of the example input; no axis is dynamic, so ONNX Runtime
can plan memory and pick kernels for exactly the shape that is timed, unless asked (``dynamic_batch``: the copy
``ctx.save_model`` writes for users, ``model.batch.onnx``, which is not timed).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"

_OP_PATTERN = re.compile(r"'?((?:aten|prim|onnx|quantized|torchvision)::[A-Za-z0-9_.]+)'?")


def _as_args(example_input: Any) -> tuple[Any, ...]:
    return tuple(example_input) if isinstance(example_input, list | tuple) else (example_input,)


def _failed_op(error: BaseException) -> str | None:
    """The operator named in an exporter error, e.g. ``aten::unfold``, when it names one."""
    match = _OP_PATTERN.search(str(error))
    return match.group(1) if match else None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def export_onnx(model: Any, example_input: Any, path: str | os.PathLike[str],
                opset: int = DEFAULT_OPSET, *, dynamic_batch: bool = False) -> Path:
    """Write ``model`` as ONNX to ``path`` and return the path.

    ``example_input`` is a tensor (or a tuple of tensors) whose shapes, batch size included, become the
    model's fixed input shapes (with ``dynamic_batch``, every axis but the batch). The model is exported in
    eval mode without gradients (its training flag is restored afterwards); the inputs are named ``input``
    (``input0``, ``input1``... for several) and the first output ``output``. The file is checked with
    ``onnx.checker``; any failure raises :class:`NasappError` naming the operator when the exporter names one.
    """
    import onnx
    import torch

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    args = _as_args(example_input)
    input_names = [INPUT_NAME] if len(args) == 1 else [f"{INPUT_NAME}{i}" for i in range(len(args))]
    axes = {name: {0: "batch"} for name in [*input_names, OUTPUT_NAME]} if dynamic_batch else None
    partial = target.with_name(target.name + ".partial")
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice and tracer warnings
            torch.onnx.export(model, args, str(partial), opset_version=opset, dynamo=False,
                              input_names=input_names, output_names=[OUTPUT_NAME],
                              do_constant_folding=True, dynamic_axes=axes)
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; all are reported the same
        with contextlib.suppress(OSError):
            partial.unlink()
        op = _failed_op(error)
        where = f"operator {op} cannot be exported" if op else _first_line(error)
        raise NasappError(f"could not export the model to ONNX (opset {opset}): {where}. Try another opset"
                          " (latency.opset) or replace the operator in the model.") from None
    finally:
        model.train(was_training)
    try:
        onnx.checker.check_model(str(partial))
    except Exception as error:  # noqa: BLE001 - onnx raises ValidationError and friends
        with contextlib.suppress(OSError):
            partial.unlink()
        raise NasappError(f"the exported ONNX model does not pass onnx.checker: {_first_line(error)}") from None
    os.replace(partial, target)
    return target
