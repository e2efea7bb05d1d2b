"""What ``nasapp proxy variance`` reports about a run of copies: how much the proxy task's final score and its
validation curve vary between training runs of one model, and advice when they are too noisy to rank models.

- ``cv``: the coefficient of variation (sample standard deviation / |mean|) of the final score over the
  copies that succeeded, all of the same architecture.
- ``curve_noise``: per copy, the mean size of the score's drops between consecutive evaluations, relative to
  the copy's final score; the median over copies. A smooth curve only rises (0); a noisy one keeps falling
  back.
"""

from __future__ import annotations

import statistics
from typing import Any

from nasapp.store import Store

MAX_CV = 0.01  # default: a 1% spread of the score is about the gap between neighbouring models of a search
MAX_CURVE_NOISE = 0.01


def proxy_settings(spec: Any) -> dict[str, Any]:
    """What the advice refers to: the job's ``[trainer]`` settings and its ``data_fraction``."""
    return {**spec.trainer.proxy, "data_fraction": spec.data.data_fraction if spec.data is not None else 1.0}


def variance_summary(store: Store, job_id: int, metric: str, copies: int, max_cv: float = MAX_CV,
                     max_curve_noise: float = MAX_CURVE_NOISE,
                     settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures of the copies job ``job_id`` (see the module docstring) as a JSON-ready dict. ``settings``:
    the job's proxy settings (``[trainer]`` and ``data_fraction``), which the advice refers to."""
    trials = store.trials(job_id)
    last = trials[-1] if trials else None  # the model copied last is the one measured (earlier ones failed)
    same = [t for t in trials if t.fingerprint == last.fingerprint] if last else []
    succeeded = [t for t in same if t.status == "succeeded" and metric in t.metrics]
    scores = [float(t.metrics[metric]) for t in succeeded]
    noise = [_curve_noise(store, t.id, metric) for t in succeeded]
    summary: dict[str, Any] = {
        "job": job_id, "metric": metric, "arch": last.arch if last else None, "copies": copies,
        "succeeded": len(succeeded), "failed": len(same) - len(succeeded),
        "resampled": max(0, len({t.fingerprint for t in trials}) - 1),
        "scores": scores, "mean": statistics.fmean(scores) if scores else None,
        "std": statistics.stdev(scores) if len(scores) > 1 else None,
        "cv": _cv(scores), "curve_noise": statistics.median(noise) if noise else None,
        "max_cv": max_cv, "max_curve_noise": max_curve_noise,
    }
    summary["advice"] = advice(summary, settings or {})
    return summary


def advice(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """What to change when the proxy task is too noisy (empty when it is fine); ``settings`` as for
    :func:`variance_summary`, so only changes the job has not made yet are suggested."""
    if summary["succeeded"] < 2:
        return ["fewer than 2 copies succeeded: no variance to measure; see the failed trials' reasons"]
    tips = []
    if summary["cv"] is not None and summary["cv"] > summary["max_cv"]:
        tips.append(f"the final {summary['metric']} varies by {summary['cv']:.1%} between copies (over"
                    f" {summary['max_cv']:.1%}): models closer than that cannot be ranked. Try "
                    + ", ".join(_remedies(settings)))
    if summary["curve_noise"] is not None and summary["curve_noise"] > summary["max_curve_noise"]:
        tips.append(f"validation curves fall back by {summary['curve_noise']:.1%} on average between"
                    " evaluations: early stopping will judge on noise. Try weight averaging (trainer.ema),"
                    " a lower trainer.lr, or a larger validation split (data.val_fraction)")
    return tips


def _remedies(settings: dict[str, Any]) -> list[str]:
    steps = settings.get("steps")
    schedule = settings.get("schedule_steps")
    found = []
    if schedule is not None and steps is not None and schedule > steps:
        found.append(f"a cosine decay to zero over the proxy's own {steps} steps (unset trainer.schedule_steps,"
                     f" now {schedule}: the learning rate is still high when the proxy stops)")
    if not settings.get("ema"):
        found.append("weight averaging (trainer.ema = 0.99)")
    if settings.get("data_fraction", 1.0) < 1.0:
        found.append(f"more data (data.data_fraction, now {settings['data_fraction']:g})")
    found.append(f"more steps (trainer.steps{f', now {steps}' if steps else ''})")
    return found


def _cv(scores: list[float]) -> float | None:
    if len(scores) < 2 or statistics.fmean(scores) == 0:
        return None
    return statistics.stdev(scores) / abs(statistics.fmean(scores))


def _curve_noise(store: Store, trial_id: int, metric: str) -> float:
    curve = [float(row["values"][metric]) for row in store.metrics(trial_id) if metric in (row["values"] or {})]
    if len(curve) < 2 or curve[-1] == 0:
        return 0.0
    drops = [max(0.0, before - after) for before, after in zip(curve, curve[1:], strict=False)]
    return statistics.fmean(drops) / abs(curve[-1])
