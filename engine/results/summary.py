"""The job summaries `ls` and `show` print (and `--json` emits).

Every figure is a bounded query (store/aggregates.py): a summary of a 100,000-trial job reads the K best trials,
the first and last failure and a few counts, never every trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasapp.engine.jobs.liveness import effective_status, elapsed_s
from nasapp.engine.latency.accuracy import within
from nasapp.engine.latency.devices import timing_enabled
from nasapp.engine.rewards.options import RewardSpec
from nasapp.store import Job, Store, Trial
from nasapp.store.aggregates import ended_in, newest_pairs, pruned_step_range, reasons
from nasapp.store.db import FINISHED
from nasapp.store.leases import job_wait

# The latency predictor's accuracy is judged on the newest trials: it is refitted as the job goes on.
PREDICTOR_WINDOW = 1000


@dataclass(frozen=True)
class StoredSpec:
    """What a summary reads of a job's stored spec, without building the whole JobSpec (that imports every
    registry, numpy among them: most of `nasapp ls`'s time). The stored spec is the JobSpec as created, so
    every key is there."""

    reward: RewardSpec
    times_latency: bool
    strategy: str
    rule: str
    baseline: Any


def stored_spec(job: Job) -> StoredSpec:
    raw = job.spec
    return StoredSpec(RewardSpec.model_validate(raw["reward"]), timing_enabled(raw.get("latency") or {}),
                      raw["strategy"]["name"], (raw.get("early_stopping") or {}).get("rule", "none"),
                      (raw.get("search") or {}).get("baseline"))


def summarize(store: Store, job: Job, best_k: int = 1) -> dict[str, Any]:
    """A job's figures as one JSON-ready dict (what `ls --json` and `show --json` print)."""
    spec = stored_spec(job)
    counts = store.counts(job.id)
    best = [{"trial": t.number, "reward": t.reward, "metrics": t.metrics, "arch": t.arch,
             "dir": str(store.trial_dir(job.id, t.number).absolute()), "device": t.device}
            for t in store.best_trials(job.id, best_k, spec.reward.direction)]
    elapsed = elapsed_s(job)
    return {
        "id": job.id, "name": job.name, "status": effective_status(job),
        "latency_predictor_within_10pct": predictor_accuracy(store, job.id) if spec.times_latency else None,
        "max_trials": job.max_trials, "finished": sum(counts[s] for s in FINISHED), "counts": counts,
        "best": best[0] if best else None, "top": best, "elapsed_s": round(elapsed, 1),
        "strategy": spec.strategy, "space": job.spec["space"],
        "stage2_of": job.spec["strategy"].get("source_job") if spec.strategy == "given" else None,
        "reward": spec.reward.model_dump(), "message": job.message, "created_at": job.created_at,
        "failures": failures(store, job, counts["failed"]),
        "pruned": pruned(store, job, counts["pruned"]),
        "baseline": baseline(store, job),
        "waiting": waiting(store, job),
    }


def waiting(store: Store, job: Job) -> str | None:
    """Why a running job has slots with nothing on them: "cpu cores 0–1 leased by job 7" (device leases)."""
    found = job_wait(store, job.id)
    return shown_wait(job, found)


def shown_wait(job: Job, found: tuple[str, str | None] | None) -> str | None:
    """The wait's note while the runner that recorded it runs the job (a dead runner's wait is stale)."""
    if found is None or found[0] != job.runner_token or effective_status(job) != "running":
        return None
    return found[1]


def baseline(store: Store, job: Job) -> dict[str, Any] | None:
    """Trial 0 of a job with ``[search] baseline``: its outcome, and the latency target it set (if relative)."""
    spec = stored_spec(job)
    given = spec.baseline
    if given is None:
        return None
    trial = store.trial_by_number(job.id, 0)
    out: dict[str, Any] = {"name": given if isinstance(given, str) else "architecture table", "trial": 0,
                           "status": trial.status if trial else "not started", "reward": None,
                           "metric": None, "latency_ms": None, "target_ms": None}
    if trial is None:
        return out
    latency = trial.metrics.get("latency_ms")
    out.update(reward=trial.reward, metric=trial.metrics.get(spec.reward.metric), latency_ms=latency)
    ratio = spec.reward.target_ratio
    if ratio is not None and isinstance(latency, int | float):
        out["target_ms"] = ratio * latency
    return out


def predictor_accuracy(store: Store, job_id: int) -> float | None:
    """Of the newest PREDICTOR_WINDOW succeeded trials, the share of those with a prediction whose predicted
    latency was within ±10% of the measured one (None when none of them was both predicted and measured)."""
    pairs = newest_pairs(store, job_id, "predicted_latency_ms", "latency_ms", PREDICTOR_WINDOW)
    return within(*zip(*pairs, strict=True)) if pairs else None


def pruned(store: Store, job: Job, count: int) -> dict[str, Any]:
    """The job's pruned trials: how many, the rule that stopped them and the earliest and latest step it did."""
    earliest, latest = pruned_step_range(store, job.id) if count else (None, None)
    return {"count": count, "rule": stored_spec(job).rule, "min_step": earliest, "max_step": latest}


def failures(store: Store, job: Job, count: int) -> dict[str, Any]:
    """The job's failed trials: how many, per reason, and the first and the last to fail with their log files."""
    first = ended_in(store, job.id, "failed", last=False) if count else None
    last = ended_in(store, job.id, "failed", last=True) if count else None
    by_reason = reasons(store, job.id, "failed") if count else {}

    def described(trial: Trial) -> dict[str, Any]:
        return {"trial": trial.number, "reason": trial.reason or "error", "message": trial.message or "",
                "log": str((store.trial_dir(job.id, trial.number) / "trial.log").absolute())}

    return {"count": count, "by_reason": dict(sorted(by_reason.items(), key=lambda item: -item[1])),
            "first": described(first) if first else None, "last": described(last) if last else None}
