"""What a trainer receives: the trial's settings and the channel back to the runner.

A trainer is ``def train(arch, ctx) -> dict``. ``ctx`` is a ``TrialContext``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINT_FILE = "checkpoint.pt"  # in the trial folder: what a training cycle saves for the next to continue

_UNLOADED = object()


class TrialContext:
    """Everything a trainer may use.

    - ``device``: "cpu" or "cuda" (the worker's slot; CUDA_VISIBLE_DEVICES already narrows to one GPU).
    - ``seed``: the trial's seed (job seed and trial number); seed every RNG from it.
    - ``workdir``: the trial's own folder for checkpoints and artefacts.
    - ``proxy``: the job's ``[trainer]`` settings (steps, batch_size, lr, ... and ``options``).
    - ``data``: the job's data set (``engine.data.Dataset``), or None without a ``[data]`` table. Loaded on
      first use and kept by the worker, so a trainer that never touches it pays nothing.
    - ``build``: the prebuilt space's model builder ``build(arch, input_shape, num_classes, scale)``, or None.
    - ``scale``: the proxy scale (width, depth, resolution) for ``build``.
    - ``data_spec``: the job's ``[data]`` table (paths absolute), for trainers that load their own data.
    - ``export``: how ``save_model`` exports (``batch_size``, ``opset``: the job's ``[latency]`` settings).
    - ``resume_from``: a checkpoint an earlier training cycle of this model saved (``checkpoint_path`` of that
      trial), to continue from instead of starting over; None to start from scratch. Trainers opt in: the
      prebuilt trainer continues from it, and with ``trainer.checkpoint = true`` saves ``checkpoint_path``.
    """

    def __init__(
        self, *, trial_id: int, number: int, seed: int, device: str, workdir: Path,
        proxy: dict[str, Any] | None = None, data: Any = None,
        data_loader: Callable[[], Any] | None = None, build: Callable[..., Any] | None = None,
        scale: dict[str, Any] | None = None, data_spec: dict[str, Any] | None = None,
        export: dict[str, Any] | None = None, resume_from: Path | None = None,
        _report: Callable[[int, dict[str, float]], None] | None = None,
        _should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.trial_id = trial_id
        self.number = number
        self.seed = seed
        self.device = device
        self.workdir = Path(workdir)
        self.proxy = proxy or {}
        self.build = build
        self.scale = scale or {}
        self.data_spec = data_spec or {}
        self._data = data if data is not None or data_loader is None else _UNLOADED
        self._data_loader = data_loader
        self.export = export or {"batch_size": 1, "opset": 17}
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self.saved: dict[str, Any] = {}  # what save_model wrote: "onnx" path and "profile" metrics
        self._report = _report
        self._should_stop = _should_stop

    @property
    def checkpoint_path(self) -> Path:
        """Where a trainer saves the checkpoint of this trial's training cycle."""
        return self.workdir / CHECKPOINT_FILE

    @property
    def data(self) -> Any:
        if self._data is _UNLOADED:
            assert self._data_loader is not None
            self._data = self._data_loader()
        return self._data

    def save_model(self, model: Any, example_input: Any, *, class_names: list[str] | None = None,
                   preprocessing: dict[str, Any] | None = None) -> Path:
        """Save the trained model in the trial folder: ``model.onnx`` (batch axis dynamic), ``model.pt`` (its
        state dict), the example input with the model's outputs for it, and ``model.json``.

        nasapp times ``model.onnx`` for the latency reward (at the job's ``latency.batch_size``) and
        ``nasapp export`` delivers it. ``example_input`` is one input batch (any batch size; up to 8 rows are
        kept for the export's check). ``class_names`` (one per output) and ``preprocessing`` (a dict of JSON
        values saying how raw inputs became the model's input, e.g. ``{"scale": "x / 255", "mean": [...],
        "std": [...], "channel_order": "RGB", "size": [32, 32]}``) go into the export's report.json and
        README; without them, the job's ``[data]`` kind states both when its data fits the model.
        """
        from nasapp.engine.execution.saved_model import save_trained_model

        data = self.data if self.data_spec else None
        path, self.saved["profile"] = save_trained_model(
            model, example_input, self.workdir, batch_size=int(self.export["batch_size"]),
            opset=int(self.export["opset"]), class_names=class_names, preprocessing=preprocessing, data=data)
        self.saved["onnx"] = str(path)
        return path

    def report(self, step: int, **metrics: float) -> None:
        """Send intermediate metrics (e.g. ``ctx.report(100, accuracy=0.9)``) to the runner."""
        from nasapp.engine.execution.values import checked_report

        step, clean = checked_report(step, metrics)  # a bad value fails the trial here, naming the key
        if self._report is not None:
            self._report(step, clean)

    def should_stop(self) -> bool:
        """True once the runner asked this trial to stop early (pruned, cancelled or timed out)."""
        return bool(self._should_stop and self._should_stop())
