"""ASHA early stopping vs none: the same real search on digits with MnasNet's space, per seed, side by side.

    .venv/bin/python bench/early_stopping.py            # 3 seeds, 24 trials of 900 steps: ~40 min on 2 cores
    .venv/bin/python bench/early_stopping.py --ema 0.98  # the same, evaluating an average of the weights

For each seed, two jobs run through the real CLI (`nasapp run JOB --db STORE`, a temporary store): the same
job file, once without early stopping and once with `[early_stopping] rule = "asha"`. Both use the `random`
strategy with the same seed and trial count: its proposals do not depend on outcomes and every trial's
training seed depends only on the job seed and the trial number, so both jobs train the same architectures
in the same order and a trial that is not pruned ends with the same accuracy in both. Per job: the best
validation accuracy of its succeeded trials, and its training steps: the `steps` metric of succeeded trials
plus `pruned_at_step` of pruned ones (the steps the trainer really ran, a few past the stop request, are in
the JSON as `trained_steps`). Target: ASHA reaches the same best accuracy with at most half the steps.
The last line printed is one JSON object with the figures.

The defaults put ASHA's rungs at 100 and 300 of 900 steps. With rungs at 25 or 50 of 300 steps the curves
had not separated yet (Spearman rho of accuracy at step 50 with the final one: 0.40), and ASHA pruned the
eventual best trial in each seed tried (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nasapp.store import Store

NASAPP = Path(sys.executable).parent / "nasapp"

JOB = """\
name = "{name}"
seed = {seed}

[space]
prebuilt = "mnasnet"
scale = {{ width = 0.25, depth = 0.5 }}

[data]
kind = "digits"
val_fraction = 0.25

[trainer]
prebuilt = "classification"
steps = {steps}
batch_size = 64
optimizer = "adamw"
lr = 0.004
weight_decay = 0.01
eval_every = {eval_every}
ema = {ema}

[strategy]
name = "random"

[search]
max_trials = {trials}
parallel = {parallel}
devices = "cpu"
trial_timeout_s = 600

[reward]
metric = "accuracy"
direction = "max"
"""

ASHA = """
[early_stopping]
rule = "asha"
min_steps = {min_steps}
reduction_factor = {eta}
min_trials = {min_trials}
max_rungs = {max_rungs}
"""


def job_text(args: argparse.Namespace, seed: int, asha: bool) -> str:
    name = f"bench-{'asha' if asha else 'none'}-seed{seed}"
    text = JOB.format(name=name, seed=seed, steps=args.steps, eval_every=args.eval_every, trials=args.trials,
                      parallel=args.parallel, ema=args.ema)
    if asha:
        text += ASHA.format(min_steps=args.min_steps, eta=args.eta, min_trials=args.min_trials,
                            max_rungs=args.max_rungs)
    return text


def run_job(folder: Path, text: str, name: str) -> dict[str, Any]:
    """Run one job file through `nasapp run` on the store in ``folder``; its figures from the store."""
    job = folder / f"{name}.toml"
    job.write_text(text)
    db = folder / "nasapp.db"
    started = time.monotonic()
    result = subprocess.run([str(NASAPP), "run", str(job), "--db", str(db)], capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"nasapp run {job} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    store = Store(db)
    job_id = max(j.id for j in store.jobs())
    return figures(store.trials(job_id), wall)


def figures(trials: list[Any], wall_s: float) -> dict[str, Any]:
    succeeded = [t for t in trials if t.status == "succeeded"]
    pruned = [t for t in trials if t.status == "pruned"]
    best = max(succeeded, key=lambda t: (t.metrics["accuracy"], -t.number))
    steps = sum(int(t.metrics["steps"]) for t in succeeded) + sum(int(t.metrics["pruned_at_step"]) for t in pruned)
    trained = sum(int(t.metrics.get("steps", t.metrics.get("pruned_at_step", 0))) for t in succeeded + pruned)
    return {"best_accuracy": best.metrics["accuracy"], "best_trial": best.number, "steps": steps,
            "trained_steps": trained, "succeeded": len(succeeded), "pruned": len(pruned),
            "failed": sum(t.status == "failed" for t in trials), "wall_s": round(wall_s, 1),
            "pruned_at": sorted(int(t.metrics["pruned_at_step"]) for t in pruned),
            "accuracy": {t.number: t.metrics["accuracy"] for t in succeeded}}


def same_training(none: dict[str, Any], asha: dict[str, Any]) -> str:
    """How many trials that succeeded in both jobs ended with the same accuracy (the comparison's premise)."""
    both = [n for n in asha["accuracy"] if n in none["accuracy"]]
    return f"{sum(asha['accuracy'][n] == none['accuracy'][n] for n in both)}/{len(both)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the stores in this folder (default: a temporary one)")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--ema", type=float, default=0.0, help="trainer.ema: evaluate an average of the weights")
    parser.add_argument("--min-steps", type=int, default=100, help="ASHA's first rung")
    parser.add_argument("--eta", type=int, default=3, help="ASHA's reduction factor")
    parser.add_argument("--min-trials", type=int, default=5)
    parser.add_argument("--max-rungs", type=int, default=2, help="rungs at min_steps * eta^k, k < max_rungs")
    args = parser.parse_args()
    rungs = [args.min_steps * args.eta ** k for k in range(args.max_rungs)]
    if rungs[-1] >= args.steps:
        raise SystemExit(f"the last rung ({rungs[-1]}) must be below --steps ({args.steps})")

    rows = []
    with tempfile.TemporaryDirectory(prefix="nasapp-bench-es-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            folder = (args.keep or Path(tmp)) / f"seed{seed}"
            folder.mkdir(parents=True)
            none = run_job(folder, job_text(args, seed, asha=False), "none")
            asha = run_job(folder, job_text(args, seed, asha=True), "asha")
            rows.append({"seed": seed, "none": none, "asha": asha, "steps_ratio": asha["steps"] / none["steps"],
                         "same_best": asha["best_accuracy"] >= none["best_accuracy"],
                         "identical_trials": same_training(none, asha)})
            print_row(rows[-1], first=len(rows) == 1)

    total_none = sum(r["none"]["steps"] for r in rows)
    total_asha = sum(r["asha"]["steps"] for r in rows)
    print(f"all seeds: ASHA used {total_asha / total_none:.1%} of the steps; same best accuracy in"
          f" {sum(r['same_best'] for r in rows)} of {len(rows)} seeds")
    print(json.dumps({
        "bench": "early_stopping", "trials": args.trials, "steps": args.steps, "eval_every": args.eval_every,
        "parallel": args.parallel, "asha": {"min_steps": args.min_steps, "reduction_factor": args.eta,
                                            "min_trials": args.min_trials, "rungs": rungs},
        "steps_ratio": round(total_asha / total_none, 4), "same_best": sum(r["same_best"] for r in rows),
        "seeds": rows,
    }))


def print_row(row: dict[str, Any], first: bool) -> None:
    none, asha = row["none"], row["asha"]
    if first:
        print(f"{'seed':>4}  {'best acc none':>13}  {'best acc asha':>13}  {'steps none':>10}  {'steps asha':>10}"
              f"  {'ratio':>6}  {'pruned':>6}  {'identical':>9}  {'wall none/asha':>14}")
    print(f"{row['seed']:>4}  {none['best_accuracy']:>13.4f}  {asha['best_accuracy']:>13.4f}  {none['steps']:>10}"
          f"  {asha['steps']:>10}  {row['steps_ratio']:>6.1%}  {asha['pruned']:>6}  {row['identical_trials']:>9}"
          f"  {none['wall_s']:>6.0f}/{asha['wall_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
