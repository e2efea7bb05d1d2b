"""The median stopping rule (Golovin et al. 2017, Google Vizier).

A trial stops at step ``s`` when its best score so far is worse than the median of the other trials' running
averages up to ``s``. It waits ``warmup_steps`` steps and until ``min_trials`` other trials have reported at
``s`` or later, so the first trials of a job always run to the end.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from typing import Literal

from pydantic import Field

from nasapp.engine.early_stopping.base import EarlyStoppingEntry, EarlyStoppingOptions, EarlyStoppingRule


class MedianOptions(EarlyStoppingOptions):
    rule: Literal["median"] = "median"
    warmup_steps: int = Field(0, ge=0)
    min_trials: int = Field(5, ge=1)


class MedianRule(EarlyStoppingRule):
    options: MedianOptions

    def __init__(self, options: MedianOptions) -> None:
        super().__init__(options)
        self.reports: dict[int, tuple[list[int], list[float]]] = {}  # trial -> (steps, scores) in step order

    def observe(self, trial: int, step: int, score: float) -> None:
        steps, scores = self.reports.setdefault(trial, ([], []))
        at = bisect_right(steps, step)
        steps.insert(at, step)
        scores.insert(at, score)

    def should_stop(self, trial: int, step: int, score: float) -> bool:
        self.observe(trial, step, score)
        if step < self.options.warmup_steps:
            return False
        averages = [self._running_average(other, step) for other in self.reports if other != trial]
        averages = [a for a in averages if a is not None]
        if len(averages) < self.options.min_trials:
            return False
        best = max(self.reports[trial][1])
        return best < statistics.median(averages)

    def _running_average(self, trial: int, step: int) -> float | None:
        """The mean of ``trial``'s scores up to ``step``, if it has reported at ``step`` or later."""
        steps, scores = self.reports[trial]
        if not steps or steps[-1] < step:
            return None
        upto = bisect_right(steps, step)
        return statistics.fmean(scores[:upto]) if upto else None


ENTRY = EarlyStoppingEntry("median", "stop a trial whose best score is under the median of the others' running"
                           " averages at the same step (Vizier)", MedianOptions, MedianRule)
