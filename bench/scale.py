"""Jobs of 100,000 trials: every command and screen stays interactive.

    .venv/bin/python bench/scale.py                       # 100,000 trials, against a 1,000-trial job
    .venv/bin/python bench/scale.py --trials 10000 --keep /tmp/scale
    .venv/bin/python bench/scale.py --only ls,show,pareto-json   # a subset (names as printed)

Two stores are synthesised the way bench/tui.py builds one (MnasNet's real space and sampled architectures,
accuracy/latency/params/FLOPs, 5 % failed trials with messages, two intermediate reports per trial, the job
left "running"): one with ``--trials`` trials and one with 1,000. The best trial of each gets real trained-
shape weights (model.pt of its architecture) so `export --best 1` exports a real model. Then, on each store:

- the commands a user types, each run as its own process (`nasapp ...`, the median of ``--repeat`` runs, wall
  time from start to exit, imports included, and CPU time as "NAME-cpu"): `ls`, `show 1`, `show 1 --json`,
  `pareto 1 --json`, `export 1 --best 1`;
- the dashboard (bench/tui.py's measurement): the job screen's first render, a live tick and the redraw after it;
- `resume` start-up of every registered strategy on a history of that many trials (bench/resume_scale.py).

Printed: one line per figure with its ratio to the 1,000-trial job (the goal is a cost that does not grow with
the number of trials), then one JSON object: ``{"trials": N, "seconds": {COMMAND: s}, "ratios": {...},
"targets": {...}}``. ``--keep DIR`` builds the stores in DIR and leaves them there (and reuses them when present).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

BASE_TRIALS = 1000
JOB = "1"
# The targets, seconds, on a quiet 2-core machine at 100,000 trials.
TARGETS = {"ls": 0.6, "show": 0.6, "show-json": 0.6, "pareto-json": 2.0, "dashboard-first-render": 1.0,
           "dashboard-first-render-cpu": 1.0,
           "dashboard-redraw": 0.1, "dashboard-tick": 0.1, "resume": 30.0}
COMMANDS = {
    "ls": ["ls"],
    "show": ["show", JOB],
    "show-json": ["show", JOB, "--json"],
    "pareto-json": ["pareto", JOB, "--json"],
    "export-best": ["export", JOB, "--best", "1", "-o", "{out}"],
}
NASAPP = Path(sys.executable).with_name("nasapp")


def build(path: Path, trials: int, seed: int) -> None:
    """A store with one job of ``trials`` trials, its best trial given weights of its architecture."""
    from tui import build_store

    if path.exists():
        print(f"store: reusing {path}", flush=True)
        return
    started = time.perf_counter()
    writer = build_store(path, trials, seed)
    writer.store.close()
    give_best_weights(path)
    print(f"store: {trials:,} trials synthesised in {time.perf_counter() - started:.1f} s ({path})", flush=True)


def give_best_weights(path: Path) -> None:
    """Save model.pt for the job's best trial: the weights of its real model (untrained), as a trainer would."""
    import torch

    from nasapp.engine.data.loaders import load_dataset
    from nasapp.engine.jobs.spec import job_spec
    from nasapp.engine.spaces.prebuilt import get_prebuilt
    from nasapp.store import Store

    store = Store(path)
    job = store.job(int(JOB))
    spec = job_spec(job)
    best = store.best_trials(job.id, 1, spec.reward.direction)[0]
    data = load_dataset(spec.data, spec.seed)
    model = get_prebuilt(spec.space.prebuilt).build(best.arch, tuple(data.input_shape), int(data.num_classes),
                                                   spec.space.scale.model_dump())
    folder = store.trial_dir(job.id, best.number)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    store.close()


