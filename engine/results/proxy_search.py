"""Proxy search (`nasapp proxy search`): candidate proxy tasks judged by how well they rank the models of a
selection run (`nasapp proxy select`) as full training ranked them.

A candidate is a proxy task: ``steps`` (the length its learning-rate schedule spans), ``data_fraction`` and
``scale`` (a multiplier on the job's width and depth). It trains the selected models in ``checks`` chunks, each
continuing from the last one's checkpoints; after each chunk the Kendall rank correlation (and its p-value)
between the models' scores and their full-training scores is computed at every evaluation step reported so
far. The candidate stops at the first step where the correlation reaches the target with a p-value under the
limit ("met"), when its time limit passes, or when its steps are done. Its cost is the median over models of
the training time per step times the steps it needed. The pick: the cheapest candidate that met the target.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from nasapp.engine.errors import NasappError

TARGET_CORRELATION = 0.65
MAX_P_VALUE = 0.05


def candidate_grid(steps: list[int], data_fractions: list[float], scales: list[float]) -> list[dict[str, Any]]:
    """Every combination, each with a name that says its settings."""
    for value in steps:
        if value < 1:
            raise NasappError(f"--steps {value}: give 1 or more")
    for value in data_fractions:
        if not 0 < value <= 1:
            raise NasappError(f"--data-fraction {value}: give a share in (0, 1]")
    for value in scales:
        if value <= 0:
            raise NasappError(f"--scale {value}: give a positive multiplier (1: the job's own model)")
    return [{"name": f"steps={s} data={f:g} scale={w:g}", "steps": s, "data_fraction": f, "scale": w}
            for s, f, w in itertools.product(steps, data_fractions, scales)]


def chunk_ends(steps: int, checks: int) -> list[int]:
    """Where the chunks of a candidate of ``steps`` steps end: ``checks`` even parts (fewer for short ones)."""
    return sorted({max(1, round(steps * k / checks)) for k in range(1, checks + 1)})


def full_training(store: Any, select_run: Any, metric: str) -> dict[str, dict[str, Any]]:
    """Per selected model (fingerprint): arch, full-training score, latency, and the training time of all the
    rounds it trained in (its full-training cost: the rounds continued one another)."""
    jobs = select_run.state.get("rounds", [])
    if select_run.status != "finished" or not jobs:
        raise NasappError(f"proxy select run {select_run.id} has not finished (`nasapp proxy select --resume"
                          f" {select_run.id}` finishes it)")
    models: dict[str, dict[str, Any]] = {}
    for trial in store.trials(jobs[-1], "succeeded"):
        if trial.fingerprint is not None and metric in trial.metrics:
            models[trial.fingerprint] = {"arch": trial.arch, "score": float(trial.metrics[metric]),
                                         "latency_ms": trial.metrics.get("latency_ms"), "train_time_s": 0.0}
    for job_id in jobs:
        for trial in store.trials(job_id, "succeeded"):
            if trial.fingerprint in models:
                models[trial.fingerprint]["train_time_s"] += float(trial.metrics.get("train_time_s", 0.0))
    if len(models) < 3:
        raise NasappError(f"proxy select run {select_run.id} has {len(models)} models with a full-training score:"
                          " a rank correlation needs at least 3")
    return models


def correlation_over_steps(store: Any, jobs: list[int], full: dict[str, float], metric: str) -> list[dict]:
    """Kendall's tau and p-value between the models' scores at each evaluation step of ``jobs`` (the chunks of
    one candidate) and their full-training scores ``full``; only steps every model reported at."""
    from scipy.stats import kendalltau

    at_step: dict[int, dict[str, float]] = {}
    for job_id in jobs:
        prints = {t.id: t.fingerprint for t in store.trials(job_id)}
        for trial_id, step, values in store.job_metrics(job_id):
            if prints.get(trial_id) in full and isinstance(values.get(metric), int | float):
                at_step.setdefault(step, {})[prints[trial_id]] = float(values[metric])
    series = []
    for step in sorted(at_step):
        scores = at_step[step]
        if len(scores) < len(full):
            continue
        keys = sorted(scores)
        result = kendalltau([scores[k] for k in keys], [full[k] for k in keys])
        tau = None if result.statistic != result.statistic else float(result.statistic)  # NaN: all tied
        series.append({"step": step, "kendall_tau": tau, "p_value": None if tau is None else float(result.pvalue),
                       "median_score": statistics.median(scores.values())})
    return series


def first_met(series: list[dict[str, Any]], target: float, max_p: float) -> dict[str, Any] | None:
    for point in series:
        # a tolerance: scipy's tau of two identical rankings can come out a hair under 1.0
        if point["kendall_tau"] is not None and point["kendall_tau"] >= target - 1e-9 and point["p_value"] <= max_p:
            return point
    return None


def seconds_per_step(store: Any, jobs: list[int]) -> float | None:
    """The median over models of training time per step, over the candidate's chunks."""
    spent: dict[str, list[float]] = {}
    for job_id in jobs:
        for trial in store.trials(job_id, "succeeded"):
            time_s, steps = trial.metrics.get("train_time_s"), trial.metrics.get("steps")
            if trial.fingerprint is not None and time_s is not None:
                done = spent.setdefault(trial.fingerprint, [0.0, 0.0])
                done[0] += float(time_s)
                done[1] = float(steps) if steps is not None else done[1]
    rates = [t / s for t, s in spent.values() if s > 0]
    return statistics.median(rates) if rates else None


