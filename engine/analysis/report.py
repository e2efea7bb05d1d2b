"""`nasapp analyze JOB`: the figures, as one record (no printing here; app/analyze_command.py prints them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nasapp.engine.analysis.decisions import DecisionTable, decision_table
from nasapp.engine.analysis.distribution import ChoiceStats, choice_stats
from nasapp.engine.analysis.importance import EVALUATOR, fanova_importance
from nasapp.engine.analysis.sample import TrialSample, sample_trials
from nasapp.engine.analysis.significance import ALPHA, significance
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.spaces import Space
from nasapp.store import Store
from nasapp.store.records import Job

DEFAULT_SAMPLE = 2000
MIN_TRIALS = 20  # below this, neither the forest nor the tests say anything


@dataclass(frozen=True)
class DecisionReport:
    path: str
    kind: str
    importance: float  # share of the explained reward variance (all decisions sum to 1)
    test: str  # "kruskal" | "spearman"
    statistic: float | None
    p_value: float
    p_holm: float
    significant: bool  # p_holm < alpha
    used_by: int  # sampled trials that use this decision (conditional ones: fewer than all)
    choices: list[ChoiceStats]


@dataclass(frozen=True)
class JobAnalysis:
    job: int
    name: str
    metric: str  # what the reward is ("accuracy", or the formula)
    direction: str
    total: int  # succeeded trials with a reward
    sampled: int
    best_kept: int  # of the sample, the job's best trials (the rest drawn at random)
    evaluator: str
    alpha: float
    decisions: list[DecisionReport]  # most important first

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def analyze_job(store: Store, job: Job, sample: int = DEFAULT_SAMPLE) -> JobAnalysis:
    """Raises NasappError for a sample too small, too few succeeded trials, a reward that never varied, or a
    space with nothing to decide."""
    return analyze_sample(store, job, sample)[0]


def analyze_sample(store: Store, job: Job, sample: int = DEFAULT_SAMPLE) -> tuple[JobAnalysis, DecisionTable]:
    """analyze_job's figures and the sample's decision table they came from (for parallel_rows and
    learning_curves, without sampling twice)."""
    if sample < MIN_TRIALS:
        raise NasappError(f"--sample {sample}: give at least {MIN_TRIALS} (trials to analyse)")
    reward = job_spec(job).reward
    trials = sample_trials(store, job, sample, reward.direction)
    _check_enough(job, trials)
    space = Space.from_json(job.space)
    table = decision_table(space, trials.trials)
    if not table.decisions:
        raise NasappError(f"job {job.id}: its space holds a single architecture; there is no decision to analyse")
    analysis = JobAnalysis(job.id, job.name, reward.formula or reward.metric, reward.direction, trials.total,
                           len(trials.trials), trials.best_kept, EVALUATOR, ALPHA,
                           _decision_reports(table, reward.direction))
    return analysis, table


def table_of(store: Store, job: Job, sample: int = DEFAULT_SAMPLE) -> DecisionTable:
    """The sampled trials as a decision table (for parallel_rows and learning_curves)."""
    trials = sample_trials(store, job, sample, job_spec(job).reward.direction)
    return decision_table(Space.from_json(job.space), trials.trials)


def _check_enough(job: Job, trials: TrialSample) -> None:
    if trials.total < MIN_TRIALS:
        raise NasappError(f"job {job.id} has {trials.total} succeeded trial(s) with a reward; the analysis needs at"
                          f" least {MIN_TRIALS} (`nasapp resume {job.id} --max-trials N` runs more)")
    rewards = {t.reward for t in trials.trials}
    if len(rewards) == 1:
        raise NasappError(f"job {job.id}: all {trials.total} succeeded trials have the same reward"
                          f" ({rewards.pop():.6g}); no decision explains a reward that never varies")


def _decision_reports(table: DecisionTable, direction: str) -> list[DecisionReport]:
    importance = fanova_importance(table)
    tests = significance(table.decisions, table.values, table.rewards)
    reports = []
    for column, (decision, test) in enumerate(zip(table.decisions, tests, strict=True)):
        values = table.values[:, column]
        reports.append(DecisionReport(
            decision.path, decision.kind, importance[decision.path], test.test, test.statistic, test.p_value,
            test.p_holm, test.significant, int((~np.isnan(values)).sum()),
            choice_stats(decision, values, table.rewards, direction)))
    return sorted(reports, key=lambda r: (-r.importance, r.p_value))
