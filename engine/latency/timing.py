"""Time an ONNX model with ONNX Runtime on the CPU, or with a user's command for another device.

``measure_onnx`` creates one ``InferenceSession`` (CPUExecutionProvider, all graph optimisations,
sequential execution, ``threads`` intra-op threads, 1 inter-op thread), feeds it a fixed random input of the
model's own shapes, runs ``warmup`` untimed inferences and then ``runs`` timed ones (``perf_counter_ns``
around each ``session.run``, garbage collection paused). It reports the median (``latency_ms``), p90, mean and
coefficient of variation of those runs, the file size and the peak memory of inference.

Memory (Linux): the process's peak resident set (``VmHWM``) is reset through ``/proc/self/clear_refs`` just
before the session is created, after freed heap has been handed back to the system (``malloc_trim``);
``memory_mb`` is the growth of that peak over the resident size at the reset, so it covers loading the model,
ONNX Runtime's weights (prepacked copies included), its arena for activations, the input and output buffers
and thread stacks, over session creation and all runs. Where the peak cannot be reset the resident-size
growth at the end of the runs is reported instead (ONNX Runtime's arena keeps its peak allocation, so this is
close). docs/latency.md says more, limits included.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import math
import os
import re
import shlex
import statistics
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError

DEFAULT_WARMUP = 10
DEFAULT_RUNS = 200
DEFAULT_WINDOW = 10  # timed runs per window; latency_ms is the median of the quietest window
DEFAULT_BUDGET_S = 3.0  # timed runs stop after this long (once 3 windows are done): big models stay cheap

_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


# ---- memory ---------------------------------------------------------------------------------------------

def _status_kb(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current resident size; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _trim_heap() -> None:
    """Give freed heap pages back to the system (glibc), so earlier models do not hide this one's growth."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        with contextlib.suppress(Exception):
            trim(0)


class _PeakMemory:
    """Peak resident-memory growth (MiB) of this process from ``start()`` to ``stop()``."""

    def start(self) -> None:
        _trim_heap()
        self.resettable = _reset_peak_rss()
        self.base_kb = _status_kb("VmRSS")

    def stop(self) -> float | None:
        if self.base_kb is None:
            return None
        end = _status_kb("VmHWM" if self.resettable else "VmRSS")
        if end is None:
            return None
        return round(max(0, end - self.base_kb) / 1024.0, 3)


# ---- ONNX Runtime -----------------------------------------------------------------------------------------

