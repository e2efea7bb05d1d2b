"""`export`: a real search (mlp on digits, 2 trials), then ONNX files checked in a fresh ONNX Runtime."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import TOY
from rich.console import Console

from nasapp.app.export_command import export_command
from nasapp.engine.data.loaders import load_dataset
from nasapp.engine.errors import NasappError
from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.results.export import export_trials
from nasapp.store import Store

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One finished 2-trial search, shared by the tests of this module (copy the store to change it).

    The tests that use it are marked slow: whichever of them runs first pays for the search."""
    root = tmp_path_factory.mktemp("search")
    store = Store(root / "nasapp.db")
    spec = parse_job({
        "name": "export-mlp", "seed": 0, "space": {"prebuilt": "mlp"}, "data": {"kind": "digits"},
        "trainer": {"steps": 20, "eval_every": 10},
        "strategy": {"name": "random"},
        "search": {"max_trials": 2, "parallel": 1, "devices": "cpu"},
    })
    job_id = create_job(store, spec)
    assert Runner(store, job_id).run() == "finished"
    assert [t.status for t in store.trials(job_id)] == ["succeeded", "succeeded"]
    store.close()
    return root, job_id


@pytest.fixture
def store_copy(searched, tmp_path):
    root, job_id = searched
    copy = tmp_path / "store"
    shutil.copytree(root, copy)
    store = Store(copy / "nasapp.db")
    yield store, store.job(job_id)
    store.close()


def run_export(store, job, out: Path, *, trial=None, best=None) -> str:
    buffer = io.StringIO()
    export_command(store, job, trial, best, out, Console(file=buffer, width=200))
    return buffer.getvalue()


@pytest.mark.slow  # the module's real search
def test_export_best_writes_a_checked_onnx_model_with_its_files(store_copy, tmp_path):
    store, job = store_copy
    out = tmp_path / "exported"
    text = run_export(store, job, out, best=1)
    best = store.best_trials(job.id, 1)[0]
    folder = out / f"trial-{best.number}"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "arch.json", "model.onnx", "report.json",
                                                        "state_dict.pt"]
    assert "check: ONNX Runtime vs PyTorch PASS" in text and "trained weights" in text
    assert json.loads((folder / "arch.json").read_text()) == best.arch
    report = json.loads((folder / "report.json").read_text())
    assert report["trial"] == best.number and report["job"]["name"] == "export-mlp"
    assert report["trained"] is True and report["check"]["passed"] is True
    assert report["check"]["max_abs_diff"] <= 1e-4
    assert report["metrics"] == best.metrics and report["reward"] == best.reward
    assert report["spec"]["space"]["prebuilt"] == "mlp"

    # a fresh session, with nothing of ours in between, runs the model at two batch sizes
    data = load_dataset(job.spec["data"], job.spec["seed"])
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for batch in (1, 32):
        scores = session.run(None, {name: data.x_val[:batch]})[0]
        assert scores.shape == (batch, data.num_classes) and np.all(np.isfinite(scores))
    scores = session.run(None, {name: data.x_val})[0]
    accuracy = float(np.mean(scores.argmax(axis=1) == data.y_val))
    assert accuracy == pytest.approx(best.metrics["accuracy"], abs=1e-6)  # the trained model, really

    import torch

    state = torch.load(folder / "state_dict.pt", weights_only=True)
    saved = torch.load(store.trial_dir(job.id, best.number) / "model.pt", weights_only=True)
    assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in state)


