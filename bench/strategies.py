"""Search strategies on the NAS-Bench-201 table (CIFAR-10 test accuracy), many seeds, against random search.

    python bench/strategies.py [--seeds 100] [--budget 200]

Each strategy asks for cells of the prebuilt `nb201` space; the "trainer" looks the accuracy up in
../shared/benchmarks/nb201_cifar10.csv. Regret = best accuracy in the table - best found so far.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from nasapp.engine.spaces.nb201 import SPACE, to_nb201_string
from nasapp.engine.strategies import TrialOutcome, make_strategy

TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "nb201_cifar10.csv"
CHECKPOINTS = (50, 100, 200)
REFERENCE = {  # from ../shared/benchmarks/README.md
    "random": {"50": 0.689, "100": 0.499, "200": 0.382, "optimum": 0.03},
    "evolution": {"50": 0.291, "100": 0.109, "200": 0.019, "optimum": 0.73},
}


def load_table(path: Path) -> dict[str, float]:
    with open(path) as handle:
        return {row["arch"]: float(row["test_accuracy"]) for row in csv.DictReader(handle)}


def run_search(name: str, seed: int, budget: int, table: dict[str, float]) -> list[float]:
    """The best accuracy found after each trial."""
    options = {"name": name, "population": 10, "sample_size": 5} if name == "evolution" else {"name": name}
    strategy = make_strategy(options, SPACE, seed)
    best, curve = float("-inf"), []
    for number in range(budget):
        arch = strategy.ask(1)[0]
        accuracy = table[to_nb201_string(arch)]
        strategy.tell(TrialOutcome(number, arch, "succeeded", score=accuracy, reward=accuracy))
        best = max(best, accuracy)
        curve.append(best)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args()
    table = load_table(args.table)
    optimum = max(table.values())
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for name in ("random", "evolution"):
        curves = [run_search(name, seed, args.budget, table) for seed in range(args.seeds)]
        figures = {str(n): statistics.mean(optimum - c[n - 1] for c in curves) for n in CHECKPOINTS
                   if n <= args.budget}
        figures["optimum"] = sum(c[-1] >= optimum for c in curves) / len(curves)
        results[name] = figures
    print(f"NAS-Bench-201 CIFAR-10, {args.seeds} seeds, budget {args.budget}; mean regret (ours | reference)")
    print(f"{'strategy':<10} " + " ".join(f"{'@' + str(n):>16}" for n in CHECKPOINTS) + f" {'found optimum':>18}")
    for name, figures in results.items():
        cells = [f"{figures.get(str(n), float('nan')):7.3f} | {REFERENCE[name][str(n)]:6.3f}" for n in CHECKPOINTS]
        print(f"{name:<10} " + " ".join(f"{c:>16}" for c in cells)
              + f" {figures['optimum']:8.0%} | {REFERENCE[name]['optimum']:5.0%}")
    print(json.dumps({"bench": "strategies", "seeds": args.seeds, "budget": args.budget, "results": results,
                      "reference": REFERENCE, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
