"""Resume at scale (issue 15): how long `nasapp resume` of a long job takes before its first new trial.

    .venv/bin/python bench/resume_scale.py                           # 100,000 trials, every strategy
    .venv/bin/python bench/resume_scale.py --trials 10000 --keep /tmp/resume10k   # build once, time again
    .venv/bin/python bench/resume_scale.py --trials 2000 --exact     # the exact replay (resume before issue 15)

One store, one job per registered strategy: the mnasnet space on the digits data, latency measured on the CPU
with the latency gate on (``skip_predicted_over``), and a synthetic history of ``--trials`` succeeded trials
(architectures sampled with a seeded rng, one set shared by every job; accuracy and latency_ms made up from the
architecture), written in one transaction per job. For each strategy the runner's start-up is timed as
`nasapp resume` runs it, up to the point where the first new trial would be dispatched: the Runner built
(strategy, scorer), the store read and the history replayed, trials requeued, the tallies, the latency stage
started and its gate fitted, then the strategy's first ask and the gate's prediction for it. Wall time and this
process's CPU time are both printed (on a shared machine the wall time includes waiting for a core).
``--exact`` forces the exact replay (every stored ask asked again) to show what resume cost before.

The last line printed is one JSON object: ``{"trials": N, "seconds": {"resume:STRATEGY": s, ...}, "cpu_seconds":
{...}}``. ``resume_startup_seconds`` is the same measurement for other bench scripts (bench/scale.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from nasapp.engine.execution.runner import Runner
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.engine.spaces.prebuilt import get_prebuilt
from nasapp.engine.strategies import STRATEGIES
from nasapp.store import Store

SEED = 0


def job_table(strategy: str, trials: int) -> dict[str, Any]:
    return {
        "name": f"resume-{strategy}", "seed": SEED,
        "space": {"prebuilt": "mnasnet"}, "data": {"kind": "digits"},
        "trainer": {"prebuilt": "classification", "steps": 10},
        "strategy": {"name": strategy},
        "search": {"max_trials": trials + 1, "parallel": 1},
        "reward": {"metric": "accuracy", "latency_target_ms": 1.0, "latency_weight": -0.07},
        "latency": {"device": "cpu-ort", "skip_predicted_over": 4.0},
    }


def synthetic_archs(trials: int) -> list[tuple[Any, str, str]]:
    """``trials`` (arch, its JSON, fingerprint) of the mnasnet space, drawn with a seeded rng."""
    space = get_prebuilt("mnasnet").space
    rng = np.random.default_rng(SEED)
    archs = []
    for _ in range(trials):
        arch = space.sample(rng)
        archs.append((arch, json.dumps(arch, sort_keys=True), space.fingerprint(arch)))
    return archs


def metrics_of(arch_json: str, number: int) -> dict[str, float]:
    """Plausible made-up metrics: latency grows with the architecture's size, accuracy with latency."""
    size = len(arch_json)
    latency = 0.4 + size / 2000 + (number % 7) * 0.01
    return {"accuracy": min(0.99, 0.5 + 0.3 * latency / (1 + latency)), "latency_ms": latency,
            "params": size * 100.0, "flops": size * 1e4}


def write_history(store: Store, job_id: int, archs: list[tuple[Any, str, str]]) -> None:
    """Every trial asked and told in turn (ask_seq 2n, tell_seq 2n + 1), in one transaction."""
    store.conn.execute("BEGIN")
    for number, (arch, arch_json, fingerprint) in enumerate(archs):
        trial_id = store.add_trial(job_id, number, arch, fingerprint, 2 * number)
        metrics = metrics_of(arch_json, number)
        store.finish_trial(trial_id, "succeeded", reward=metrics["accuracy"], metrics=metrics,
                           tell_seq=2 * number + 1)
    store.conn.execute("COMMIT")
    store.update_job(job_id, status="stopped")


def build_store(folder: Path, trials: int, strategies: list[str]) -> tuple[Store, dict[str, int]]:
    """The store with one job per strategy holding ``trials`` trials; reused when ``folder`` holds it already."""
    folder.mkdir(parents=True, exist_ok=True)
    store = Store(folder / f"resume-{trials}.db")
    jobs = {job.name.removeprefix("resume-"): job.id for job in store.jobs()}
    missing = [name for name in strategies if name not in jobs]
    template = next(iter(jobs.values()), None)
    for name in missing:
        job_id = create_job(store, parse_job(job_table(name, trials), base=folder))
        if template is None:
            write_history(store, job_id, synthetic_archs(trials))
            template = job_id
        else:
            copy_history(store, template, job_id)
        jobs[name] = job_id
        print(f"  built job {job_id} ({name}): {trials:,} trials", flush=True)
    return store, jobs


def copy_history(store: Store, source: int, job_id: int) -> None:
    """The same trials as job ``source`` (one INSERT ... SELECT: building the first job is what takes time)."""
    columns = "number, arch, fingerprint, status, reason, message, reward, metrics, ask_seq, tell_seq, attempts," \
              " device, created_at, started_at, finished_at"
    store.conn.execute("BEGIN")
    store.conn.execute(f"INSERT INTO trials (job_id, {columns}) SELECT ?, {columns} FROM trials WHERE job_id = ?"
                       " ORDER BY id", (job_id, source))
    store.conn.execute("COMMIT")
    store.update_job(job_id, status="stopped")


def time_startup(store: Store, job_id: int, exact: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of a resume's start-up up to its first dispatch (see the module docstring)."""
    wall, cpu = time.perf_counter(), time.process_time()
    runner = Runner(store, job_id)
    if exact:
        runner.strategy.exact_replay_asks = sys.maxsize  # type: ignore[misc]
        getattr(runner.strategy, "base", runner.strategy).exact_replay_asks = sys.maxsize
    trials = runner._restore()
    runner._start_baseline()
    runner._start_latency(store.job_dir(job_id), trials)
    try:
        arch = runner.strategy.ask(1)[0]
        if runner.latency is not None:
            runner.latency.predict(arch)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if runner.latency is not None:
            runner.latency.close()


def resume_startup_seconds(trials: int, folder: Path, strategies: list[str] | None = None,
                           exact: bool = False) -> dict[str, float]:
    """Wall seconds of each strategy's resume start-up on a ``trials``-trial history kept in ``folder``."""
    return {name: wall for name, (wall, _) in measure(trials, folder, strategies, exact).items()}


def measure(trials: int, folder: Path, strategies: list[str] | None = None,
            exact: bool = False) -> dict[str, tuple[float, float]]:
    names = strategies or STRATEGIES.names()
    store, jobs = build_store(folder, trials, names)
    found = {}
    for name in names:
        wall, cpu = time_startup(store, jobs[name], exact)
        found[name] = (wall, cpu)
        print(f"resume:{name:<10} {trials:>7,} trials  {wall:7.2f} s wall  {cpu:7.2f} s cpu", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the store here (or reuse the one there)")
    parser.add_argument("--strategies", help="comma-separated (default: every registered strategy)")
    parser.add_argument("--exact", action="store_true", help="force the exact replay (resume before issue 15)")
    args = parser.parse_args()
    names = args.strategies.split(",") if args.strategies else None
    with tempfile.TemporaryDirectory() as scratch:
        found = measure(args.trials, args.keep or Path(scratch), names, args.exact)
    print(json.dumps({"trials": args.trials, "exact": args.exact,
                      "seconds": {f"resume:{k}": round(w, 2) for k, (w, _) in found.items()},
                      "cpu_seconds": {f"resume:{k}": round(c, 2) for k, (_, c) in found.items()}}))


if __name__ == "__main__":
    main()
