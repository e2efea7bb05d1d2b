"""The latency predictor at real sizes, as issue 12 measures it (docs/BENCHMARKS.md, "Fidelity").

    .venv/bin/python bench/latency_predictor.py                 # both settings, 70 archs, fit 50, 20 splits
    .venv/bin/python bench/latency_predictor.py --archs 40 --train 30 --splits 5   # quicker

For each setting (mnasnet at 3x32x32 width 0.5, and at 3x64x64 width 1.0; 10 classes), ``--archs`` distinct
sampled architectures are exported once and measured in ``--passes`` round-robin passes with nasapp's default
settings (ONNX Runtime on the CPU, 1 thread, 200 timed runs, median of the quietest window of 10). An
architecture's latency is the smallest of its passes (other work only ever slows a pass down); the single-pass
figure fits and tests on pass 1 alone, as a job that measures each trial once sees it.

The graph-feature predictor (engine/latency/predictor.py) is fitted on ``--train`` (at most 50) architectures
drawn at random and tested on the others, ``--splits`` times; reported: the median (and worst) share of test
architectures predicted within +-10%, the median relative error, and beside them the measurement noise: the
median run-to-run CV inside one measurement and the median CV of an architecture's latency across passes.
Target: a median share >= 90% at both settings. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from nasapp.engine.latency.accuracy import within
from nasapp.engine.latency.onnx_export import export_onnx
from nasapp.engine.latency.predictor import LatencyPredictor, prebuilt_features
from nasapp.engine.latency.timing import DEFAULT_RUNS, DEFAULT_WARMUP, DEFAULT_WINDOW, measure_onnx
from nasapp.engine.spaces.prebuilt import get_prebuilt

SETTINGS = {
    "3x32x32-w0.5": ((3, 32, 32), {"width": 0.5, "depth": 1.0}),
    "3x64x64-w1.0": ((3, 64, 64), {"width": 1.0, "depth": 1.0}),
}
NUM_CLASSES = 10
TARGET = 0.90
MAX_TRAIN = 50


def distinct_archs(space: Any, count: int, seed: int) -> list[Any]:
    archs, seen, k = [], set(), 0
    while len(archs) < count:
        arch = space.sample(seed + k)
        k += 1
        if space.fingerprint(arch) not in seen:
            seen.add(space.fingerprint(arch))
            archs.append(arch)
    return archs


def measure_setting(folder: Path, name: str, archs: list[Any], passes: int, threads: int) -> list[list[dict]]:
    prebuilt = get_prebuilt("mnasnet")
    shape, scale = SETTINGS[name]
    paths = []
    for i, arch in enumerate(archs):
        model = prebuilt.build(arch, shape, NUM_CLASSES, scale)
        paths.append(export_onnx(model, torch.randn(1, *shape), folder / f"{name}-{i}.onnx"))
    per_pass = []
    for k in range(passes):
        per_pass.append([measure_onnx(path, threads=threads, warmup=DEFAULT_WARMUP, runs=DEFAULT_RUNS,
                                      window=DEFAULT_WINDOW) for path in paths])
        print(f"  {name}: pass {k + 1}/{passes} measured", flush=True)
    return per_pass


def split_scores(archs: list[Any], latencies: list[float], featurize: Any, train: int, splits: int
                 ) -> dict[str, Any]:
    space = get_prebuilt("mnasnet").space
    shares, errors, rejected = [], [], []
    for split in range(splits):
        order = list(range(len(archs)))
        random.Random(split).shuffle(order)
        fit, test = order[:train], order[train:]
        predictor = LatencyPredictor(space, featurize).fit([archs[i] for i in fit], [latencies[i] for i in fit])
        predicted = predictor.predict_many([archs[i] for i in test])
        measured = [latencies[i] for i in test]
        shares.append(within(predicted, measured))
        errors.extend(abs(p - m) / m for p, m in zip(predicted, measured, strict=True))
        rejected.append(predictor.rejected)
    return {"median_within10": statistics.median(shares), "worst_within10": min(shares),
            "median_error": statistics.median(errors), "median_rejected": statistics.median(rejected)}


def run_setting(folder: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    prebuilt = get_prebuilt("mnasnet")
    shape, scale = SETTINGS[name]
    archs = distinct_archs(prebuilt.space, args.archs, args.seed)
    per_pass = measure_setting(folder, name, archs, args.passes, args.threads)
    passes = [[m["latency_ms"] for m in row] for row in per_pass]
    best = [min(values) for values in zip(*passes, strict=True)]
    run_cv = statistics.median(m["latency_cv"] for row in per_pass for m in row)
    pass_cv = statistics.median(statistics.pstdev(v) / statistics.fmean(v) for v in zip(*passes, strict=True)) \
        if args.passes > 1 else None
    featurize = prebuilt_features(prebuilt, shape, NUM_CLASSES, scale)  # remembers: every split shares it

    out = {"setting": name, "archs": args.archs, "train": args.train, "splits": args.splits,
           "latency_ms": [round(min(best), 4), round(statistics.median(best), 4), round(max(best), 4)],
           "run_to_run_cv": round(run_cv, 4), "across_passes_cv": None if pass_cv is None else round(pass_cv, 4),
           "min_of_passes": split_scores(archs, best, featurize, args.train, args.splits),
           "single_pass": split_scores(archs, passes[0], featurize, args.train, args.splits)}
    for kind in ("min_of_passes", "single_pass"):
        r = out[kind]
        print(f"{name} ({kind.replace('_', ' ')}): median {r['median_within10']:.0%} of held-out architectures within"
              f" +-10% (worst split {r['worst_within10']:.0%}, median error {r['median_error']:.1%},"
              f" {r['median_rejected']:g} measurements rejected per fit)")
    print(f"{name}: latency {out['latency_ms'][0]}..{out['latency_ms'][2]} ms; measurement CV run-to-run"
          f" {run_cv:.1%}" + ("" if pass_cv is None else f", across passes {pass_cv:.1%}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=70, help="architectures per setting (default 70)")
    parser.add_argument("--train", type=int, default=50, help=f"fitted on (at most {MAX_TRAIN}; default 50)")
    parser.add_argument("--splits", type=int, default=20, help="random fit/test splits (default 20)")
    parser.add_argument("--passes", type=int, default=3, help="measurement passes (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--seed", type=int, default=5000, help="of the sampled architectures (default 5000)")
    args = parser.parse_args()
    if not 2 <= args.train <= MAX_TRAIN or args.train >= args.archs:
        sys.exit(f"bench/latency_predictor.py: --train must be 2..{MAX_TRAIN} and fewer than --archs")
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    print(f"latency predictor bench: python {platform.python_version()}, torch {torch.__version__},"
          f" {os.cpu_count()} CPUs, load average {load:.2f}")
    with tempfile.TemporaryDirectory(prefix="nasapp-predictor-bench-") as tmp:
        results = [run_setting(Path(tmp), name, args) for name in SETTINGS]
    met = all(r["min_of_passes"]["median_within10"] >= TARGET for r in results)
    print(json.dumps({"bench": "latency_predictor", "results": results, "target": TARGET, "met": met,
                      "load_average": [round(load, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