def latency_correlation(store: Any, job_id: int, full: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Kendall's tau between the candidate's measured latencies (its last chunk) and full training's."""
    from scipy.stats import kendalltau

    pairs = [(float(t.metrics["latency_ms"]), float(full[t.fingerprint]["latency_ms"]))
             for t in store.trials(job_id, "succeeded")
             if t.fingerprint in full and "latency_ms" in t.metrics and full[t.fingerprint]["latency_ms"] is not None]
    if len(pairs) < 3:
        return None
    result = kendalltau([a for a, _ in pairs], [b for _, b in pairs])
    return {"kendall_tau": float(result.statistic), "p_value": float(result.pvalue), "models": len(pairs)}


def candidate_summary(store: Any, candidate: dict[str, Any], state: dict[str, Any],
                      full: dict[str, dict[str, Any]], metric: str, full_cost_s: float) -> dict[str, Any]:
    jobs = state.get("jobs", [])
    series = correlation_over_steps(store, jobs, {k: m["score"] for k, m in full.items()}, metric)
    final_steps = state.get("final_steps")
    rate = seconds_per_step(store, jobs)
    cost = rate * final_steps if rate is not None and final_steps else None
    at_final = next((p for p in series if p["step"] == final_steps), None)
    return {
        **candidate, "jobs": jobs, "stopped": state.get("stopped"), "final_steps": final_steps,
        "correlation": series, "kendall_tau": at_final["kendall_tau"] if at_final else None,
        "p_value": at_final["p_value"] if at_final else None,
        "median_score": at_final["median_score"] if at_final else None,
        "median_train_time_s": cost, "cost_share": cost / full_cost_s if cost is not None and full_cost_s else None,
        "latency": latency_correlation(store, jobs[-1], full) if jobs else None,
    }


def search_summary(store: Any, run: Any, full: dict[str, dict[str, Any]]) -> dict[str, Any]:
    settings = run.settings
    full_cost = statistics.median(m["train_time_s"] for m in full.values())
    candidates = [candidate_summary(store, c, run.state.get("candidates", {}).get(str(i), {}), full,
                                    settings["metric"], full_cost)
                  for i, c in enumerate(settings["candidates"])]
    met = [c for c in candidates if c["stopped"] == "met" and c["median_train_time_s"] is not None]
    best = min(met, key=lambda c: c["median_train_time_s"]) if met else None
    return {"run": run.id, "status": run.status, "select_run": settings["select_run"], "metric": settings["metric"],
            "target_correlation": settings["target"], "max_p_value": settings["max_p"],
            "models": len(full), "full_training_time_s": full_cost, "candidates": candidates,
            "best": best["name"] if best else None}


def candidate_scale(candidate: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The job's ``[space] scale`` with the candidate's multiplier on its width and depth."""
    scale = dict(spec["space"].get("scale") or {})
    return {**scale, "width": scale.get("width", 1.0) * candidate["scale"],
            "depth": scale.get("depth", 1.0) * candidate["scale"]}


def job_lines(candidate: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """The job-file lines of the candidate's proxy at the step it met the target."""
    scale = candidate_scale(candidate, spec)
    lines = ["[trainer]", f"steps = {candidate['final_steps']}", f"schedule_steps = {candidate['steps']}"]
    if spec.get("data") is not None:
        lines += ["[data]", f"data_fraction = {candidate['data_fraction']:g}"]
    lines += ["[space]", f"scale = {{ width = {scale['width']:g}, depth = {scale['depth']:g} }}"]
    return lines
