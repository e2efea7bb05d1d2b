"""`nasapp latency`: time an ONNX file, or an architecture of a prebuilt space, on this machine's CPU.

A plain function the CLI wraps in typer:

    nasapp latency model.onnx
    nasapp latency --space mnasnet --arch '{"blocks": [...]}' --input-shape 3,32,32 --width 0.5
    nasapp latency --space mnasnet --seed 3 --json
    nasapp latency --space mnasnet --baseline mnasnet-b1 --input-shape 3,224,224 --num-classes 1000
    nasapp latency --job 3 --trial 12      # re-time a trial's model.onnx with its job's [latency] settings
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nasapp.app.formatting import fmt_count, json_document
from nasapp.engine.errors import NasappError

DEFAULT_IMAGE_SHAPE = (3, 32, 32)
DEFAULT_TABULAR_SHAPE = (64,)
MAX_INPUT_VALUES = 2**27  # per model input: 512 MiB of float32 (an image model's input is a few MiB at most)


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"3,32,32"``, ``"3x32x32"`` or ``"(3, 32, 32)"`` as a tuple of positive ints; None for empty."""
    if text is None or not str(text).strip():
        return None
    parts = [p for p in re.split(r"[\s,x×()\[\]]+", str(text).strip()) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise NasappError(f"--input-shape: expected positive integers like 3,32,32 (C,H,W) or 64 (features);"
                          f" got {text!r}")
    return shape


def _load_arch(arch: str | None, arch_file: str | None, seed: int | None, space: Any,
               baselines: Any = None, baseline: str | None = None, space_name: str = "") -> Any:
    given = [name for name, value in (("--arch", arch), ("--arch-file", arch_file), ("--seed", seed),
                                      ("--baseline", baseline)) if value is not None]
    if len(given) != 1:
        raise NasappError("give exactly one of --arch JSON, --arch-file FILE, --baseline NAME or --seed N (to"
                          " sample one)" + (f"; got {', '.join(given)}" if given else ""))
    if seed is not None:
        return space.sample(int(seed))
    if baseline is not None and baseline not in (baselines or {}):
        known = ", ".join(baselines or {}) or "none"
        raise NasappError(f"--baseline: {baseline!r} is not a baseline of space {space_name}; its baselines: {known}")
    name = baseline if baseline is not None else arch
    if name is not None and name in (baselines or {}):
        return space.canonical(baselines[name])  # a named baseline, e.g. --baseline mnasnet-b1
    if arch_file is not None:
        path = Path(arch_file)
        if not path.is_file():
            raise NasappError(f"--arch-file: file not found: {path}")
        text, where = path.read_text(), str(path)
    else:
        text, where = str(arch), "--arch"
    try:
        value = json.loads(text)
    except ValueError as error:
        raise NasappError(f"{where}: not valid JSON ({error})") from None
    if isinstance(value, dict) and "arch" in value and not space.is_valid(value):
        value = value["arch"]  # a trial's or `nasapp export`'s architecture document
    space.validate(value)  # SpaceError with the path: "blocks[3].kernel: 9 is not one of [3, 5, 7]"
    return space.canonical(value)


def check_input_sizes(path: Path, batch_size: int) -> None:
    """Refuse an ONNX file whose inputs (their dynamic batch axis filled with ``batch_size``) are too large to
    fill with random values: a huge declared shape would otherwise exhaust the memory before timing starts."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a file ONNX cannot parse is reported by the timing, which loads it too
        return
    weights = {tensor.name for tensor in model.graph.initializer}
    for value in model.graph.input:
        if value.name in weights or not value.type.HasField("tensor_type"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if any(d is not None and d < 0 for d in dims):
            raise NasappError(f"{path}: input {value.name!r} has a negative dimension {dims}; re-export the model")
        shape = [batch_size if d is None and axis == 0 else (d if d is not None else 1) for axis, d in enumerate(dims)]
        count = math.prod(shape)
        if count > MAX_INPUT_VALUES:
            raise NasappError(f"{path}: input {value.name!r} has shape {shape}: {count:,} values"
                              f" ({count * 4 / 2**30:,.1f} GiB as float32), more than the {MAX_INPUT_VALUES:,}"
                              " nasapp latency fills with random data; export the model with a smaller input shape")


def _onnx_costs(path: Path, batch_size: int) -> dict[str, int | None]:
    """MACs, FLOPs and params read from the ONNX graph (None each when the graph cannot be read)."""
    from nasapp.engine.latency.onnx_costs import onnx_costs

    try:
        return onnx_costs(path, batch_size)
    except Exception:  # noqa: BLE001 - the figures are a courtesy; timing reports the real problem
        return {"macs": None, "flops": None, "params": None}


def measure_architecture(space_name: str, arch: Any, input_shape: tuple[int, ...] | None, num_classes: int,
                         scale: dict[str, Any], *, batch_size: int, opset: int, threads: int, warmup: int,
                         runs: int, output: str | None = None) -> dict[str, Any]:
    """Build, export and time one architecture of a prebuilt space; MACs, FLOPs and params from torch."""
    import torch

    from nasapp.engine.latency.onnx_export import export_onnx
    from nasapp.engine.latency.profile import model_profile
    from nasapp.engine.latency.timing import measure_onnx
    from nasapp.engine.spaces.prebuilt import get_prebuilt

    prebuilt = get_prebuilt(space_name)
    shape = input_shape or (DEFAULT_IMAGE_SHAPE if prebuilt.kind == "vision" else DEFAULT_TABULAR_SHAPE)
    model = prebuilt.build(arch, shape, num_classes, scale)
    example = torch.randn(batch_size, *shape)
    profile = model_profile(model, example)
    with tempfile.TemporaryDirectory(prefix="nasapp-latency-") as tmp:
        path = Path(output) if output else Path(tmp) / "model.onnx"
        export_onnx(model, example, path, opset=opset)
        metrics = measure_onnx(path, threads=threads, warmup=warmup, runs=runs, batch_size=batch_size)
    return {
        "source": space_name,
        "arch": arch,
        "fingerprint": prebuilt.space.fingerprint(arch),
        "input_shape": list(shape),
        "num_classes": num_classes,
        "scale": scale,
        "opset": opset,
        **({"onnx_path": str(Path(output).resolve())} if output else {}),
        **metrics,
        **profile,
    }


def retime_trial(store: Any, job: Any, number: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Time trial ``number``'s saved ``model.onnx`` again with its job's ``[latency]`` settings (``overrides``:
    threads, runs, warmup, batch_size given on the command line); beside the figure the trial recorded."""
    from nasapp.engine.jobs.spec import job_spec
    from nasapp.engine.latency.measuring import measure

    trial = store.trial_by_number(job.id, number)
    if trial is None:
        raise NasappError(f"job {job.id} has no trial {number}")
    path = store.trial_dir(job.id, number) / "model.onnx"
    if not path.is_file():
        raise NasappError(f"trial {number} of job {job.id} saved no model.onnx ({path}): its trainer never called"
                          " ctx.save_model, or the trial did not get that far")
    settings = job_spec(job).latency.model_dump()
    if settings.get("device", "none") == "none" and not settings.get("command"):
        settings["device"] = "cpu-ort"  # the job measured nothing: time it on this CPU with its other settings
    settings.update({key: value for key, value in overrides.items() if value is not None})
    check_input_sizes(path, int(settings["batch_size"]))
    metrics = measure(settings, str(path))
    result: dict[str, Any] = {"source": f"job {job.id} trial {number}", "job": job.id, "trial": number,
                              "onnx_path": str(path), **metrics, **_onnx_costs(path, int(settings["batch_size"]))}
    recorded = trial.metrics.get("latency_ms")
    if isinstance(recorded, int | float) and recorded > 0:
        result["recorded_latency_ms"] = recorded
        result["ratio_to_recorded"] = round(metrics["latency_ms"] / recorded, 4)
    return result


def latency_command(target: str | None = None, space: str | None = None, arch: str | None = None,
                    arch_file: str | None = None, seed: int | None = None, baseline: str | None = None,
                    input_shape: str | None = None,
                    num_classes: int = 10, width: float = 1.0, depth: float = 1.0, threads: int | None = None,
                    runs: int | None = None, warmup: int | None = None, batch_size: int | None = None,
                    opset: int = 17, output: str | None = None, as_json: bool = False,
                    console: Console | None = None, store: Any = None, job: Any = None,
                    trial: int | None = None) -> dict[str, Any]:
    """Time an ONNX file (``target``), an architecture of a prebuilt ``space``, or a ``trial`` of ``job`` (a Job
    record of ``store``); print a table or JSON.

    Returns the figures printed. User mistakes (no such file, bad JSON, an invalid architecture, both or
    neither of a file and a space) raise NasappError.
    """
    from nasapp.engine.latency.timing import DEFAULT_RUNS, DEFAULT_WARMUP, measure_onnx

    out = console or Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    if (job is None) != (trial is None):
        raise NasappError("give both --job J and --trial N to re-time a trial")
    if job is not None:
        if target is not None or space is not None:
            raise NasappError("give --job/--trial, an ONNX file or --space, not more than one")
        for name, value in (("--threads", threads), ("--runs", runs), ("--batch-size", batch_size)):
            if value is not None and value < 1:
                raise NasappError(f"{name} must be 1 or more")
        result = retime_trial(store, job, int(trial), {"threads": threads, "runs": runs, "warmup": warmup,
                                                       "batch_size": batch_size})
        _show(out, result, as_json)
        return result
    threads = 1 if threads is None else threads
    batch_size = 1 if batch_size is None else batch_size
    runs = DEFAULT_RUNS if runs is None else runs
    warmup = DEFAULT_WARMUP if warmup is None else warmup
    if threads < 1 or runs < 1 or warmup < 0 or batch_size < 1:
        raise NasappError("--threads, --runs and --batch-size must be 1 or more, --warmup 0 or more")
    if (target is None) == (space is None):
        raise NasappError("give an ONNX file (nasapp latency model.onnx) or a prebuilt space"
                          " (nasapp latency --space mnasnet --seed 0), not both" if target is not None
                          else "give an ONNX file (nasapp latency model.onnx) or a prebuilt space"
                          " (nasapp latency --space mnasnet --seed 0)")
    shape = parse_shape(input_shape)
    if shape is not None and math.prod(shape) * batch_size > MAX_INPUT_VALUES:
        raise NasappError(f"--input-shape {input_shape} with --batch-size {batch_size} is"
                          f" {math.prod(shape) * batch_size:,} input values, more than {MAX_INPUT_VALUES:,}; give a"
                          " smaller shape")
    if target is not None:
        path = Path(target)
        if not path.is_file():
            raise NasappError(f"ONNX file not found: {path}")
        check_input_sizes(path, batch_size)
        metrics = measure_onnx(path, threads=threads, warmup=warmup, runs=runs, batch_size=batch_size)
        result: dict[str, Any] = {"source": str(path.resolve()), **metrics, **_onnx_costs(path, batch_size)}
    else:
        from nasapp.engine.spaces.prebuilt import get_prebuilt
        from nasapp.engine.spaces.scale import normalize_scale

        prebuilt = get_prebuilt(str(space))
        scale = normalize_scale({"width": width, "depth": depth})
        chosen = _load_arch(arch, arch_file, seed, prebuilt.space, prebuilt.baselines, baseline, prebuilt.name)
        result = measure_architecture(prebuilt.name, chosen, shape, num_classes, scale, batch_size=batch_size,
                                      opset=opset, threads=threads, warmup=warmup, runs=runs, output=output)
        named = baseline if baseline is not None else arch if arch in prebuilt.baselines else None
        if named is not None:
            result = {"baseline": named, **result}
    _show(out, result, as_json)
    return result


def _show(out: Console, result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print(json_document(result), markup=False)
    else:
        _print_table(out, result)


def _print_table(out: Console, result: dict[str, Any]) -> None:
    title = f"latency of {result['source']}"
    if "baseline" in result:
        title += f" baseline {result['baseline']}"
    if "fingerprint" in result:
        title += f" ({result['fingerprint']}, input {'x'.join(map(str, result['input_shape']))})"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    memory = result.get("memory_mb")

    def ms(key: str) -> str | None:
        return f"{result[key]:.4f} ms" if isinstance(result.get(key), int | float) else None

    rows = [
        ("latency (median)", ms("latency_ms")),
        ("recorded by the trial", ms("recorded_latency_ms")),
        ("now / recorded", f"{result['ratio_to_recorded']:.3f}" if "ratio_to_recorded" in result else None),
        ("ONNX Runtime on this CPU", ms("cpu_latency_ms")),
        ("median of all runs", ms("latency_median_all_ms")),
        ("latency p90", ms("latency_p90_ms")),
        ("latency mean", ms("latency_mean_ms")),
        ("run-to-run CV", f"{result['latency_cv']:.1%}" if "latency_cv" in result else None),
        ("MACs (multiply-accumulates)", fmt_count(result.get("macs"))),
        ("FLOPs (2 x MACs)", fmt_count(result.get("flops"))),
        ("params", fmt_count(result.get("params"))),
        ("peak memory", "-" if memory is None else f"{memory:.2f} MiB"),
        ("ONNX file", f"{result['onnx_bytes'] / 1024:.1f} KiB" if result.get("onnx_bytes") else None),
        ("settings", f"batch {result['batch_size']}, {result['threads']} thread(s), {result['warmup']} warm-up,"
                     f" {result['runs']} runs" if "runs" in result else None),
    ]
    for name, value in rows:
        if value is not None:
            table.add_row(name, value)
    out.print(table)
    if "arch" in result:
        out.print("architecture: " + json.dumps(result["arch"], sort_keys=True), markup=False)
