"""Export a job's trials as deliverable models: ONNX plus the architecture, weights and a report.

For each trial, ``out_dir/trial-N/`` receives:

- ``model.onnx``: the model rebuilt from the job's prebuilt space and the trial's architecture, with the
  trained weights of the trial folder's ``model.pt`` (untrained weights, noted, when that file is missing);
  input ``input`` of shape ``(batch, *input_shape)``, output ``output`` (class scores), batch dynamic.
- ``arch.json``, ``state_dict.pt`` (the weights as a torch state dict) and ``report.json`` (job, trial,
  metrics, reward, architecture, spec summary, whether trained, the check's result, the inputs'
  preprocessing and the class names);
- ``README.md``: how to feed the model (a runnable ONNX Runtime snippet for the job's data kind) and how to
  load it in PyTorch (``nasapp.load_model``).

Every export is checked: ONNX Runtime's output must equal PyTorch's on a batch of validation samples (and on
a batch of one, which proves the batch axis is dynamic) within ``TOLERANCE``. A custom space's trial exports
the ``model.onnx`` its trainer saved (``ctx.save_model``), with the check its saved files allow
(engine/results/export_custom.py).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import job_spec
from nasapp.store.records import Job, Trial

TOLERANCE = 1e-4
CHECK_BATCH = 8
INPUT_NAME = "input"
OUTPUT_NAME = "output"


@dataclass
class ExportResult:
    """What one trial's export wrote and how its check went (``check_passed`` None: no check possible)."""

    trial: int
    folder: Path
    onnx: Path
    trained: bool
    check_passed: bool | None
    max_abs_diff: float | None
    note: str | None = None
    files: list[str] = field(default_factory=list)
    check_kind: str = "onnx-vs-pytorch"  # or "onnx-self", "load-only" (custom spaces: export_custom.py)

    @property
    def check_name(self) -> str:
        return "ONNX Runtime self-check" if self.check_kind == "onnx-self" else "ONNX Runtime vs PyTorch"

    @property
    def check_text(self) -> str:
        if self.check_passed is None:
            return "SKIP (no PyTorch model here to compare with; the file loads in ONNX Runtime)"
        verdict = "PASS" if self.check_passed else "FAIL"
        if self.max_abs_diff is None or self.max_abs_diff != self.max_abs_diff:
            return f"{verdict} (NaN or inf in an output: the model computes no usable numbers)"
        if self.check_kind == "onnx-self":
            return (f"{verdict} (the saved example input at batch 1 and 3 and PyTorch's outputs saved with it:"
                    f" max diff {self.max_abs_diff:.2e}, tolerance {TOLERANCE:g})")
        return f"{verdict} (max |onnx - torch| = {self.max_abs_diff:.2e}, tolerance {TOLERANCE:g})"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["folder"], out["onnx"] = str(self.folder), str(self.onnx)
        return out


def trials_to_export(store: Any, job: Job, numbers: list[int]) -> list[Trial]:
    """The trials called ``numbers``; each must exist and have succeeded."""
    if not numbers:
        raise NasappError("no trials to export; give --trial N or --best K")
    found = []
    for number in numbers:
        trial = store.trial_by_number(job.id, number)
        if trial is None:
            count = len(store.trials(job.id))
            raise NasappError(f"job {job.id} has no trial {number} (its trials are numbered 0 to"
                              f" {count - 1})" if count else f"job {job.id} has no trials yet")
        refusal = why_not_exportable(trial, job.id)
        if refusal:
            raise NasappError(refusal)
        found.append(trial)
    return found


def why_not_exportable(trial: Trial, job_id: int) -> str | None:
    """Why ``trial`` cannot be exported, or None: only a succeeded trial is a finished, rewarded model."""
    if trial.status == "succeeded":
        return None
    if trial.status == "pruned":
        step = trial.metrics.get("pruned_at_step")
        at = f" at step {step:g}" if isinstance(step, int | float) else ""
        return (f"trial {trial.number} of job {job_id} was pruned{at} by early stopping: its training was cut"
                " short, so it is not a finished model; only succeeded trials can be exported")
    why = f" ({trial.reason}: {trial.message})" if trial.reason else ""
    return f"trial {trial.number} of job {job_id} is {trial.status}{why}; only succeeded trials can be exported"


