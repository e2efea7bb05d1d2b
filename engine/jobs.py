"""Creating a job from a spec, and the job summaries `ls` and `show` print."""

from __future__ import annotations

import os
import time
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobspec import JobSpec
from nasapp.engine.spaces import Space, space
from nasapp.store import Store
from nasapp.store.db import FINISHED


def resolve_space(spec: JobSpec) -> Space:
    if spec.space.prebuilt:
        from nasapp.engine.spaces.prebuilt import get_prebuilt

        return get_prebuilt(spec.space.prebuilt).space
    from nasapp.engine.trainer_loading import load_ref

    assert spec.space.ref is not None
    found = load_ref(spec.space.ref)
    try:
        return space(found)
    except NasappError as error:
        raise NasappError(f"space.ref {spec.space.ref}: {error}") from None


def check_data(spec: JobSpec) -> Any:
    """Load the data once before any trial starts, so a bad path or file fails the job up front."""
    if spec.data is None or spec.trainer.command:
        return None
    from nasapp.engine.data import load_dataset

    return load_dataset(spec.data.model_dump(), spec.seed)


def create_job(store: Store, spec: JobSpec) -> int:
    from nasapp.engine.reward import validate_reward_spec

    notes = validate_reward_spec(spec.reward.model_dump(), spec.latency.model_dump())
    found = resolve_space(spec)
    check_data(spec)
    job_id = store.create_job(spec.name, spec.model_dump(mode="json"), found.to_json(),
                              spec.search.max_trials, spec.seed)
    store.add_event(job_id, f"job created: space {spec.space.prebuilt or spec.space.ref}"
                            f" ({found.size():,} architectures), strategy {spec.strategy.name}")
    for note in notes:
        store.add_event(job_id, note, "warning")
    return job_id


def runner_alive(job: dict[str, Any]) -> bool:
    pid = job.get("runner_pid")
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(job: dict[str, Any]) -> str:
    """A job marked running whose runner is gone was interrupted (kill -9, power loss)."""
    if job["status"] in ("running", "paused") and not runner_alive(job):
        return "interrupted"
    return job["status"]


def _measures_latency(job: dict[str, Any]) -> bool:
    latency = job["spec"].get("latency") or {}
    return latency.get("device", "none") != "none" or bool(latency.get("command"))


def summarize(store: Store, job: dict[str, Any], best_k: int = 1) -> dict[str, Any]:
    counts = store.counts(job["id"])
    direction = job["spec"].get("reward", {}).get("direction", "max")
    best = [
        {"trial": t["number"], "reward": t["reward"], "metrics": t["metrics"], "arch": t["arch"]}
        for t in store.best_trials(job["id"], best_k, direction)
    ]
    end = job["finished_at"] if job["status"] not in ("running", "paused") else time.time()
    elapsed = (end or time.time()) - job["started_at"] if job["started_at"] else 0.0
    from nasapp.engine.latency.gate import predictor_accuracy

    return {
        "id": job["id"], "name": job["name"], "status": effective_status(job),
        "latency_predictor_within_10pct": predictor_accuracy(store.trials(job["id"], "succeeded"))
        if _measures_latency(job) else None,
        "max_trials": job["max_trials"], "finished": sum(counts[s] for s in FINISHED), "counts": counts,
        "best": best[0] if best else None, "top": best, "elapsed_s": round(elapsed, 1),
        "strategy": job["spec"]["strategy"]["name"], "space": job["spec"]["space"],
        "reward": job["spec"]["reward"], "message": job["message"], "created_at": job["created_at"],
    }
