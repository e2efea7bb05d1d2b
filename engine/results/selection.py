"""Model selection for proxy-task design (`nasapp proxy select`): the rounds' plan, which models a round drops,
and the run's summary.

A selection run trains ``begin`` sampled models to growing fractions of full training (1/30, 1/25, 1/20, ...
of ``full_steps``), each round continuing from the previous round's checkpoints. After each round it drops
``drop`` models (never going below ``end``): those that add least to the spread of the scores (and of the
latencies, when measured). The ``end`` models left then train to full training. They are the
correlation-candidate models a proxy search compares proxies against.

Spread: every model is a point of (score, latency) scaled to the range of each; the model dropped is the one
closest to another model (ties: the one whose second-nearest model is closer, then the lower score, then the
later one). Dropping from the densest places keeps the extremes and an even coverage between them.
"""

from __future__ import annotations

import math
from typing import Any

from nasapp.engine.errors import NasappError

DENOMINATORS = (30, 25, 20, 15, 10, 5, 4, 3, 2)  # round k trains to full_steps / DENOMINATORS[k]
MAX_FIRST_ROUND_FAILURES = 0.2  # more failed than this share of the first round: the space or job is unfit


def round_plan(begin: int, end: int, drop: int, full_steps: int) -> list[int]:
    """The training steps of each round: the dropping rounds, then full training."""
    if end < 2:
        raise NasappError(f"--end {end}: give 2 or more (a rank correlation needs two models)")
    if begin <= end:
        raise NasappError(f"--begin {begin} must be more than --end {end}")
    if drop < 1:
        raise NasappError(f"--drop {drop}: give 1 or more")
    rounds = math.ceil((begin - end) / drop)
    if rounds > len(DENOMINATORS):
        raise NasappError(f"--begin {begin}, --end {end}, --drop {drop} need {rounds} rounds to drop the models;"
                          f" at most {len(DENOMINATORS)} fit (fractions 1/{DENOMINATORS[0]} to"
                          f" 1/{DENOMINATORS[-1]}): raise --drop")
    steps = [max(1, round(full_steps / d)) for d in DENOMINATORS[:rounds]] + [full_steps]
    if len(set(steps)) != len(steps):
        raise NasappError(f"full training of {full_steps} steps is too short to split into {rounds} growing"
                          f" rounds ({steps}): raise --full-steps")
    return steps


def least_spread(points: dict[str, tuple[float, ...]], count: int) -> list[str]:
    """The ``count`` keys of ``points`` that add least to their spread, in the order they are dropped."""
    left = dict(points)
    dropped: list[str] = []
    order = {key: i for i, key in enumerate(points)}
    while len(dropped) < count and len(left) > 1:
        scaled = _scaled(left)
        key = min(left, key=lambda k: (*_nearest_two(k, scaled), left[k][0], -order[k]))
        dropped.append(key)
        del left[key]
    return dropped