def time_command(args: list[str], db: Path, repeat: int, scratch: Path) -> tuple[float, float]:
    """The median wall time and the median CPU time (user + system, the process and its children) of
    ``nasapp ARGS --db DB`` over ``repeat`` runs, each a new process. On a loaded machine the wall time includes
    waiting for a core; the CPU time is what a quiet machine's wall time would be for these one-thread commands."""
    walls, cpus = [], []
    for run in range(repeat):
        out = scratch / f"export-{run}"
        argv = [str(NASAPP), *(a.format(out=out) for a in args), "--db", str(db)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        shutil.rmtree(out, ignore_errors=True)
    return statistics.median(walls), statistics.median(cpus)


def dashboard(db: Path, seed: int) -> dict[str, float]:
    """The job screen's first render (wall, until idle), a live tick (wall) and the redraw after it (CPU), the
    medians over 10 ticks: bench/tui.py's measurement on a copy of the store."""
    import asyncio

    import tui

    found = asyncio.run(tui.run(argparse.Namespace(store=db, trials=0, ticks=10, naive_ticks=1, seed=seed,
                                                   datatable=False)))
    return {"dashboard-first-render": found["first_render_ms"] / 1000,
            "dashboard-first-render-cpu": found["first_render_cpu_ms"] / 1000,
            "dashboard-tick": found["tick_ms"]["median_ms"] / 1000,
            "dashboard-redraw": found["redraw_ms"]["median_ms"] / 1000}


def resume(trials: int, folder: Path, strategies: list[str] | None) -> dict[str, float]:
    """Each strategy's `resume` start-up (bench/resume_scale.py): wall and CPU seconds."""
    from resume_scale import measure as measure_resume

    found: dict[str, float] = {}
    for name, (wall, cpu) in measure_resume(trials, folder, strategies).items():
        found[f"resume:{name}"], found[f"resume:{name}-cpu"] = wall, cpu
    return found


def measure(db: Path, trials: int, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    seconds: dict[str, float] = {}
    wanted = set(args.only.split(",")) if args.only else None
    for name, command in COMMANDS.items():
        if wanted is None or name in wanted:
            seconds[name], seconds[f"{name}-cpu"] = time_command(command, db, args.repeat, folder)
            print(f"  {name}: {seconds[name]:.3f} s ({seconds[f'{name}-cpu']:.3f} s CPU)", flush=True)
    if wanted is None or "dashboard" in wanted:
        seconds.update(dashboard(db, args.seed))
    if wanted is None or "resume" in wanted:
        strategies = args.strategies.split(",") if args.strategies else None
        seconds.update(resume(trials, folder / f"resume-{trials}", strategies))
    return seconds


def target_of(name: str) -> float | None:
    """A figure's target: its command's (a "-cpu" figure has its command's target too)."""
    base = name.split(":")[0]
    return TARGETS.get(base.removesuffix("-cpu") if base.endswith("-cpu") and base not in TARGETS else base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (the median is kept)")
    parser.add_argument("--keep", type=Path, help="build the stores here, leave them, reuse them next time")
    parser.add_argument("--only", help="comma-separated: ls, show, show-json, pareto-json, export-best,"
                                       " dashboard, resume")
    parser.add_argument("--strategies", help="resume only these strategies (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nasapp-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[int, dict[str, float]] = {}
    for trials in (BASE_TRIALS, args.trials):
        db = folder / f"scale-{trials}.db"
        build(db, trials, args.seed)
        print(f"{trials:,} trials:", flush=True)
        figures[trials] = measure(db, trials, folder, args)
    big, base = figures[args.trials], figures[BASE_TRIALS]
    ratios = {name: round(big[name] / base[name], 2) for name in big if base.get(name)}
    print(f"\n{'figure':<28} {args.trials:>10,} {BASE_TRIALS:>8,}  ratio  target")
    for name, value in big.items():
        target = target_of(name)
        verdict = "" if target is None else f"  <= {target:g} s {'met' if value <= target else 'MISSED'}"
        print(f"{name:<28} {value:>10.3f} {base[name]:>8.3f}  {ratios.get(name, 0):>5.2f}{verdict}")
    result: dict[str, Any] = {
        "trials": args.trials, "seconds": {k: round(v, 4) for k, v in big.items()},
        "base_trials": BASE_TRIALS, "base_seconds": {k: round(v, 4) for k, v in base.items()}, "ratios": ratios,
        "targets": {k: target_of(k) for k in big if target_of(k) is not None},
        "python": platform.python_version(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
