"""Multiply-adds ("FLOPs") of every NAS-Bench-201 cell as nasapp's `nb201` builder builds it (32x32, 10 classes).

    python bench/nb201_flops.py [--out /tmp/nb201_flops.csv] [--verify 50] [--seed 0]

Writes `arch,test_accuracy,flops` for every row of ../shared/benchmarks/nb201_cifar10.csv. Multiply-adds are
additive over layers, so instead of running 15,625 networks this measures, once, the part every network shares
(stem, reduction blocks, classifier: the network whose cells are all `none`) and each operation's cost at
each stage, then sums the edges that the builder's `Cell` builds (every edge but `none`, as the benchmark's
reference code does, dead ones included), times the cells per stage. `--verify` cells drawn at random
(plus the two extremes) are checked against a full forward pass counted with hooks: they must match exactly.
Also reported: the count as the benchmark's reference code builds cells (every non-`none` edge built), which
the README's 220.12 M / 7.78 M refer to; since the builder builds dead edges too, no cell differs. The last
line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import torch
from torch import nn

from nasapp.engine.proxies.sizes import count_macs
from nasapp.engine.spaces import nb201
from nasapp.engine.spaces.nb201_model import Cell, make_op

TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "nb201_cifar10.csv"
SHAPE = (3, 32, 32)
CLASSES = 10
REFERENCE = {"max": 220.12e6, "min": 7.78e6}  # from ../shared/benchmarks/README.md


class Costs:
    """The shared part's multiply-adds and each (stage, operation)'s, measured once with hooks."""

    def __init__(self) -> None:
        empty = nb201.build(dict.fromkeys(nb201.EDGE_KEYS, "none"), SHAPE, CLASSES)
        self.base = count_macs(empty, torch.zeros(1, *SHAPE))
        self.inputs = _cell_input_shapes(empty)  # one (C, H, W) per stage
        self.cells_per_stage = sum(isinstance(m, Cell) for m in empty.modules()) // len(self.inputs)
        self.op = {(stage, op): count_macs(make_op(op, shape[0]), torch.zeros(1, *shape))
                   for stage, shape in enumerate(self.inputs) for op in nb201.OPS if op != "none"}

    def network(self, ops: list[str], every_edge: bool = False) -> int:
        """Multiply-adds of the network of ``ops``: the builder's edges, or every non-none edge."""
        built = range(len(ops)) if every_edge else _built_edges(ops)
        per_stage = [sum(self.op[stage, ops[i]] for i in built if ops[i] != "none")
                     for stage in range(len(self.inputs))]
        return self.base + self.cells_per_stage * sum(per_stage)


def _cell_input_shapes(model: nn.Module) -> list[tuple[int, int, int]]:
    """The input shape of the first cell of each stage, recorded by hooks on one forward pass."""
    shapes: list[tuple[int, int, int]] = []

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        shape = tuple(args[0].shape[1:])
        if not shapes or shapes[-1] != shape:
            shapes.append(shape)  # type: ignore[arg-type]

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, Cell)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *SHAPE))
    for hook in hooks:
        hook.remove()
    return shapes


def _built_edges(ops: list[str]) -> list[int]:
    """Indices (benchmark order) of the edges the builder's Cell builds for ``ops``."""
    cell = Cell(ops, 1)
    return [nb201.EDGES.index(edge) for edge in cell.edges]


def load_table(path: Path) -> list[tuple[str, str]]:
    with open(path) as handle:
        return [(row["arch"], row["test_accuracy"]) for row in csv.DictReader(handle)]


def verify(costs: Costs, table: list[tuple[str, str]], count: int, seed: int) -> tuple[int, list[str]]:
    """Full hook counts of ``count`` random cells and both extremes against the sums; the mismatching ones."""
    picks = random.Random(seed).sample([arch for arch, _ in table], count)
    picks += [nb201.to_nb201_string(dict.fromkeys(nb201.EDGE_KEYS, op)) for op in ("nor_conv_3x3", "none")]
    wrong = []
    for text in picks:
        ops = nb201.arch_ops(nb201.from_nb201_string(text))
        full = count_macs(nb201.build(nb201.from_nb201_string(text), SHAPE, CLASSES), torch.zeros(1, *SHAPE))
        if full != costs.network(ops):
            wrong.append(f"{text}: hooks {full} != sum {costs.network(ops)}")
    return len(picks), wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/nb201_flops.csv"))
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--verify", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    costs = Costs()
    table = load_table(args.table)
    rows, reference_style = [], []
    for text, accuracy in table:
        ops = nb201.arch_ops(nb201.from_nb201_string(text))
        rows.append((text, accuracy, costs.network(ops)))
        reference_style.append(costs.network(ops, every_edge=True))
    with open(args.out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "test_accuracy", "flops"])
        writer.writerows(rows)
    summed_s = time.perf_counter() - started
    checked, wrong = verify(costs, table, args.verify, args.seed)
    flops = [row[2] for row in rows]
    differ = sum(ours != ref for ours, ref in zip(flops, reference_style, strict=True))
    figures = {
        "rows": len(rows), "out": str(args.out), "min_macs": min(flops), "max_macs": max(flops),
        "min_arch": rows[flops.index(min(flops))][0], "max_arch": rows[flops.index(max(flops))][0],
        "reference_style_min": min(reference_style), "reference_style_max": max(reference_style),
        "reference_readme": REFERENCE, "cells_differing_from_reference_style": differ,
        "verified": checked, "mismatches": len(wrong), "table_seconds": round(summed_s, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "op_macs": {f"stage{stage}:{op}": macs for (stage, op), macs in costs.op.items()}, "base_macs": costs.base,
    }
    print(f"wrote {len(rows)} rows to {args.out} in {summed_s:.1f} s")
    print(f"multiply-adds (nasapp builder): min {min(flops) / 1e6:.2f} M, max {max(flops) / 1e6:.2f} M")
    print(f"every edge built (reference):   min {min(reference_style) / 1e6:.2f} M, "
          f"max {max(reference_style) / 1e6:.2f} M (README: 7.78 M, 220.12 M)")
    print(f"cells whose count differs from the reference's: {differ} of {len(rows)}")
    print(f"verified against full hook counts: {checked} cells, {len(wrong)} mismatches")
    for line in wrong:
        print("  " + line)
    print(json.dumps(figures))
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
