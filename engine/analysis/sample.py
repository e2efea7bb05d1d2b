"""A bounded, deterministic sample of a job's succeeded trials: the best always, the rest drawn at random.

A job may hold 100,000 trials; an analysis reads every reward (one small query) but the architectures of the
sample only. The same job and limit always give the same sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nasapp.store import Store
from nasapp.store.queries import succeeded_rewards
from nasapp.store.records import Job, Trial

SAMPLE_SEED = 0
BEST_SHARE = 0.1  # this share of the sample is the job's best trials


@dataclass(frozen=True)
class TrialSample:
    trials: list[Trial]  # by trial number
    total: int  # the job's succeeded trials with a finite reward
    best_kept: int  # how many of ``trials`` are there because they are the best


def sample_trials(store: Store, job: Job, limit: int, direction: str) -> TrialSample:
    rows = [(trial_id, reward) for trial_id, reward in succeeded_rewards(store, job.id) if math.isfinite(reward)]
    ids, best = pick(rows, limit, direction)
    return TrialSample(sorted(store.trials_among(job.id, "id", ids), key=lambda trial: trial.number), len(rows), best)


def pick(rows: list[tuple[int, float]], limit: int, direction: str) -> tuple[list[int], int]:
    """The ids to analyse among (id, reward) rows, and how many of them were kept as the best."""
    if len(rows) <= limit:
        return [trial_id for trial_id, _ in rows], 0
    ranked = sorted(rows, key=lambda row: row[1], reverse=direction == "max")  # stable: ties keep trial order
    keep = max(1, int(limit * BEST_SHARE))
    rest = ranked[keep:]
    drawn = np.random.default_rng(SAMPLE_SEED).choice(len(rest), size=limit - keep, replace=False)
    return [trial_id for trial_id, _ in ranked[:keep]] + [rest[i][0] for i in sorted(drawn)], keep
