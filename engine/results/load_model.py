"""``nasapp.load_model``: a NAS-found model as a PyTorch module with its weights, for notebooks and scripts.

Three sources, one function:

    import nasapp
    model = nasapp.load_model("exports/trial-12")                     # a folder `nasapp export` wrote
    model = nasapp.load_model(job=3, trial=12)                       # a trial of a job in the store
    model = nasapp.load_model(space="mnasnet", baseline="mnasnet-b1",  # a prebuilt baseline (random weights,
                              input_shape=(3, 224, 224), num_classes=1000, weights="b1.pt")  # or a local file)

A custom space's model is the user's own code: it is rebuilt when the trainer's module defines
``build_model(arch, input_shape, num_classes)`` and the trainer saved its weights with ``ctx.save_model``
(engine/results/custom_build.py); otherwise the error says what is missing and that ``model.onnx`` is the model
to run. Nothing is downloaded: pretrained weights come from a local state-dict file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError


def load_model(source: str | Path | None = None, *, job: int | str | None = None, trial: int | None = None,
               db: str | Path | None = None, space: str | None = None, arch: Any = None,
               baseline: str | None = None, input_shape: Sequence[int] | None = None,
               num_classes: int | None = None, scale: Mapping[str, Any] | None = None,
               weights: str | Path | None = None) -> Any:
    """The model as a ``torch.nn.Module`` in eval mode; ``weights`` (a state-dict file) replaces the weights.

    Give one source: an export folder (``source``), a ``job`` and ``trial`` (``db``: the store, default the
    usual one), or a prebuilt ``space`` with an ``arch`` or a named ``baseline`` and the ``input_shape``
    (C, H, W or F) and ``num_classes`` to build for. Mistakes raise NasappError with what to do.
    """
    given = [name for name, value in (("an export folder", source), ("job=", job), ("space=", space))
             if value is not None]
    if len(given) != 1:
        raise NasappError("load_model: give one of an export folder, job= with trial=, or space= with arch= or"
                          " baseline=" + (f"; got {' and '.join(given)}" if given else ""))
    if source is not None:
        model, state = _from_export(Path(source))
    elif job is not None:
        if trial is None:
            raise NasappError("load_model: give trial= with job=")
        model, state = _from_trial(job, int(trial), db)
    else:
        model, state = _from_space(str(space), arch, baseline, input_shape, num_classes, scale), None
    if weights is not None:
        state = _read_state(Path(weights), "weights")
    if state is not None:
        _load_state(model, state, str(weights or source or f"job {job} trial {trial}"))
    return model.eval()


def _build(space: str, arch: Any, input_shape: Sequence[int], num_classes: int, scale: Mapping[str, Any] | None):
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    prebuilt = get_prebuilt(space)
    prebuilt.space.validate(arch)
    return prebuilt.build(prebuilt.space.canonical(arch), tuple(int(d) for d in input_shape), int(num_classes),
                          dict(scale or {}))


def _from_space(space: str, arch: Any, baseline: str | None, input_shape: Sequence[int] | None,
                num_classes: int | None, scale: Mapping[str, Any] | None) -> Any:
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    prebuilt = get_prebuilt(space)
    if (arch is None) == (baseline is None):
        raise NasappError(f"load_model(space={space!r}): give arch= or baseline= (its baselines:"
                          f" {', '.join(prebuilt.baselines) or 'none'})")
    if baseline is not None:
        if baseline not in prebuilt.baselines:
            raise NasappError(f"load_model: {baseline!r} is not a baseline of space {space}; its baselines:"
                              f" {', '.join(prebuilt.baselines) or 'none'}")
        arch = prebuilt.baselines[baseline]
    if input_shape is None or num_classes is None:
        raise NasappError("load_model(space=...): give input_shape= (e.g. (3, 224, 224)) and num_classes=")
    return _build(space, arch, input_shape, num_classes, scale)


def _from_export(folder: Path) -> tuple[Any, dict[str, Any] | None]:
    report_path = folder / "report.json"
    if not report_path.is_file():
        raise NasappError(f"load_model: {folder} is not a folder `nasapp export` wrote (no report.json)")
    report = json.loads(report_path.read_text())
    spec = report.get("spec", {})
    prebuilt = (spec.get("space") or {}).get("prebuilt")
    if not prebuilt:
        return _from_custom_export(folder, report), None
    model_info = report.get("model", {})
    input_shape = [int(d) for d in model_info["input"]["shape"][1:]]
    num_classes = int(model_info["output"]["shape"][-1])
    model = _build(prebuilt, report["arch"], input_shape, num_classes, (spec.get("space") or {}).get("scale"))
    return model, _read_state(folder / "state_dict.pt", "the export's weights")


def _from_custom_export(folder: Path, report: dict[str, Any]) -> Any:
    from nasapp.engine.results.custom_build import build_custom

    pytorch = report.get("pytorch") or {}
    weights = folder / "state_dict.pt"
    missing = pytorch.get("missing") or ("its trainer saved no example input and weights (ctx.save_model)"
                                         if not pytorch else None)
    if missing is None and not weights.is_file():
        missing = f"the export holds no weights ({weights.name})"
    if missing or not pytorch.get("builder"):
        raise NasappError(f"load_model: {folder} is a custom space's export that nasapp cannot rebuild in PyTorch"
                          f" ({missing or 'no build_model'}); model.onnx is the model to run (ONNX Runtime)")
    model = report["model"]
    return build_custom(pytorch["builder"], report["arch"], model["input"]["shape"][1:],
                        model["output"]["shape"][-1], weights)


def _from_custom_trial(spec: Any, folder: Path, trial: Any) -> Any:
    from nasapp.engine.execution.saved_model import WEIGHTS_FILE, SavedModel
    from nasapp.engine.results.custom_build import build_custom, find_builder

    builder, saved = find_builder(spec.trainer), SavedModel.read(folder)
    missing = builder.missing or (None if saved and (folder / WEIGHTS_FILE).is_file() else
                                  "its trainer saved no weights and model.json (ctx.save_model)")
    if missing or builder.ref is None or saved is None:
        raise NasappError(f"load_model: trial {trial.number} searched a custom space ({spec.space.ref}) that nasapp"
                          f" cannot rebuild in PyTorch ({missing}); run the trial's model.onnx with ONNX Runtime")
    return build_custom(builder.ref, trial.arch, saved.input_shape, saved.output_shape[-1], folder / WEIGHTS_FILE)


def _from_trial(job_ref: int | str, number: int, db: str | Path | None) -> tuple[Any, dict[str, Any] | None]:
    from nasapp.engine.jobs.spec import job_spec
    from nasapp.store import Store, StoreError

    try:
        store = Store(db, create=False)
    except StoreError as error:
        raise NasappError(f"load_model: {error}") from None
    found = store.find_job(job_ref)
    if found is None:
        raise NasappError(f"load_model: no job {job_ref} in {store.path}")
    trial = store.trial_by_number(found.id, number)
    if trial is None:
        raise NasappError(f"load_model: job {found.id} has no trial {number}")
    spec = job_spec(found)
    folder = store.trial_dir(found.id, number)
    if not spec.space.prebuilt:
        return _from_custom_trial(spec, folder, trial), None
    weights = folder / "model.pt"
    if not weights.is_file():
        raise NasappError(f"load_model: trial {number} of job {found.id} has no trained weights ({weights}); it"
                          f" did not finish training (status {trial.status})")
    input_shape, num_classes = _shape_of(folder / "model.onnx") or _shape_from_data(spec)
    model = _build(spec.space.prebuilt, trial.arch, input_shape, num_classes, spec.space.scale.model_dump())
    return model, _read_state(weights, f"trial {number}'s weights")


def _shape_of(onnx_path: Path) -> tuple[list[int], int] | None:
    """Input shape (without the batch) and class count of a trial's saved ONNX model, when it has fixed dims."""
    if not onnx_path.is_file():
        return None
    try:
        import onnx

        graph = onnx.load(str(onnx_path), load_external_data=False).graph
        weights = {tensor.name for tensor in graph.initializer}
        inputs = [v for v in graph.input if v.name not in weights]
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1:]
        classes = graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    except Exception:  # noqa: BLE001 - an unreadable file falls back to the job's data
        return None
    return (dims, classes) if dims and all(dims) and classes else None


def _shape_from_data(spec: Any) -> tuple[list[int], int]:
    from nasapp.engine.data.loaders import load_dataset

    if spec.data is None:
        raise NasappError("load_model: the job has no [data] table, so its models' input shape is unknown")
    data = load_dataset(spec.data, spec.seed)
    return [int(d) for d in data.input_shape], int(data.num_classes)


def _read_state(path: Path, what: str) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise NasappError(f"load_model: {what} file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and runtime errors alike mean "not a weights file"
        first = (str(error).strip() or type(error).__name__).splitlines()[0][:200]
        raise NasappError(f"load_model: {path} is not a PyTorch state dict ({first})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, dict):
        raise NasappError(f"load_model: {path} holds a {type(state).__name__}, not a state dict")
    return state


def _load_state(model: Any, state: dict[str, Any], where: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise NasappError(f"load_model: the weights of {where} do not fit the architecture ({first})") from None