def best_trial_numbers(store: Any, job: Job, k: int) -> list[int]:
    """The numbers of the job's ``k`` best succeeded trials by reward (the job's reward direction)."""
    if k < 1:
        raise NasappError(f"--best {k}: give 1 or more")
    best = store.best_trials(job.id, k, job_spec(job).reward.direction)
    if not best:
        raise NasappError(f"job {job.id} has no succeeded trial with a reward yet; nothing to export")
    return [t.number for t in best]


def export_trials(store: Any, job: Job, numbers: list[int], out_dir: str | Path) -> list[ExportResult]:
    """Export the trials ``numbers`` of ``job`` into ``out_dir/trial-N/`` (replacing such a folder)."""
    trials = trials_to_export(store, job, numbers)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NasappError(f"{out} is a file; give a folder to export into")
    from nasapp.engine.results.export_custom import export_custom

    if not job_spec(job).space.prebuilt:
        return [export_custom(store, job, trial, out) for trial in trials]
    builder = _PrebuiltBuilder(job)
    results = []
    for trial in trials:
        folder = store.trial_dir(job.id, trial.number)
        if not (folder / "model.pt").is_file() and (folder / "model.onnx").is_file():
            results.append(export_custom(store, job, trial, out))  # a custom trainer saved the model itself
        else:
            results.append(builder.export(store, trial, out))
    return results


# ---- prebuilt spaces ---------------------------------------------------------------------------

class _PrebuiltBuilder:
    """Rebuilds a job's models: its prebuilt space, scale and data (loaded once for all trials)."""

    def __init__(self, job: Job) -> None:
        from nasapp.engine.data.loaders import load_dataset
        from nasapp.engine.spaces.prebuilt import get_prebuilt

        spec = job_spec(job)
        if spec.data is None:
            raise NasappError(f"job {job.id} has no [data] table, so its models' input shape is unknown")
        self.job = job
        self.seed = spec.seed
        self.prebuilt = get_prebuilt(spec.space.prebuilt)
        self.scale = spec.space.scale.model_dump()
        self.data = load_dataset(spec.data, spec.seed)
        self.opset = spec.latency.opset

    def export(self, store: Any, trial: Trial, out: Path) -> ExportResult:
        import torch

        number = trial.number
        folder = _fresh_folder(out, number)
        input_shape = tuple(int(d) for d in self.data.input_shape)
        num_classes = int(self.data.num_classes)
        torch.manual_seed(self.seed)  # untrained weights are reproducible too
        model = self.prebuilt.build(trial.arch, input_shape, num_classes, self.scale)
        weights = store.trial_dir(self.job.id, number) / "model.pt"
        trained, note = weights.is_file(), None
        if trained:
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - a damaged file raises pickle, zip and runtime errors alike
                first = (str(error).strip() or type(error).__name__).splitlines()[0][:200]
                raise NasappError(f"{weights} is damaged or not a PyTorch weights file ({first}); trial {number}'s"
                                  " trained weights cannot be read: delete the file to export the architecture"
                                  " with untrained weights, or export another trial") from None
            try:
                model.load_state_dict(state)
            except RuntimeError as error:
                first = str(error).strip().splitlines()[0]
                raise NasappError(f"{weights} does not fit trial {number}'s architecture ({first}); was the"
                                  " job's space or scale changed after the search?") from None
        else:
            note = (f"trial {number} has no trained weights ({weights} is missing): exported with untrained"
                    " (random) weights; only the architecture is useful")
        model.eval()
        sample = torch.from_numpy(self.data.x_val[:CHECK_BATCH]).float()
        onnx_path = folder / "model.onnx"
        _export_onnx(model, sample, onnx_path, self.opset)
        passed, diff = _check(model, onnx_path, sample)
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, folder / "state_dict.pt")
        extra = {
            "input": {"name": INPUT_NAME, "shape": ["batch", *input_shape], "dtype": "float32"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", num_classes], "meaning": "class scores (logits)"},
            "class_names": self.data.class_names, "opset": self.opset,
        }
        result = ExportResult(number, folder, onnx_path, trained, passed, diff, note)
        _write_common(folder, self.job, trial, result, extra, preprocessing=self.data.preprocessing,
                      class_names=self.data.class_names, state_dict=True)
        return result


def _fresh_folder(out: Path, number: int) -> Path:
    folder = out / f"trial-{number}"
    try:
        if folder.is_dir():
            shutil.rmtree(folder)
        elif folder.exists():
            folder.unlink()
        folder.mkdir(parents=True)
    except OSError as error:
        raise NasappError(f"cannot write the export to {folder} ({error.strerror or error}); give -o a folder you"
                          " can write to") from None
    return folder


def _export_onnx(model: Any, sample: Any, path: Path, opset: int) -> None:
    """torch.onnx.export with a dynamic batch axis (engine/latency/onnx_export.export_onnx makes every axis
    static, which suits timing but not a model handed to users)."""
    import torch

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample,), str(path), opset_version=opset, dynamo=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; all are reported the same
        with contextlib.suppress(OSError):
            path.unlink()
        first = (str(error).strip() or type(error).__name__).splitlines()[0][:300]
        raise NasappError(f"could not export the model to ONNX (opset {opset}): {first}; try another"
                          " latency.opset") from None


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise NasappError(f"ONNX Runtime cannot load {path}: {str(error).strip().splitlines()[0]}") from None


