"""Zero-cost proxies on NAS-Bench-201: Spearman correlation with CIFAR-10 test accuracy, and their cost.

    python bench/zero_cost.py [--cells 1000] [--seed 0] [--batch 64] [--threads 1] [--raw scores.csv]

Draws `--cells` rows of ../shared/benchmarks/nb201_cifar10.csv at random (seeded), builds each cell with the
`nb201` builder (C=16, N=5, 32x32 input, 10 classes; weights seeded with `--seed`, as a trial of that seed
would be) and scores it with every proxy of engine/proxies. No data is downloaded: the data-dependent
proxies (naswot, grad_norm, jacob_cov) see one fixed batch of standard-normal images with uniform labels.
Reported per proxy: Spearman's rho with the table's test accuracy, rho with our parameter count (how much
of the proxy is network size), and seconds per cell. The parameter count as the benchmark's reference code
builds it (../shared/benchmarks/nb201_reference_params.csv) is listed for comparison. The last line is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from nasapp.engine.proxies import PROXIES
from nasapp.engine.proxies.scoring import score_model, synthetic_batch
from nasapp.engine.spaces import nb201

BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"
SHAPE = (3, 32, 32)
CLASSES = 10
SYNFLOW_TARGET = 0.75


def load_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def score_cell(text: str, names: list[str], batch: tuple[torch.Tensor, torch.Tensor],
               seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Every proxy's value for one cell, and the seconds each took (building the model not counted)."""
    torch.manual_seed(seed)
    model = nb201.build(nb201.from_nb201_string(text), SHAPE, CLASSES).train()
    values, seconds = {}, {}
    for name in names:
        started = time.perf_counter()
        values[name] = score_model(model, [name], *batch, seed)[name]
        seconds[name] = time.perf_counter() - started
    return values, seconds


def rho(xs: list[float], ys: list[float]) -> float:
    """Spearman's rho (-inf scores rank lowest, as they should: the degenerate networks)."""
    return float(spearmanr(xs, ys).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64, help="batch size of the data-dependent proxies")
    parser.add_argument("--raw", type=Path, help="also write every cell's scores to this CSV")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine two threads ran 5x slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = PROXIES.names()
    reference_params = {row["arch"]: float(row["params"])
                        for row in load_rows(BENCHMARKS / "nb201_reference_params.csv")}
    cells = random.Random(args.seed).sample(load_rows(BENCHMARKS / "nb201_cifar10.csv"), args.cells)
    batch = synthetic_batch(SHAPE, CLASSES, args.batch, seed=args.seed)
    scores: dict[str, list[float]] = {name: [] for name in names}
    seconds: dict[str, float] = dict.fromkeys(names, 0.0)
    started = time.perf_counter()
    for index, row in enumerate(cells, start=1):
        values, took = score_cell(row["arch"], names, batch, args.seed)
        for name in names:
            scores[name].append(values[name])
            seconds[name] += took[name]
        if index % 10 == 0:
            print(f"{index}/{len(cells)} cells, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if args.raw:
        _write_raw(args.raw, cells, names, scores)
    accuracy = [float(row["test_accuracy"]) for row in cells]
    results = {name: {"spearman": rho(scores[name], accuracy), "spearman_vs_params": rho(scores[name],
                      scores["params"]), "s_per_cell": seconds[name] / len(cells),
                      "non_finite": sum(not math.isfinite(v) for v in scores[name])} for name in names}
    reference = [reference_params[row["arch"]] for row in cells]
    results["params (reference builder)"] = {"spearman": rho(reference, accuracy),
                                             "spearman_vs_params": rho(reference, scores["params"]),
                                             "s_per_cell": 0.0, "non_finite": 0}
    _print_table(results, len(cells), args)
    figures = {"cells": len(cells), "seed": args.seed, "batch": args.batch, "threads": torch.get_num_threads(),
               "total_s": round(time.perf_counter() - started, 1), "synflow_target": SYNFLOW_TARGET,
               "synflow_meets_target": results["synflow"]["spearman"] >= SYNFLOW_TARGET,
               "proxies": {name: {k: round(v, 4) for k, v in r.items()} for name, r in results.items()}}
    print(json.dumps(figures))


def _print_table(results: dict[str, dict[str, float]], cells: int, args: argparse.Namespace) -> None:
    print(f"{cells} NAS-Bench-201 cells (seed {args.seed}), synthetic batch of {args.batch}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'proxy':28} {'rho(test acc)':>13} {'rho(params)':>12} {'s/cell':>8} {'non-finite':>10}")
    for name, r in results.items():
        kind = " (size)" if name in PROXIES and PROXIES.get(name).kind == "size" else ""
        print(f"{name + kind:28} {r['spearman']:13.3f} {r['spearman_vs_params']:12.3f} "
              f"{r['s_per_cell']:8.3f} {r['non_finite']:10d}")


def _write_raw(path: Path, cells: list[dict[str, str]], names: list[str], scores: dict[str, list[float]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "test_accuracy", *names])
        for index, row in enumerate(cells):
            writer.writerow([row["arch"], row["test_accuracy"], *(scores[name][index] for name in names)])


if __name__ == "__main__":
    main()