def _scaled(points: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    """Each coordinate divided by its range over ``points`` (a range of 0 leaves it as it is)."""
    dims = len(next(iter(points.values())))
    spans = []
    for d in range(dims):
        values = [p[d] for p in points.values()]
        spans.append((max(values) - min(values)) or 1.0)
    return {k: tuple(p[d] / spans[d] for d in range(dims)) for k, p in points.items()}


def _nearest_two(key: str, scaled: dict[str, tuple[float, ...]]) -> tuple[float, float]:
    distances = sorted(math.dist(scaled[key], p) for k, p in scaled.items() if k != key)
    return distances[0], distances[1] if len(distances) > 1 else math.inf


def round_summary(store: Any, job_id: int, metric: str) -> dict[str, dict[str, Any]]:
    """Per model (fingerprint) of one round's job: its status, score, latency, arch and trial number."""
    found = {}
    for trial in store.trials(job_id):
        if trial.status in ("succeeded", "failed", "pruned") and trial.fingerprint is not None:
            found[trial.fingerprint] = {
                "trial": trial.number, "status": trial.status, "arch": trial.arch,
                "score": trial.metrics.get(metric) if trial.status == "succeeded" else None,
                "latency_ms": trial.metrics.get("latency_ms"), "reason": trial.reason,
            }
    return found


def survivors(round_models: dict[str, dict[str, Any]], end: int, drop: int) -> tuple[list[str], list[str]]:
    """(kept, dropped) fingerprints after a dropping round: of the models that succeeded, ``drop`` fewer
    (never fewer than ``end`` kept), by spread of score and latency (latency only when every model has one)."""
    trained = {k: m for k, m in round_models.items() if m["status"] == "succeeded" and m["score"] is not None}
    with_latency = all(m["latency_ms"] is not None for m in trained.values())
    points = {k: (float(m["score"]), float(m["latency_ms"])) if with_latency else (float(m["score"]),)
              for k, m in trained.items()}
    dropped = least_spread(points, max(0, min(drop, len(points) - end)))
    return [k for k in trained if k not in dropped], dropped


def first_round_failures(round_models: dict[str, dict[str, Any]], begin: int) -> str | None:
    """Why the run stops after its first round (more than 20% of the sampled models failed), or None."""
    failed = [m for m in round_models.values() if m["status"] != "succeeded"]
    if len(failed) <= MAX_FIRST_ROUND_FAILURES * begin:
        return None
    reasons: dict[str, int] = {}
    for model in failed:
        reasons[model["reason"] or "unknown"] = reasons.get(model["reason"] or "unknown", 0) + 1
    why = ", ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return (f"{len(failed)} of {begin} sampled models failed in the first round (more than"
            f" {MAX_FIRST_ROUND_FAILURES:.0%}): {why}; fix the job (see `nasapp show` of the round's job) first")


def selection_summary(store: Any, run: Any, metric: str) -> dict[str, Any]:
    """The run as a JSON-ready dict: its rounds and, per model, its score after each round it trained in."""
    settings, jobs = run.settings, run.state.get("rounds", [])
    models: dict[str, dict[str, Any]] = {}
    rounds = []
    per_round = [round_summary(store, job_id, metric) for job_id in jobs]
    for index, (job_id, found) in enumerate(zip(jobs, per_round, strict=True)):
        steps = settings["steps"][index]
        later = per_round[index + 1] if index + 1 < len(jobs) else None  # None: no later round (yet)
        dropped = [k for k, m in found.items() if m["status"] == "succeeded" and k not in later] if later else []
        for key, model in found.items():
            entry = models.setdefault(key, {"model": len(models) + 1, "arch": model["arch"], "scores": {},
                                            "latency_ms": None, "full_score": None, "status": "training"})
            entry["scores"][str(steps)] = model["score"]
            entry["latency_ms"] = model["latency_ms"] if model["latency_ms"] is not None else entry["latency_ms"]
            if model["status"] != "succeeded":
                entry["status"] = f"failed in round {index + 1} ({model['reason']})"
            elif key in dropped:
                entry["status"] = f"dropped after round {index + 1}"
            elif index == len(settings["steps"]) - 1:
                entry["status"], entry["full_score"] = "selected", model["score"]
        rounds.append({"round": index + 1, "job": job_id, "steps": steps,
                       "fraction": f"1/{DENOMINATORS[index]}" if index < len(settings["steps"]) - 1 else "1",
                       "trained": sum(m["status"] == "succeeded" for m in found.values()),
                       "failed": sum(m["status"] != "succeeded" for m in found.values()),
                       "dropped": [models[k]["model"] for k in dropped]})
    selected = [m for m in models.values() if m["status"] == "selected"]
    return {"run": run.id, "status": run.status, "message": run.message, "metric": metric, **settings,
            "rounds": rounds, "models": list(models.values()), "selected": [m["model"] for m in selected]}
