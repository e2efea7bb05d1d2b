"""One validation path for a job: what the CLI, `nasapp run`, the dashboard's new-job screen and `nasapp check`
call before a job exists, and what creating the job row runs. A spec that passes here is one the runner accepts.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.baseline import check_baseline
from nasapp.engine.jobs.spec import JobSpec
from nasapp.engine.spaces import Space, space
from nasapp.store import Store


@dataclass(frozen=True)
class ValidatedJob:
    """A job spec that passed every check, with what the checks found."""

    spec: JobSpec
    space: Space
    notes: list[str] = field(default_factory=list)  # legal settings that are probably not what was meant
    data: Any = None  # the loaded data set (None for command trainers and jobs without [data])


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

    return load_dataset(spec.data, spec.seed)


def check_trainer(spec: JobSpec) -> None:
    """A trainer reference that cannot run fails here, not in every trial."""
    trainer = spec.trainer
    if trainer.ref:
        from nasapp.engine.jobs.refs import load_ref

        found = load_ref(trainer.ref)
        if not callable(found):
            raise NasappError(f"trainer.ref: {trainer.ref} is a {type(found).__name__}, not a function"
                              " train(arch, ctx)")
    elif trainer.command:
        program = trainer.command[0]
        if os.sep in program:
            if not os.access(program, os.X_OK) or Path(program).is_dir():
                raise NasappError(f"trainer.command: {program} is not an executable file")
        elif shutil.which(program) is None:
            raise NasappError(f"trainer.command: program {program!r} not found on PATH")
    elif trainer.prebuilt:
        from nasapp.engine.trainers import PREBUILT_TRAINERS

        PREBUILT_TRAINERS.get(trainer.prebuilt)


def check_strategy(spec: JobSpec) -> None:
    """A strategy that needs more of the job than its options: one that needs a proxy scorer (``needs_scorer``,
    the pre-screen) has its proxy, space and data table checked, as the runner will build its scorer."""
    from nasapp.engine.strategies import STRATEGIES

    if getattr(STRATEGIES.get(spec.strategy.name).make, "needs_scorer", False):
        from nasapp.engine.proxies.job_scorer import job_scorer

        job_scorer(spec)  # checks the proxy, the space and the data table; loads nothing yet


def validate_job(spec: JobSpec) -> ValidatedJob:
    """Every check a job gets before it exists: reward, trainer, space, data. Raises NasappError."""
    from nasapp.engine.rewards.reward import validate_reward_spec

    notes = validate_reward_spec(spec.reward, spec.latency)
    check_trainer(spec)
    check_strategy(spec)
    found = resolve_space(spec)
    check_baseline(spec, found)
    data = check_data(spec)
    return ValidatedJob(spec, found, notes, data)


def create_job(store: Store, spec: JobSpec | ValidatedJob) -> int:
    """Validate (unless already done) and write the job row; returns the job's id."""
    checked = spec if isinstance(spec, ValidatedJob) else validate_job(spec)
    spec = checked.spec
    job_id = store.create_job(spec.name, spec.model_dump(mode="json"), checked.space.to_json(),
                              spec.search.max_trials, spec.seed)
    store.add_event(job_id, f"job created: space {spec.space.label}"
                            f" ({checked.space.size_text()}), strategy {spec.strategy.name}")
    for note in checked.notes:
        store.add_event(job_id, note, "warning")
    return job_id
