"""Creating a job from its spec: resolving the space, checking the data, writing the job row."""

from __future__ import annotations

from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import JobSpec
from nasapp.engine.spaces import Space, space
from nasapp.store import Store


def resolve_space(spec: JobSpec) -> Space:
    if spec.space.prebuilt:
        from nasapp.engine.spaces.prebuilt import get_prebuilt

        return get_prebuilt(spec.space.prebuilt).space
    from nasapp.engine.jobs.refs import load_ref

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
    from nasapp.engine.data.loaders import load_dataset

    return load_dataset(spec.data.model_dump(), spec.seed)


def create_job(store: Store, spec: JobSpec) -> int:
    from nasapp.engine.rewards.reward import validate_reward_spec

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
