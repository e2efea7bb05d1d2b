"""Custom spaces export as prebuilt ones do: a custom-space job whose `trainer.ref` trainer calls
`ctx.save_model` with class names and preprocessing, exported with and without a `build_model` hook.

The trials are trained in this process (the worker's path to `ctx.save_model` is covered by the custom example's
end-to-end run in tests/test_examples.py), which keeps the module to a few seconds."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import FIXTURES

from nasapp.engine.data.loaders import load_dataset
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.jobs.refs import load_ref
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.results.export import export_trials
from nasapp.engine.results.load_model import load_model
from nasapp.store import Store

ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
sys.path.insert(0, str(FIXTURES))
from custom_torch import CLASS_NAMES, PREPROCESSING  # noqa: E402 - after FIXTURES is on the path

BUILT = f"{FIXTURES / 'custom_torch.py'}"
UNBUILT = f"{FIXTURES / 'custom_torch_nobuild.py'}"


def custom_job(store: Store, module: str) -> int:
    return create_job(store, parse_job({
        "name": "custom-export", "seed": 0, "space": {"ref": f"{module}:space"}, "data": {"kind": "digits"},
        "trainer": {"ref": f"{module}:train", "steps": 15}, "strategy": {"name": "random"},
        "search": {"max_trials": 2},
    }))


def train_trials(store: Store, job_id: int, module: str, archs: list[dict]) -> None:
    """Each arch trained by the job's trainer as a worker would call it, stored as a succeeded trial."""
    train, data = load_ref(f"{module}:train"), load_dataset({"kind": "digits"}, 0)
    for number, arch in enumerate(archs):
        trial_id = store.add_trial(job_id, number, arch, f"fp{number}", number)
        ctx = TrialContext(trial_id=trial_id, number=number, seed=number, device="cpu", data=data,
                           workdir=store.trial_dir(job_id, number), proxy={"steps": 15}, data_spec={"kind": "digits"})
        ctx.workdir.mkdir(parents=True)
        metrics = train(arch, ctx)
        store.finish_trial(trial_id, "succeeded", reward=metrics["accuracy"], metrics=metrics)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Two trained trials of the builder's trainer, and the same trials in a job of the builder-less module."""
    root = tmp_path_factory.mktemp("custom")
    store = Store(root / "nasapp.db")
    built = custom_job(store, BUILT)
    train_trials(store, built, BUILT, [{"width": 4, "activation": "relu"}, {"width": 8, "activation": "tanh"}])
    unbuilt = custom_job(store, UNBUILT)
    for trial in store.trials(built):  # the same trained trials, copied: training again would only cost time
        trial_id = store.add_trial(unbuilt, trial.number, trial.arch, trial.fingerprint, trial.number)
        store.finish_trial(trial_id, "succeeded", reward=trial.reward, metrics=trial.metrics)
        shutil.copytree(store.trial_dir(built, trial.number), store.trial_dir(unbuilt, trial.number))
    yield store, store.job(built), store.job(unbuilt)
    store.close()


def ort_scores(folder, x):
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def readme_snippet_runs(folder) -> str:
    snippet = re.search(r"```python\n(.*?)```", (folder / "README.md").read_text(), re.S).group(1)
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_a_custom_export_with_a_builder_is_checked_against_pytorch_and_loads(searched, tmp_path):
    store, job, _ = searched
    (result,) = export_trials(store, job, [1], tmp_path / "out")
    folder = result.folder
    assert result.check_kind == "onnx-vs-pytorch" and result.check_passed, result.check_text
    report = json.loads((folder / "report.json").read_text())
    assert report["class_names"] == CLASS_NAMES and report["preprocessing"] == PREPROCESSING
    assert report["stated_by"] == {"class_names": "trainer", "preprocessing": "trainer"}
    assert report["check"]["kind"] == "onnx-vs-pytorch" and report["check"]["passed"] is True
    assert report["pytorch"]["builder"].endswith("custom_torch.py:build_model")
    assert report["model"]["input"]["shape"] == ["batch", 1, 8, 8]
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    five, one = ort_scores(folder, x), ort_scores(folder, x[:1])  # the batch axis is dynamic
    assert five.shape == (5, 10) and one.shape == (1, 10) and np.allclose(five[:1], one, atol=1e-5)
    readme = (folder / "README.md").read_text()
    assert "scale: x / 16" in readme and 'nasapp.load_model(".")' in readme
    assert "predicted: [" in readme_snippet_runs(folder)
    model = load_model(folder)
    with torch.no_grad():
        torch_scores = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(torch_scores - five)) < 1e-4
    trial_model = load_model(job=job.id, trial=1, db=store.path)  # the trial itself rebuilds too
    with torch.no_grad():
        assert np.max(np.abs(trial_model(torch.from_numpy(x)).numpy() - five)) < 1e-4


def test_without_a_builder_onnx_runtime_checks_itself_and_load_model_says_what_is_missing(searched, tmp_path):
    store, _, job = searched
    (result,) = export_trials(store, job, [0], tmp_path / "out")
    folder = result.folder
    assert result.check_kind == "onnx-self" and result.check_passed, result.check_text
    assert "batch 1 and 3" in result.check_text and "build_model" in result.note
    report = json.loads((folder / "report.json").read_text())
    assert report["check"]["kind"] == "onnx-self" and report["class_names"] == CLASS_NAMES
    assert report["state_dict"] is False and not (folder / "state_dict.pt").exists()
    assert "model.onnx` is the model to run" in (folder / "README.md").read_text()
    readme_snippet_runs(folder)
    with pytest.raises(NasappError) as caught:
        load_model(folder)
    message = str(caught.value)
    assert "\n" not in message and "defines no build_model" in message and "model.onnx is the model to run" in message


def test_save_model_defaults_to_the_data_kind_and_refuses_wrong_class_names(tmp_path):
    from nasapp.engine.data.loaders import load_dataset
    from nasapp.engine.execution.context import TrialContext
    from nasapp.engine.execution.saved_model import SavedModel

    data = load_dataset({"kind": "digits"}, 0)
    ctx = TrialContext(trial_id=1, number=0, seed=0, device="cpu", workdir=tmp_path, data=data,
                       data_spec={"kind": "digits"})
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    ctx.save_model(model, torch.from_numpy(data.x_val[:2]))  # the old call: no names, no preprocessing
    saved = SavedModel.read(tmp_path)
    assert saved.class_names == [str(d) for d in range(10)] and saved.preprocessing["scale"] == "x / 16"
    assert saved.stated_by == {"class_names": "data kind digits", "preprocessing": "data kind digits"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example_input.npy", "example_output.npy",
                                                          "model.batch.onnx", "model.json", "model.onnx", "model.pt"]
    import onnx

    def batch_dim(name):
        return onnx.load(str(tmp_path / name)).graph.input[0].type.tensor_type.shape.dim[0]

    assert batch_dim("model.onnx").dim_value == 1  # what is timed: the shape fixed at latency.batch_size
    assert batch_dim("model.batch.onnx").dim_param == "batch"  # what export delivers
    with pytest.raises(NasappError, match="3 class_names for a model with 10 outputs"):
        ctx.save_model(model, torch.from_numpy(data.x_val[:2]), class_names=["a", "b", "c"])
    with pytest.raises(NasappError, match="preprocessing must be a dict"):
        ctx.save_model(model, torch.from_numpy(data.x_val[:2]), preprocessing="x / 16")