def session_options(threads: int = 1) -> Any:
    """The session settings every measurement uses (see the module docstring)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: keep ORT's warnings out of the user's terminal
    return options


@cache
def _prime_runtime() -> None:
    """Load and run one small model from a file first, so ONNX Runtime's one-off process set-up (environment,
    kernel registries, file-loading paths) is never counted as a model's memory or time."""
    import tempfile

    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, save_model

    def weight(name: str, shape: list[int]) -> Any:
        return helper.make_tensor(name, TensorProto.FLOAT, shape, [0.01] * math.prod(shape))

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Sigmoid", ["g"], ["s"]),
        helper.make_node("Mul", ["c2", "s"], ["m"]),
        helper.make_node("Add", ["m", "r1"], ["a"]),
        helper.make_node("ReduceMean", ["a"], ["p"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["p", "w3"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "prime", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [weight("w1", [8, 4, 3, 3]), weight("w2", [8, 1, 3, 3]), weight("w3", [10, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory(prefix="nasapp-ort-") as folder:
        path = os.path.join(folder, "prime.onnx")
        save_model(model, path)
        session = ort.InferenceSession(path, session_options(1), providers=["CPUExecutionProvider"])
        session.run(None, {"x": np.zeros((1, 4, 8, 8), dtype=np.float32)})
        del session


def _input_shape(name: str, shape: list[Any], batch_size: int | None) -> list[int]:
    dims: list[int] = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, int) and dim > 0:
            if axis == 0 and batch_size is not None and dim != batch_size:
                raise NasappError(f"input '{name}' has a fixed batch size of {dim}, not {batch_size}:"
                                  f" export the model with batch size {batch_size}")
            dims.append(dim)
        elif axis == 0:
            dims.append(batch_size or 1)
        else:
            raise NasappError(f"input '{name}' has a dynamic dimension {dim!r} at axis {axis}: export the"
                              " model with a fixed input shape (only the batch axis may be dynamic)")
    return dims


def _random_inputs(session: Any, batch_size: int | None, seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    for arg in session.get_inputs():
        dtype = _NUMPY_TYPES.get(arg.type)
        if dtype is None:
            raise NasappError(f"input '{arg.name}' has type {arg.type}, which nasapp cannot feed")
        shape = _input_shape(arg.name, list(arg.shape), batch_size)
        if dtype.startswith("float"):
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[arg.name] = np.zeros(shape, dtype=dtype)
    return feeds


def _summary(times_ns: list[int], window: int) -> dict[str, float]:
    """Figures of the timed runs (in run order): ``latency_ms`` is the median of the quietest window."""
    ms = [t / 1e6 for t in times_ns]
    size = max(1, min(window, len(ms)))
    count = max(1, len(ms) // size)
    window_medians = [statistics.median(ms[i * size:(i + 1) * size]) for i in range(count)]
    ordered = sorted(ms)
    mean = statistics.fmean(ordered)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return {
        "latency_ms": round(min(window_medians), 5),
        "latency_median_all_ms": round(statistics.median(ordered), 5),
        "latency_p90_ms": round(p90, 5),
        "latency_mean_ms": round(mean, 5),
        "latency_cv": round(statistics.stdev(ordered) / mean, 5) if len(ordered) > 1 and mean > 0 else 0.0,
    }


def measure_onnx(path: str | os.PathLike[str], *, threads: int = 1, warmup: int = DEFAULT_WARMUP,
                 runs: int = DEFAULT_RUNS, batch_size: int | None = None, window: int = DEFAULT_WINDOW,
                 budget_s: float | None = DEFAULT_BUDGET_S, seed: int = 0) -> dict[str, Any]:
    """Time the ONNX model at ``path`` on this machine's CPU with ONNX Runtime.

    The timed runs are split, in the order they ran, into consecutive windows of ``window`` runs.
    ``latency_ms`` is the median of the quietest window (the smallest window median): other processes on a
    shared machine (even on other cores: shared caches, memory bandwidth, a hypervisor's SMT sibling) slow
    some windows down and never speed one up, so this is the model's latency on an unloaded machine, and it
    repeats far better than the median of all runs (``latency_median_all_ms``) when the machine is busy.
    ``latency_p90_ms``, ``latency_mean_ms`` and ``latency_cv`` (stdev / mean) are over all runs. Timed runs
    stop early once ``budget_s`` seconds have passed and 3 windows are done (``runs`` in the result says how
    many ran), so a large model does not take minutes. Also: ``onnx_bytes``, ``memory_mb`` (peak inference
    memory; None where it cannot be read), ``session_ms`` (session creation), ``threads``, ``warmup`` and
    ``batch_size``. ``batch_size`` fills a dynamic batch axis (1 when None) and must match a fixed one.
    """
    import onnxruntime as ort

    file = Path(path)
    if not file.is_file():
        raise NasappError(f"ONNX file not found: {file}")
    if threads < 1 or runs < 1 or warmup < 0:
        raise NasappError(f"need threads >= 1, runs >= 1 and warmup >= 0 (got {threads}, {runs}, {warmup})")
    _prime_runtime()
    memory = _PeakMemory()
    memory.start()
    started = time.perf_counter_ns()
    try:
        session = ort.InferenceSession(str(file), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - ORT raises its own exception types
        raise NasappError(f"ONNX Runtime cannot load {file}: {str(error).strip()[:400]}") from None
    session_ns = time.perf_counter_ns() - started
    feeds = _random_inputs(session, batch_size, seed)
    outputs = [out.name for out in session.get_outputs()]
    run = session.run
    try:
        for _ in range(warmup):
            run(outputs, feeds)
        times: list[int] = []
        clock = time.perf_counter_ns
        min_runs = min(runs, 3 * max(1, window))
        stop_at = clock() + int(budget_s * 1e9) if budget_s else None
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for i in range(runs):
                t0 = clock()
                run(outputs, feeds)
                t1 = clock()
                times.append(t1 - t0)
                if stop_at is not None and t1 > stop_at and i + 1 >= min_runs:
                    break
        finally:
            if gc_was_enabled:
                gc.enable()
    except NasappError:
        raise
    except Exception as error:  # noqa: BLE001
        raise NasappError(f"ONNX Runtime failed to run {file}: {str(error).strip()[:400]}") from None
    memory_mb = memory.stop()
    first = next(iter(feeds.values()), None)
    batch = int(first.shape[0]) if first is not None and first.ndim else 1
    del session, feeds
    return {
        **_summary(times, window),
        "onnx_bytes": file.stat().st_size,
        "memory_mb": memory_mb,
        "session_ms": round(session_ns / 1e6, 3),
        "threads": int(threads),
        "warmup": int(warmup),
        "runs": len(times),
        "batch_size": int(batch),
    }


# ---- a user's command ------------------------------------------------------------------------------------

def _tail(text: str, lines: int = 10, chars: int = 1500) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def measure_command(command: list[str] | tuple[str, ...], onnx_path: str | os.PathLike[str], *,
                    timeout: float = 600.0) -> dict[str, Any]:
    """Run ``command + [onnx_path]`` and read a latency in ms: the last number the program prints on stdout.

    For devices nasapp cannot time itself (a phone over adb, an edge board over ssh). A non-zero exit, no
    number, a timeout or a missing program raises :class:`NasappError` naming the command with the tail of
    its stderr. Returns ``latency_ms`` and ``onnx_bytes``.
    """
    if not command:
        raise NasappError("latency.command is empty: give a program and its arguments, e.g. [\"./time.sh\"]")
    file = Path(onnx_path)
    argv = [str(part) for part in command] + [str(file)]
    shown = shlex.join([str(part) for part in command])
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise NasappError(f"latency command {shown}: program not found: {argv[0]}") from None
    except PermissionError:
        raise NasappError(f"latency command {shown}: {argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise NasappError(f"latency command {shown} did not finish within {timeout:g} s") from None
    if result.returncode != 0:
        tail = _tail(result.stderr) or _tail(result.stdout) or "(no output)"
        raise NasappError(f"latency command {shown} failed (exit code {result.returncode}):\n{tail}")
    numbers = _NUMBER.findall(result.stdout)
    if not numbers:
        tail = _tail(result.stderr) or "(empty)"
        raise NasappError(f"latency command {shown} printed no number on stdout (it should print the"
                          f" latency in ms last); stdout: {_tail(result.stdout) or '(empty)'}; stderr: {tail}")
    latency = float(numbers[-1])
    if not math.isfinite(latency) or latency < 0:
        raise NasappError(f"latency command {shown} printed {numbers[-1]}, not a latency in ms")
    return {"latency_ms": latency, "onnx_bytes": file.stat().st_size if file.is_file() else None}