@pytest.mark.slow  # the module's real search
def test_load_model_rebuilds_an_export_or_a_trial_with_its_weights(store_copy, tmp_path):
    """`nasapp.load_model` gives the PyTorch module of an export folder or of a trial in the store: its scores
    are the exported ONNX model's, its accuracy the trial's."""
    import torch

    import nasapp

    store, job = store_copy
    run_export(store, job, tmp_path / "exported", best=1)
    best = store.best_trials(job.id, 1)[0]
    folder = tmp_path / "exported" / f"trial-{best.number}"
    data = load_dataset(job.spec["data"], job.spec["seed"])
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: data.x_val})[0]
    for model in (nasapp.load_model(folder), nasapp.load_model(job=job.id, trial=best.number, db=store.path)):
        assert not model.training
        with torch.no_grad():
            scores = model(torch.from_numpy(data.x_val).float()).numpy()
        assert np.abs(scores - expected).max() < 1e-4
        assert float(np.mean(scores.argmax(axis=1) == data.y_val)) == pytest.approx(best.metrics["accuracy"])
    with pytest.raises(NasappError, match="not a folder `nasapp export` wrote"):
        nasapp.load_model(tmp_path)
    with pytest.raises(NasappError, match=f"job {job.id} has no trial 99"):
        nasapp.load_model(job=job.id, trial=99, db=store.path)


def test_load_model_builds_a_prebuilt_baseline_with_random_or_local_weights(tmp_path):
    import torch

    import nasapp

    model = nasapp.load_model(space="nb201", baseline="nb201-best-cifar10", input_shape=(3, 32, 32), num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 1_073_466 and not model.training
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    again = nasapp.load_model(space="nb201", baseline="nb201-best-cifar10", input_shape=(3, 32, 32),
                              num_classes=10, weights=tmp_path / "weights.pt")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    with pytest.raises(NasappError, match="do not fit the architecture"):
        nasapp.load_model(space="nb201", baseline="nb201-best-cifar10", input_shape=(3, 32, 32), num_classes=5,
                          weights=tmp_path / "weights.pt")
    with pytest.raises(NasappError, match="give input_shape="):
        nasapp.load_model(space="mnasnet", baseline="mnasnet-b1")
    with pytest.raises(NasappError, match="give one of an export folder"):
        nasapp.load_model(tmp_path, space="mnasnet")


@pytest.mark.slow  # the module's real search
def test_a_trial_without_weights_is_exported_untrained_with_a_note(store_copy, tmp_path):
    store, job = store_copy
    for name in ("model.pt", "model.onnx"):  # no weights, and no ONNX file a trainer saved either
        (store.trial_dir(job.id, 0) / name).unlink(missing_ok=True)
    out = tmp_path / "exported"
    out.mkdir()
    (out / "trial-0").mkdir()
    (out / "trial-0" / "stale.txt").write_text("from an earlier export")  # replaced, not merged
    (out / "keep.txt").write_text("not ours")
    text = run_export(store, job, out, trial=0)
    assert "UNTRAINED weights" in text and "note: trial 0 has no trained weights" in text
    assert "PASS" in text
    report = json.loads((out / "trial-0" / "report.json").read_text())
    assert report["trained"] is False and "untrained" in report["note"]
    assert not (out / "trial-0" / "stale.txt").exists() and (out / "keep.txt").exists()
    session = ort.InferenceSession(str(out / "trial-0" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((2, 1, 8, 8), np.float32)})[0].shape == (2, 10)


@pytest.mark.slow  # the module's real search
def test_without_model_pt_the_onnx_file_the_trainer_saved_is_copied(store_copy, tmp_path):
    store, job = store_copy
    folder = store.trial_dir(job.id, 1)
    (folder / "model.pt").unlink()
    if not (folder / "model.onnx").exists():
        pytest.skip("the worker does not save model.onnx for prebuilt spaces")
    text = run_export(store, job, tmp_path / "out", trial=1)
    # the trainer's ctx.save_model kept an example input and PyTorch's outputs: ONNX Runtime checks itself
    assert "ONNX Runtime self-check PASS" in text and "the trial saved no weights (model.pt)" in text
    exported = tmp_path / "out" / "trial-1" / "model.onnx"
    assert exported.read_bytes() == (folder / "model.batch.onnx").read_bytes()  # the dynamic-batch copy


@pytest.mark.slow  # the module's real search
def test_export_errors(store_copy, tmp_path):
    store, job = store_copy
    with pytest.raises(NasappError, match="has no trial 7"):
        export_trials(store, job, [7], tmp_path / "out")
    with pytest.raises(NasappError, match="not both"):
        run_export(store, job, tmp_path / "out", trial=0, best=1)
    run_export(store, job, tmp_path / "best")  # no selector: the best trial
    assert [p.name for p in (tmp_path / "best").iterdir()] == [f"trial-{store.best_trials(job.id, 1)[0].number}"]
    store.finish_trial(store.trial_by_number(job.id, 1).id, "failed", reason="constraint",
                       message="memory 123 MB over reward.memory_limit_mb = 100")
    with pytest.raises(NasappError, match=r"trial 1 of job \d+ is failed \(constraint: memory 123 MB"):
        run_export(store, job, tmp_path / "out", trial=1)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(NasappError, match="is a file"):
        run_export(store, job, tmp_path / "a-file", trial=0)


def test_a_custom_space_exports_the_onnx_file_its_trainer_saved(tmp_path):
    import torch

    store = Store(tmp_path / "nasapp.db")
    spec = parse_job({"name": "custom", "space": {"ref": f"{TOY}:space"}, "trainer": {"ref": f"{TOY}:train"}})
    job_id = create_job(store, spec)
    job = store.job(job_id)
    for number in (0, 1):
        trial_id = store.add_trial(job_id, number, {"x": number, "op": "a"}, f"fp{number}", number)
        store.finish_trial(trial_id, "succeeded", reward=0.5, metrics={"accuracy": 0.5})
    with pytest.raises(NasappError, match=r"custom space .* ctx.save_model\(model, example_input\)"):
        export_trials(store, job, [0], tmp_path / "out")
    folder = store.trial_dir(job_id, 1)
    folder.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(torch.nn.Linear(3, 2).eval(), (torch.zeros(1, 3),), str(folder / "model.onnx"),
                          dynamo=False, input_names=["x"])
    text = run_export(store, job, tmp_path / "out", trial=1)
    assert "SKIP" in text
    exported = tmp_path / "out" / "trial-1"
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "arch.json", "model.onnx", "report.json"]
    report = json.loads((exported / "report.json").read_text())
    assert report["check"]["passed"] is None and report["model"]["inputs"][0]["name"] == "x"
    store.close()


