"""Latency prediction from an architecture, fitted on the measurements a job has made so far.

Two feature sets, one model class (docs/latency.md explains the choice):

- **Graph features** (prebuilt spaces, :meth:`LatencyPredictor.for_prebuilt`): the model is built on torch's
  ``meta`` device (no memory, no arithmetic: a few milliseconds) and one forward pass is recorded op by op.
  Each op falls into a kind (``dw3`` depthwise 3x3 convolution, ``pw`` 1x1 convolution, ``conv5``, ``linear``,
  ``add``, ``act``, ``reduce``...), and a kind contributes its count, its output elements and, for
  convolutions and matrix products, its FLOPs; a regular KxK convolution also its im2col size (the unfolded
  input its GEMM reads). Latency is modelled as a non-negative sum of these (each op
  costs a fixed dispatch overhead plus time per element and per FLOP, the way ONNX Runtime runs a graph
  node by node), fitted by non-negative least squares on the relative error with a small ridge penalty
  chosen by cross-validation. This is nn-Meter's kernel-level idea with a linear cost per kind, fitted on
  the job's own measurements instead of a per-device kernel data set.
- **Encoding features** (any space, the default): ``space.encode(arch)`` with categorical positions one-hot,
  ridge regression on log-latency (each choice multiplies latency by a factor), penalty by cross-validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nasapp.engine.errors import NasappError

MIN_SAMPLES = 20  # bench/latency.py: 20 measurements give ~92% within +-10%, 10 give ~45-60%
# A measurement the fitted model misses by more than REJECT_MADS robust deviations (and REJECT_FLOOR) is taken
# for a noisy one (another process slowed it down) and left out of a second fit; at most REJECT_MAX of them.
REJECT_MADS = 3.0
REJECT_FLOOR = 0.03
REJECT_MAX = 0.2
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FOLDS = 5

Features = Callable[[Any], Mapping[str, float]]


# ---- graph features of a torch model ---------------------------------------------------------------------

_LINEAR = {"addmm", "mm", "bmm", "matmul", "linear", "baddbmm"}
_REDUCE = {"mean", "sum", "amax", "amin", "max", "avg_pool2d", "max_pool2d", "_adaptive_avg_pool2d",
           "adaptive_avg_pool2d", "max_pool2d_with_indices", "avg_pool1d", "max_pool1d"}
_NORM = {"_native_batch_norm_legit_no_training", "native_batch_norm", "batch_norm", "native_layer_norm",
         "layer_norm", "group_norm", "native_group_norm", "_native_batch_norm_legit"}
_SHAPE = {"view", "_unsafe_view", "reshape", "t", "unsqueeze", "squeeze", "flatten", "expand", "permute",
          "transpose", "clone", "detach", "alias", "contiguous", "select", "slice", "split", "cat",
          "empty", "empty_like", "zeros", "new_empty", "_to_copy", "copy_", "lift_fresh"}
_ACT = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "tanh", "gelu", "silu",
        "silu_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "leaky_relu", "leaky_relu_",
        "elu", "softmax", "_softmax", "log_softmax", "_log_softmax", "clamp", "clamp_min"}


def _numel(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return int(value.numel())
    if isinstance(value, list | tuple):
        return sum(_numel(v) for v in value)
    return 0


def _conv_kind(args: Sequence[Any]) -> tuple[str, float]:
    """The kind of a convolution (``dw3``, ``pw``, ``conv5``, ``gconv3``) and its FLOPs per output element."""
    x, weight = args[0], args[1]
    groups = int(args[8]) if len(args) > 8 else 1
    cin = int(x.shape[1])
    kernel = "x".join(str(int(k)) for k in weight.shape[2:]) or "1"
    kernel = kernel.split("x")[0] if len(set(kernel.split("x"))) == 1 else kernel
    per_out = 2.0 * float(math.prod(int(d) for d in weight.shape[1:]))
    if groups > 1 and groups == cin:
        return f"dw{kernel}", per_out
    if groups > 1:
        return f"gconv{kernel}", per_out
    if all(int(k) == 1 for k in weight.shape[2:]):
        return "pw", per_out
    return f"conv{kernel}", per_out


def _linear_flops(name: str, args: Sequence[Any], out_numel: int) -> float:
    try:
        if name == "addmm":
            return 2.0 * out_numel * int(args[1].shape[-1])
        return 2.0 * out_numel * int(args[0].shape[-1])
    except (AttributeError, IndexError, TypeError):
        return 0.0


def graph_features(model: Any, example_input: Any) -> dict[str, float]:
    """Per-kind op counts, output elements (thousands) and FLOPs (millions) of one forward pass.

    Runs ``model`` once under a recording dispatch mode; works on the ``meta`` device (shapes only).
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    records: list[tuple[str, tuple[Any, ...], int]] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            records.append((func.overloadpacket.__name__, tuple(args), _numel(out)))
            return out

    inputs = tuple(example_input) if isinstance(example_input, list | tuple) else (example_input,)
    model.eval()
    with torch.no_grad(), Recorder():
        model(*inputs)
    features: dict[str, float] = {}

    def add(kind: str, elements: int, flops: float = 0.0) -> None:
        features[f"n_{kind}"] = features.get(f"n_{kind}", 0.0) + 1.0
        features[f"k_elems_{kind}"] = features.get(f"k_elems_{kind}", 0.0) + elements / 1e3
        if flops:
            features[f"mflops_{kind}"] = features.get(f"mflops_{kind}", 0.0) + flops / 1e6

    for name, args, elements in records:
        if name in ("convolution", "_convolution", "conv2d", "conv1d"):
            kind, per_out = _conv_kind(args)
            add(kind, elements, per_out * elements)
            if kind.startswith("conv"):  # a regular KxK convolution runs as im2col + GEMM: its unfolded input
                im2col = per_out / 2 * elements / max(1, int(args[1].shape[0]))  # (C_in x K x K) x (H x W) x N
                features[f"k_im2col_{kind}"] = features.get(f"k_im2col_{kind}", 0.0) + im2col / 1e3
        elif name in _LINEAR:
            add("linear", elements, _linear_flops(name, args, elements))
        elif name in _SHAPE:
            add("shape", 0)
        elif name in _NORM:
            add("norm", elements)
        elif name in _REDUCE:
            add("reduce", _numel(args[0]) if args else elements)
        elif name in _ACT:
            add("act", elements)
        elif name in ("add", "add_"):
            add("add", elements)
        elif name in ("mul", "mul_", "div", "div_", "sub", "sub_"):
            add("mul", elements)
        else:
            add("other", elements)
    return features


