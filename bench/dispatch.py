"""Per-trial overhead: no-op trials through nasapp's worker pool vs Optuna with SQLite storage, and (with
``--ray-trials``) nasapp's Ray executor vs Ray Tune on one local Ray cluster.

    .venv/bin/python bench/dispatch.py                    # 2000 trials, 3 rounds
    .venv/bin/python bench/dispatch.py --trials 500 --rounds 5
    .venv/bin/python bench/dispatch.py --trials 200 --rounds 1 --ray-trials 200   # + nasapp-ray, ray-tune

Both sides run the same number of trials of a trainer/objective that returns at once
(bench/noop_trainer.py), on the same machine, in the same invocation, alternating (each round: nasapp,
then Optuna), so what is timed is each system's own overhead per trial.

- nasapp: a job with the random strategy, ``parallel = 2`` and ``devices = "cpu"``, timed end to end from
  ``Runner(store, job_id).run()`` being called until it returns: it starts two worker processes (each
  imports torch once), stores every trial (queued, running, finished) in its SQLite file and tells the
  strategy. The start-up (until the first trial is finished) is reported separately, and so is the
  steady-state rate after it.
- Optuna: ``optuna.create_study`` with ``sqlite:///`` storage and ``RandomSampler``, then
  ``study.optimize(objective, n_trials=N)`` in one process (its ordinary path), timed from create_study.

- nasapp-ray (``--ray-trials N``): the same job with ``executor = "ray"`` (two persistent actors, each
  importing torch once) on a private Ray cluster of ``PARALLEL`` CPUs that this script starts once
  (``ray.init(num_cpus=2)``, not timed) and shares with the next side; timed from ``Runner.run()`` as above.
- ray-tune (``--ray-trials N``): ``tune.Tuner`` on that cluster with a no-op function trainable
  (``noop_trainer.tune_trainable``), ``num_samples=N``, 2 at a time (1 CPU each), results under
  the temporary folder, timed from building the Tuner until ``fit()`` returns.

Trials/s are medians over the rounds; the ratio is the median of the per-round ratios nasapp/Optuna.
Stores live in a temporary folder (under ``--tmp-dir``, default the system's) that is removed at the end.
Optuna's SQLite storage commits with the default ``synchronous=FULL``, so its rate depends on how fast the
folder's disk syncs (printed as "fsync"; a tmpfs such as /dev/shm makes it free); nasapp's store runs in
WAL mode with ``synchronous=NORMAL`` and does not sync per commit. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from nasapp.engine.execution.runner import Progress, Runner
from nasapp.engine.jobs.spec import parse_job
from nasapp.engine.jobs.validation import create_job
from nasapp.store import Store

HERE = Path(__file__).resolve().parent
NOOP = HERE / "noop_trainer.py"
PARALLEL = 2
TARGET = 5.0


def job_table(trials: int, seed: int, executor: str = "local") -> dict[str, Any]:
    where = {"devices": "cpu"} if executor == "local" else {"executor": "ray", "address": "local"}
    return {
        "name": "dispatch-bench", "seed": seed,
        "space": {"ref": f"{NOOP}:space"},
        "trainer": {"ref": f"{NOOP}:train"},
        "strategy": {"name": "random"},
        "search": {"max_trials": trials, "parallel": PARALLEL, "trial_timeout_s": 600, **where},
    }


def run_nasapp_ray(trials: int, seed: int, folder: Path) -> dict[str, float]:
    return run_nasapp(trials, seed, folder, executor="ray")


def run_nasapp(trials: int, seed: int, folder: Path, executor: str = "local") -> dict[str, float]:
    store = Store(folder / "nasapp.db")
    try:
        job_id = create_job(store, parse_job(job_table(trials, seed, executor), base=HERE))
        first: list[float] = []

        def on_progress(progress: Progress) -> None:
            if not first and progress.done >= 1:
                first.extend((time.perf_counter(), progress.done))

        runner = Runner(store, job_id, on_progress=on_progress)
        start = time.perf_counter()
        status = runner.run()
        total = time.perf_counter() - start
        done = store.counts(job_id)["succeeded"]
    finally:
        store.close()
    if status != "finished" or done != trials:
        sys.exit(f"bench/dispatch.py: nasapp job ended {status} with {done} of {trials} trials succeeded")
    first_at, first_done = first
    startup = first_at - start
    return {"total_s": total, "rate": trials / total, "startup_s": startup,
            "steady_rate": (trials - first_done) / (total - startup)}


def fsync_ms(folder: Path, times: int = 20) -> float:
    """How long one small write + fsync takes in `folder` (the cost Optuna's SQLite commits pay)."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(times):
            os.write(fd, b"x" * 64)
            os.fsync(fd)
        return (time.perf_counter() - start) / times * 1000
    finally:
        os.close(fd)
        path.unlink()


def run_optuna(trials: int, seed: int, folder: Path) -> dict[str, float]:
    from noop_trainer import optuna_objective

    first: list[float] = []

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not first:
            first.append(time.perf_counter())

    start = time.perf_counter()
    study = optuna.create_study(storage=f"sqlite:///{folder / 'optuna.db'}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(optuna_objective, n_trials=trials, callbacks=[callback])
    total = time.perf_counter() - start
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    if done != trials:
        sys.exit(f"bench/dispatch.py: optuna finished {done} of {trials} trials")
    startup = first[0] - start
    return {"total_s": total, "rate": trials / total, "startup_s": startup,
            "steady_rate": (trials - 1) / (total - startup)}


def run_tune(trials: int, seed: int, folder: Path) -> dict[str, float]:
    from noop_trainer import OPS, tune_trainable
    from ray import tune

    first: list[float] = []

    class FirstResult(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            if not first:
                first.append(time.perf_counter())

    space = {"width": tune.randint(8, 513), "op": tune.choice(OPS), "lr": tune.loguniform(1e-4, 1e-1)}
    start = time.perf_counter()
    tuner = tune.Tuner(
        tune_trainable, param_space=space,
        tune_config=tune.TuneConfig(num_samples=trials, metric="accuracy", mode="max",
                                    search_alg=tune.search.BasicVariantGenerator(random_state=seed,
                                                                                 max_concurrent=PARALLEL)),
        run_config=tune.RunConfig(storage_path=str(folder), name="tune", verbose=0, callbacks=[FirstResult()]),
    )
    grid = tuner.fit()
    total = time.perf_counter() - start
    done = sum(1 for result in grid if result.error is None and "accuracy" in (result.metrics or {}))
    if done != trials:
        sys.exit(f"bench/dispatch.py: Ray Tune finished {done} of {trials} trials")
    startup = first[0] - start
    return {"total_s": total, "rate": trials / total, "startup_s": startup,
            "steady_rate": (trials - 1) / (total - startup)}


def start_ray() -> None:
    """One private Ray cluster for both Ray sides (nasapp's executor uses a connection it finds)."""
    import logging

    import ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    ray.init(address="local", num_cpus=PARALLEL, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False, object_store_memory=200 * 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=2000, help="trials per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of nasapp then Optuna (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray-trials", type=int, default=0,
                        help="also run nasapp's Ray executor and Ray Tune, this many trials each (default 0: not)")
    parser.add_argument("--tmp-dir", default=None,
                        help="where the temporary stores go (default: the system's temp folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    sides = {"nasapp": run_nasapp, "optuna": run_optuna}
    counts = {"nasapp": args.trials, "optuna": args.trials}
    if args.ray_trials:
        start_ray()
        sides.update({"nasapp-ray": run_nasapp_ray, "ray-tune": run_tune})
        counts.update({"nasapp-ray": args.ray_trials, "ray-tune": args.ray_trials})
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="nasapp-dispatch-", dir=args.tmp_dir) as tmp:
        os.environ["NASAPP_HOME"] = tmp  # nothing touches the user's ~/.nasapp
        fsync = fsync_ms(Path(tmp))
        for r in range(args.rounds):
            for name, side in sides.items():
                folder = Path(tmp) / f"{name}-{r}"
                folder.mkdir()
                runs[name].append(side(counts[name], args.seed + r, folder))

    def med(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    tmp_root = args.tmp_dir or tempfile.gettempdir()
    ratios = [n["rate"] / o["rate"] for n, o in zip(runs["nasapp"], runs["optuna"], strict=True)]
    steady_ratios = [n["steady_rate"] / o["steady_rate"]
                     for n, o in zip(runs["nasapp"], runs["optuna"], strict=True)]
    ratio, steady_ratio = statistics.median(ratios), statistics.median(steady_ratios)

    print(f"dispatch bench: {args.trials} no-op trials x {args.rounds} rounds; nasapp parallel={PARALLEL} cpu"
          f" workers vs Optuna {optuna.__version__} (SQLite, RandomSampler, one process)")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}; stores in {tmp_root}, fsync {fsync:.2f} ms")
    print(f"{'side':<11}{'trials':>7}{'trials/s':>10}{'total s':>10}{'startup s':>11}{'steady/s':>10}"
          "   per round trials/s")
    for name in sides:
        per_round = " ".join(f"{run['rate']:.1f}" for run in runs[name])
        print(f"{name:<11}{counts[name]:>7}{med(name, 'rate'):>10.1f}{med(name, 'total_s'):>10.2f}"
              f"{med(name, 'startup_s'):>11.2f}{med(name, 'steady_rate'):>10.1f}   {per_round}")
    print("startup: from the call until the first trial finished (nasapp: 2 workers start and import torch);"
          " steady: the rate after it")
    print(f"ratio nasapp/optuna end to end: {ratio:.2f} (target >= {TARGET:g}); steady state: "
          f"{steady_ratio:.2f}")
    figures = {
        "bench": "dispatch",
        "nasapp_trials_per_s": round(med("nasapp", "rate"), 1),
        "optuna_trials_per_s": round(med("optuna", "rate"), 1),
        "ratio": round(ratio, 2),
        "trials": args.trials,
        "rounds": args.rounds,
        "parallel": PARALLEL,
        "nasapp_startup_s": round(med("nasapp", "startup_s"), 3),
        "optuna_startup_s": round(med("optuna", "startup_s"), 3),
        "nasapp_steady_trials_per_s": round(med("nasapp", "steady_rate"), 1),
        "optuna_steady_trials_per_s": round(med("optuna", "steady_rate"), 1),
        "steady_ratio": round(steady_ratio, 2),
        "nasapp_rates": [round(run["rate"], 1) for run in runs["nasapp"]],
        "optuna_rates": [round(run["rate"], 1) for run in runs["optuna"]],
        "optuna": optuna.__version__,
        "tmp_dir": tmp_root,
        "fsync_ms": round(fsync, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    if args.ray_trials:
        import ray

        for name, key in (("nasapp-ray", "nasapp_ray"), ("ray-tune", "ray_tune")):
            figures.update({f"{key}_trials_per_s": round(med(name, "rate"), 2),
                            f"{key}_startup_s": round(med(name, "startup_s"), 3),
                            f"{key}_steady_trials_per_s": round(med(name, "steady_rate"), 2)})
        figures.update({"ray_trials": args.ray_trials, "ray": ray.__version__,
                        "ray_ratio": round(med("nasapp-ray", "rate") / med("ray-tune", "rate"), 1)})
        ray.shutdown()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