def _check(model: Any, path: Path, sample: Any) -> tuple[bool, float]:
    """Run ``sample`` (and its first row alone) through PyTorch and ONNX Runtime; the max abs difference."""
    import numpy as np
    import torch

    session = _session(path)
    worst = 0.0
    for batch in (sample, sample[:1]):
        with torch.no_grad():
            expected = model(batch).float().numpy()
        got = session.run(None, {INPUT_NAME: batch.numpy()})[0]
        if got.shape != expected.shape:
            return False, float("inf")
        if not (np.all(np.isfinite(got)) and np.all(np.isfinite(expected))):
            return False, float("nan")  # NaN or inf in either output: nothing to compare, never a pass
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - expected))))
    return bool(worst <= TOLERANCE), worst


# ---- shared files ------------------------------------------------------------------------------

def _spec_summary(job: Job) -> dict[str, Any]:
    spec = job_spec(job).model_dump(mode="json")
    trainer = spec["trainer"]
    return {
        "space": spec["space"], "data": spec["data"], "seed": spec["seed"],
        "trainer": {k: trainer.get(k) for k in ("prebuilt", "ref", "command", "steps", "batch_size",
                                                "optimizer", "lr")},
        "reward": spec["reward"], "latency": spec["latency"],
    }


def _write_common(folder: Path, job: Job, trial: Trial, result: ExportResult, extra: dict[str, Any], *,
                  preprocessing: dict[str, Any] | None = None, class_names: list[str] | None = None,
                  state_dict: bool = False, more: dict[str, Any] | None = None) -> None:
    """arch.json, report.json (with the inputs' preprocessing and the class names; ``more``: further keys) and
    README.md."""
    from nasapp.engine.results.export_readme import export_readme

    (folder / "arch.json").write_text(json.dumps(trial.arch, indent=2, sort_keys=True) + "\n")
    report = {
        "job": {"id": job.id, "name": job.name}, "trial": trial.number,
        "metrics": trial.metrics, "reward": trial.reward, "arch": trial.arch,
        "trained": result.trained, "note": result.note,
        "check": {"kind": result.check_kind, "passed": result.check_passed, "tolerance": TOLERANCE,
                  "max_abs_diff": result.max_abs_diff if result.max_abs_diff == result.max_abs_diff else None,
                  "result": result.check_text},
        "model": extra, "spec": _spec_summary(job), "exported_at": time.time(),
        "preprocessing": preprocessing, "class_names": class_names, "state_dict": state_dict, **(more or {}),
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=True) + "\n")
    (folder / "README.md").write_text(export_readme(report))
    result.files = sorted(p.name for p in folder.iterdir())