def prebuilt_features(prebuilt: Any, input_shape: Sequence[int], num_classes: int,
                      scale: Mapping[str, Any] | None = None, batch_size: int = 1) -> Features:
    """A featurizer for a prebuilt space: builds each architecture on the meta device, records its graph. It
    remembers what it computed, so predictors fitted again and again on one featurizer build each model once."""
    shape = tuple(int(d) for d in input_shape)
    memo: dict[str, dict[str, float]] = {}

    def featurize(arch: Any) -> dict[str, float]:
        import torch

        key = prebuilt.space.fingerprint(arch)
        if key not in memo:
            with torch.device("meta"):
                model = prebuilt.build(arch, shape, num_classes, scale)
                example = torch.empty(batch_size, *shape)
            memo[key] = graph_features(model, example)
        return memo[key]

    return featurize


# ---- encoding features -------------------------------------------------------------------------------------

def encoding_features(space: Any) -> Features:
    """``space.encode(arch)`` with categorical positions one-hot (an unused position is its own value)."""
    mask = space.categorical_mask()
    slots = space.slots()

    def featurize(arch: Any) -> dict[str, float]:
        vector = space.encode(arch)
        out: dict[str, float] = {}
        for i, (value, categorical) in enumerate(zip(vector, mask, strict=True)):
            path = getattr(slots[i], "path", str(i))
            if categorical:
                out[f"{i}:{path}={int(round(value))}"] = 1.0
            else:
                out[f"{i}:{path}"] = float(value)
        return out

    return featurize


# ---- fitting -------------------------------------------------------------------------------------------------

