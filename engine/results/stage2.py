"""Stage 2: the best models of a search trained again with full settings, as trials of a child job, and how
well the search's ranking held (Kendall's rank correlation between search rewards and stage-2 rewards).

The child job is the parent's job file with the stage-2 settings (steps, data fraction, model scale), no early
stopping, and the ``given`` strategy holding the parent's best architectures (``source_job`` names the
parent), so it is an ordinary job: resumable, and shown by ls, show and the dashboard.
"""

from __future__ import annotations

import copy
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.store import Store
from nasapp.store.queries import stage2_job_ids
from nasapp.store.records import Job

_FETCH = 5  # best trials fetched per model wanted: a search may have trained one architecture more than once


def top_archs(store: Store, job: Job, top: int, direction: str) -> list[tuple[int, Any, float]]:
    """(trial number, arch, reward) of the ``top`` best distinct architectures of ``job``."""
    chosen: dict[str, tuple[int, Any, float]] = {}
    for trial in store.best_trials(job.id, top * _FETCH, direction):
        if trial.fingerprint not in chosen and trial.reward is not None:
            chosen[trial.fingerprint] = (trial.number, trial.arch, trial.reward)  # type: ignore[index]
        if len(chosen) == top:
            break
    if not chosen:
        raise NasappError(f"job {job.id} has no succeeded trial to retrain yet")
    return list(chosen.values())


def stage2_table(parent: Job, archs: list[Any], steps: int | None, data_fraction: float | None,
                 scale: float | None, baseline_ms: float | None = None) -> dict[str, Any]:
    """The child job's table: the parent's spec with the stage-2 settings and the ``given`` strategy.

    Stage 2 trains no baseline of its own: a latency target relative to the parent's baseline becomes the
    parent's target in ms (``baseline_ms``: its baseline's measured latency), unless ``scale`` changes the
    models' size, which makes that figure meaningless; then the target is dropped."""
    from nasapp.engine.jobs.baseline import without_baseline

    raw = without_baseline(copy.deepcopy(parent.spec), baseline_ms if scale is None else None)
    raw["name"] = f"{parent.name}-stage2"
    raw["strategy"] = {"name": "given", "archs": archs, "source_job": parent.id}
    raw["early_stopping"] = {"rule": "none"}
    raw["search"]["max_trials"] = len(archs)
    trainer = raw["trainer"]
    trainer["steps"] = steps or trainer.get("schedule_steps") or trainer["steps"]
    trainer["schedule_steps"] = None  # the schedule spans stage 2's own training
    if data_fraction is not None:
        if raw.get("data") is None:
            raise NasappError("--data-fraction: the job has no [data] table")
        raw["data"]["data_fraction"] = data_fraction
    if scale is not None:
        raw["space"]["scale"] = {**(raw["space"].get("scale") or {}), "width": scale, "depth": scale}
    return raw


def stage2_runs(store: Store, job_id: int) -> list[Job]:
    """The stage-2 runs of the search ``job_id`` (its child jobs of strategy ``given``), oldest first."""
    return [store.job(child) for child in stage2_job_ids(store, job_id)]  # type: ignore[misc]


def stage2_line(store: Store, job_id: int, direction: str) -> str | None:
    """One line on the search's newest stage-2 run: its job, how many models are retrained, Kendall's tau."""
    runs = stage2_job_ids(store, job_id)  # one cheap query: the dashboard asks on every change
    if not runs:
        return None
    child = store.job(runs[-1])
    summary = stage2_summary(store, child, direction)
    done = sum(row["stage2_reward"] is not None for row in summary["models"])
    tau = (f"Kendall tau {summary['kendall_tau']:.2f} (p {summary['p_value']:.2g})"
           if summary["kendall_tau"] is not None else "no rank correlation yet")
    more = f" (of {len(runs)} runs)" if len(runs) > 1 else ""
    return f"stage 2: job {child.id}{more} · {done}/{child.max_trials} retrained · {tau} · {child.status}"


def stage2_summary(store: Store, child: Job, direction: str) -> dict[str, Any]:
    """Per model: its search reward and stage-2 reward and ranks, and Kendall's tau (with its p-value)."""
    from scipy.stats import kendalltau

    options = child.spec["strategy"]
    parent_id = options.get("source_job")
    trials = store.trials(child.id)
    search: dict[str | None, Any] = {}
    models = sorted({t.fingerprint for t in trials if t.fingerprint is not None})
    every = 2**31  # all the search's trials of these models (the fingerprint filter bounds them)
    for trial in store.best_trials(parent_id, every, direction, models) if parent_id else []:
        search.setdefault(trial.fingerprint, trial)  # best first: a model trained twice keeps its best reward
    rows = []
    for trial in trials:
        found = search.get(trial.fingerprint)
        rows.append({"stage2_trial": trial.number, "search_trial": found.number if found else None,
                     "search_reward": found.reward if found else None, "stage2_reward": trial.reward,
                     "status": trial.status, "arch": trial.arch})
    pairs = [(r["search_reward"], r["stage2_reward"]) for r in rows
             if r["search_reward"] is not None and r["stage2_reward"] is not None]
    tau = p_value = None
    why = None
    if len(pairs) < 2:
        why = f"{len(pairs)} model(s) have both rewards: at least 2 are needed"
    elif len({a for a, _ in pairs}) == 1 or len({b for _, b in pairs}) == 1:
        why = "every model has the same reward on one side: there is no ranking to compare"
    else:
        result = kendalltau([a for a, _ in pairs], [b for _, b in pairs])
        tau, p_value = float(result.statistic), float(result.pvalue)
    return {"job": child.id, "source_job": parent_id, "models": rows, "compared": len(pairs),
            "kendall_tau": tau, "p_value": p_value, "no_correlation_because": why}
