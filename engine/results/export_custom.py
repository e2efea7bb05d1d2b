"""Export of a custom space's trial: the ``model.onnx`` its trainer saved (``ctx.save_model``), checked.

Which check runs depends on what the trainer saved (engine/execution/saved_model.py):

- ``onnx-vs-pytorch``: the example input, the weights and a ``build_model`` hook (engine/results/custom_build.py)
  are there: the rebuilt PyTorch model and ONNX Runtime must agree on the example input and on its first row
  alone; the weights go into the export (``state_dict.pt``) and ``nasapp.load_model`` rebuilds it;
- ``onnx-self``: the example input is there but the model cannot be rebuilt: ONNX Runtime runs it at batch 3
  and each row at batch 1; the outputs must be finite, agree per sample, and match the outputs the PyTorch model
  gave when it was saved;
- ``load-only``: a ``model.onnx`` saved without them (an older nasapp, or a trainer that wrote the file itself)
  is loaded in ONNX Runtime, nothing more.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.execution.saved_model import (
    DELIVERED_ONNX,
    EXAMPLE_INPUT,
    EXAMPLE_OUTPUT,
    WEIGHTS_FILE,
    SavedModel,
)
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.results.export import (
    TOLERANCE,
    ExportResult,
    _check,
    _fresh_folder,
    _session,
    _write_common,
)
from nasapp.store.records import Job, Trial

SELF_CHECK_BATCH = 3


def export_custom(store: Any, job: Job, trial: Trial, out: Path) -> ExportResult:
    number = trial.number
    source_dir = store.trial_dir(job.id, number)
    source = source_dir / "model.onnx"
    if not source.is_file():
        raise NasappError(f"trial {number} of job {job.id} has no model.onnx in {source_dir}: a job with"
                          " a custom space can only be exported when its trainer saves the model; call"
                          " ctx.save_model(model, example_input) at the end of training")
    folder = _fresh_folder(out, number)
    target = folder / "model.onnx"
    delivered = source_dir / DELIVERED_ONNX  # the batch axis dynamic; model.onnx has the timed shape
    shutil.copyfile(delivered if delivered.is_file() else source, target)
    session = _session(target)
    model = {"inputs": [{"name": i.name, "shape": i.shape, "dtype": i.type} for i in session.get_inputs()],
             "outputs": [{"name": o.name, "shape": o.shape, "dtype": o.type} for o in session.get_outputs()],
             "copied_from": str(source)}
    saved = SavedModel.read(source_dir)
    if saved is None or not (source_dir / EXAMPLE_INPUT).is_file():
        note = "model.onnx copied from the trial folder (saved by its trainer) and loaded in ONNX Runtime"
        result = ExportResult(number, folder, target, True, None, None, note, check_kind="load-only")
        _write_common(folder, job, trial, result, model)
        return result
    shutil.copyfile(source_dir / EXAMPLE_INPUT, folder / EXAMPLE_INPUT)  # the README's snippet feeds it
    result, pytorch = _checked(job, trial, source_dir, folder, saved, session)
    model.update(input={"name": saved.input_name, "shape": ["batch", *saved.input_shape], "dtype": "float32"},
                 output={"name": saved.output_name, "shape": ["batch", *saved.output_shape],
                         "meaning": "the first output of the trainer's model (class scores for a classifier)"},
                 opset=saved.opset)
    _write_common(folder, job, trial, result, model, preprocessing=saved.preprocessing,
                  class_names=saved.class_names, state_dict=pytorch["builder"] is not None,
                  more={"pytorch": pytorch, "stated_by": saved.stated_by})
    return result


def _checked(job: Job, trial: Trial, source_dir: Path, folder: Path, saved: SavedModel,
             session: Any) -> tuple[ExportResult, dict[str, Any]]:
    """Run the strongest check the saved files allow; the result and report.json's ``pytorch`` entry."""
    import numpy as np
    import torch

    example = np.load(source_dir / EXAMPLE_INPUT).astype(np.float32)
    module, pytorch = _rebuilt(job, trial, source_dir, saved)
    if module is not None:
        try:
            passed, diff = _check(module, folder / "model.onnx", torch.from_numpy(example))
        except Exception as error:  # noqa: BLE001 - onnxruntime's own errors: the file does not run
            passed, diff, pytorch["note"] = False, float("inf"), f"ONNX Runtime failed: {_first(error)}"
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, folder / "state_dict.pt")
        result = ExportResult(trial.number, folder, folder / "model.onnx", True, passed, diff,
                              pytorch.get("note"), check_kind="onnx-vs-pytorch")
        return result, pytorch
    expected_path = source_dir / EXAMPLE_OUTPUT
    expected = np.load(expected_path) if expected_path.is_file() else None
    passed, diff, failure = self_check(session, example, expected)
    note = "; ".join(n for n in (failure, f"no PyTorch check: {pytorch['missing']}") if n)
    result = ExportResult(trial.number, folder, folder / "model.onnx", True, passed, diff, note,
                          check_kind="onnx-self")
    return result, pytorch


def _rebuilt(job: Job, trial: Trial, source_dir: Path, saved: SavedModel) -> tuple[Any, dict[str, Any]]:
    """The trainer's model rebuilt with its weights, or None and why not (report.json's ``pytorch``)."""
    from nasapp.engine.results.custom_build import build_custom, find_builder

    builder = find_builder(job_spec(job).trainer)
    weights = source_dir / WEIGHTS_FILE
    missing = (None if weights.is_file() else f"the trial saved no weights ({weights.name})") or builder.missing
    if missing:
        return None, {"builder": None, "missing": missing}
    assert builder.ref is not None
    try:
        model = build_custom(builder.ref, trial.arch, saved.input_shape, saved.output_shape[-1], weights)
    except NasappError as error:
        return None, {"builder": None, "missing": str(error)}
    return model, {"builder": builder.ref, "missing": None}


def self_check(session: Any, example: Any, expected: Any) -> tuple[bool, float, str | None]:
    """ONNX Runtime alone: ``SELF_CHECK_BATCH`` rows at once and one by one (rows repeat when the example has
    fewer), against each other and against ``expected`` (PyTorch's outputs at save time) when given."""
    import numpy as np

    index = np.arange(SELF_CHECK_BATCH) % len(example)
    name = session.get_inputs()[0].name
    try:
        together = session.run(None, {name: example[index]})[0]
        alone = np.concatenate([session.run(None, {name: example[i:i + 1]})[0] for i in index])
    except Exception as error:  # noqa: BLE001 - onnxruntime's own errors (e.g. a batch size baked into a Reshape)
        return False, float("inf"), f"ONNX Runtime cannot run it at batch 1 and {SELF_CHECK_BATCH}: {_first(error)}"
    references = [alone] + ([expected[index]] if expected is not None else [])
    if any(r.shape != together.shape for r in references):
        return False, float("inf"), "the outputs' shapes differ between batch sizes or from PyTorch's"
    if not all(np.all(np.isfinite(a)) for a in [together, *references]):
        return False, float("nan"), None
    worst = max(float(np.max(np.abs(together.astype(np.float64) - r))) for r in references)
    return bool(worst <= TOLERANCE), worst, None


def _first(error: BaseException) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0][:200]