@pytest.mark.slow
def test_the_exported_demo_model_fed_as_its_readme_says_classifies_the_digits(tmp_path):
    """The demo's search (2 trials), exported with no selector: the README's ONNX Runtime snippet runs as
    written on all 1,797 digits, and on the validation split the model scores the accuracy report.json claims
    (raw pixel values 0..16 instead of the trainer's x / 16 gave 14% before the README said so)."""
    import re
    import subprocess
    import sys

    from nasapp.engine.jobs.demo import demo_job
    from nasapp.engine.jobs.spec import apply_overrides

    store = Store(tmp_path / "nasapp.db")
    job_id = create_job(store, parse_job(apply_overrides(demo_job(), max_trials=2, parallel=2)))
    assert Runner(store, job_id).run() == "finished"
    job = store.job(job_id)
    run_export(store, job, tmp_path / "exported")
    (folder,) = (tmp_path / "exported").iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert report["preprocessing"]["scale"] == "x / 16" and report["class_names"] == [str(d) for d in range(10)]
    readme = (folder / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    overall = float(re.search(r"accuracy on all 1797 digits: ([0-9.]+)", ran.stdout).group(1))
    claimed = report["metrics"]["accuracy"]
    assert overall >= claimed - 0.02 and overall > 0.5
    data = load_dataset(job.spec["data"], job.spec["seed"])
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    scores = session.run(None, {"input": data.x_val})[0]
    assert float(np.mean(scores.argmax(axis=1) == data.y_val)) == pytest.approx(claimed, abs=1e-6)
    assert "nasapp.load_model(\".\")" in readme