def _nnls_ridge(a: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
    from scipy.optimize import nnls

    n = a.shape[1]
    penalty = math.sqrt(lam) * np.eye(n)
    penalty[0, 0] = 0.0  # the intercept (fixed per-model overhead) is not shrunk
    coef, _ = nnls(np.vstack([a, penalty]), np.concatenate([b, np.zeros(n)]), maxiter=50 * n)
    return coef


def _ridge(a: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
    n = a.shape[1]
    penalty = lam * np.eye(n)
    penalty[0, 0] = 0.0
    return np.linalg.solve(a.T @ a + penalty, a.T @ b)


class LatencyPredictor:
    """Predicts latency (ms) of an architecture from the measurements of a job so far.

    ``LatencyPredictor(space)`` uses the encoding features (any space); pass ``features=`` (or use
    :meth:`for_prebuilt`) for graph features of a built model, which predict far better.
    """

    def __init__(self, space: Any, features: Features | None = None, *, min_samples: int = MIN_SAMPLES) -> None:
        self.space = space
        self.additive = features is not None
        self._featurize = features or encoding_features(space)
        self.min_samples = min_samples
        self._names: list[str] = []
        self._scale: np.ndarray | None = None
        self._coef: np.ndarray | None = None
        self.lam: float | None = None
        self.samples = 0
        self.rejected = 0  # measurements left out of the last fit as noisy
        self._cache: dict[str, dict[str, float]] = {}

    @classmethod
    def for_prebuilt(cls, prebuilt: Any, input_shape: Sequence[int], num_classes: int,
                     scale: Mapping[str, Any] | None = None, batch_size: int = 1, **kwargs: Any
                     ) -> LatencyPredictor:
        """A predictor on graph features of ``prebuilt``'s models at this input shape, scale and batch."""
        featurizer = prebuilt_features(prebuilt, input_shape, num_classes, scale, batch_size)
        return cls(prebuilt.space, featurizer, **kwargs)

    @property
    def ready(self) -> bool:
        """Fitted on at least ``min_samples`` measurements."""
        return self._coef is not None and self.samples >= self.min_samples

    def features(self, arch: Any) -> dict[str, float]:
        key = self.space.fingerprint(arch)
        found = self._cache.get(key)
        if found is None:
            found = dict(self._featurize(arch))
            self._cache[key] = found
        return found

    def _matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        a = np.zeros((len(rows), len(self._names) + 1))
        a[:, 0] = 1.0
        index = {name: i + 1 for i, name in enumerate(self._names)}
        for r, row in enumerate(rows):
            for name, value in row.items():
                column = index.get(name)
                if column is not None:
                    a[r, column] = value
        return a

    def _solve(self, a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
        if self.additive:  # minimise the relative error: each row divided by its latency
            return _nnls_ridge(a / y[:, None], np.ones(len(y)), lam)
        return _ridge(a, np.log(y), lam)

    def _predict_rows(self, a: np.ndarray, coef: np.ndarray) -> np.ndarray:
        raw = a @ coef
        return raw if self.additive else np.exp(raw)

    def _choose_lambda(self, a: np.ndarray, y: np.ndarray) -> float:
        if len(y) < 2 * FOLDS:
            return 1e-2
        folds = np.arange(len(y)) % FOLDS
        best, best_error = RIDGE_GRID[0], math.inf
        for lam in RIDGE_GRID:
            errors = []
            for k in range(FOLDS):
                train, test = folds != k, folds == k
                coef = self._solve(a[train], y[train], lam)
                pred = self._predict_rows(a[test], coef)
                errors.extend(((pred - y[test]) / y[test]) ** 2)
            error = float(np.mean(errors))
            if error < best_error - 1e-12:
                best, best_error = lam, error
        return best

    def fit(self, archs: Sequence[Any], latencies_ms: Sequence[float]) -> LatencyPredictor:
        """Fit on measured architectures (replaces an earlier fit). Non-positive latencies are ignored.

        With ``min_samples`` or more, measurements far off the first fit (see ``REJECT_MADS``) are left out of a
        second one: a measurement slowed down by other work on the machine must not bend the model.
        """
        pairs = [(arch, float(ms)) for arch, ms in zip(archs, latencies_ms, strict=True)
                 if ms is not None and math.isfinite(float(ms)) and float(ms) > 0]
        self.rejected = 0
        self._fit_pairs(pairs)
        if self._coef is None or len(pairs) < self.min_samples:
            return self
        kept = self._consistent(pairs)
        if len(kept) < len(pairs):
            self._fit_pairs(kept)
            self.rejected, self.samples = len(pairs) - len(kept), len(pairs)
        return self

    def _consistent(self, pairs: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
        """The pairs the fitted model explains: log residuals within REJECT_MADS robust deviations."""
        measured = np.array([ms for _, ms in pairs])
        predicted = np.maximum(np.array(self.predict_many([arch for arch, _ in pairs])), 1e-9)
        residual = np.log(measured / predicted)
        centre = float(np.median(residual))
        spread = 1.4826 * float(np.median(np.abs(residual - centre)))
        outside = np.abs(residual - centre) > max(REJECT_MADS * spread, REJECT_FLOOR)
        if not outside.any() or outside.sum() > REJECT_MAX * len(pairs):
            return pairs
        return [pair for pair, out in zip(pairs, outside, strict=True) if not out]

    def _fit_pairs(self, pairs: list[tuple[Any, float]]) -> None:
        if len(pairs) < 2:
            self._coef, self.samples = None, len(pairs)
            return
        rows = [self.features(arch) for arch, _ in pairs]
        y = np.array([ms for _, ms in pairs])
        self._names = sorted({name for row in rows for name in row})
        raw = self._matrix(rows)
        scale = np.abs(raw).max(axis=0)
        scale[scale == 0] = 1.0
        scale[0] = 1.0
        a = raw / scale
        self.lam = self._choose_lambda(a, y)
        self._scale = scale
        self._coef = self._solve(a, y, self.lam)
        self.samples = len(pairs)

    def predict(self, arch: Any) -> float:
        """Predicted latency of ``arch`` in ms (fit first; see :attr:`ready`)."""
        return self.predict_many([arch])[0]

    def predict_many(self, archs: Sequence[Any]) -> list[float]:
        if self._coef is None or self._scale is None:
            raise NasappError("the latency predictor has not been fitted yet (it needs 2 or more measurements)")
        a = self._matrix([self.features(arch) for arch in archs]) / self._scale
        return [max(0.0, float(v)) for v in self._predict_rows(a, self._coef)]
