"""Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel Hyperparameter Tuning",
MLSys 2020) as an early-stopping rule.

Rungs sit at steps ``min_steps * reduction_factor ** k``. When a trial's first report at or past a rung's step
arrives, its score there (its best report so far) is recorded at that rung, and the trial goes on only if that
score is among the top ``1 / reduction_factor`` of the scores recorded at the rung so far (at least the best
one); otherwise it stops. A report that passes several rungs at once is judged at each in turn, and a trial
stopped at a rung is never recorded at a later one, so each rung holds the trials promoted to it. No trial
stops at a rung until ``min_trials`` trials (this one included) have a score there.

Asynchronous: a trial is compared with what has arrived, never waits for a full rung, so the first trials of a
rung are promoted generously and later ones face a stricter field. Decisions depend only on the reports and
their order. On resume :meth:`AshaRule.observe` rebuilds the rungs from the finished trials' reports (a set of
scores per rung, whatever order they come in). It records every rung those reports reach, so it matches the
live rule when each rung falls on a reported step (``min_steps`` a multiple of ``trainer.eval_every``: one
report never passes two rungs) and trainers stop before their next report once asked to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nasapp.engine.early_stopping.base import EarlyStoppingEntry, EarlyStoppingOptions, EarlyStoppingRule


class AshaOptions(EarlyStoppingOptions):
    rule: Literal["asha"] = "asha"
    min_steps: int = Field(50, ge=1)  # the first rung; align it with trainer.eval_every
    reduction_factor: int = Field(3, ge=2)  # eta: keep the top 1/eta at each rung
    min_trials: int = Field(5, ge=1)  # scores a rung needs (the trial's own included) before it stops anything
    max_rungs: int | None = Field(None, ge=1)  # None: rungs go on as far as the trials report


class AshaRule(EarlyStoppingRule):
    options: AshaOptions

    def __init__(self, options: AshaOptions) -> None:
        super().__init__(options)
        self.rungs: list[dict[int, float]] = []  # rung k -> {trial: its score at rung k}
        self.best: dict[int, float] = {}  # trial -> its best score so far
        self.next_rung: dict[int, int] = {}  # trial -> the first rung it has no score at yet

    def rung_step(self, rung: int) -> int:
        """The step at which rung ``rung`` (0-based) sits."""
        return self.options.min_steps * self.options.reduction_factor ** rung

    def observe(self, trial: int, step: int, score: float) -> None:
        self.best[trial] = max(score, self.best.get(trial, score))
        for rung in self._rungs_reached(trial, step):
            self._record(trial, rung)

    def should_stop(self, trial: int, step: int, score: float) -> bool:
        self.best[trial] = max(score, self.best.get(trial, score))
        for rung in self._rungs_reached(trial, step):
            self._record(trial, rung)
            if not self.promotable(trial, rung):
                return True  # not recorded at the later rungs: it never reaches them
        return False

    def promotable(self, trial: int, rung: int) -> bool:
        """Whether ``trial``'s score at ``rung`` is among the top 1/eta of the scores recorded there so far."""
        scores = sorted(self.rungs[rung].values(), reverse=True)
        if len(scores) < self.options.min_trials:
            return True
        keep = max(1, len(scores) // self.options.reduction_factor)
        return self.rungs[rung][trial] >= scores[keep - 1]

    def _rungs_reached(self, trial: int, step: int) -> list[int]:
        """The rungs ``trial`` has no score at yet whose step is at or before ``step``, in order."""
        rung, reached = self.next_rung.get(trial, 0), []
        while step >= self.rung_step(rung) and (self.options.max_rungs is None or rung < self.options.max_rungs):
            reached.append(rung)
            rung += 1
        return reached

    def _record(self, trial: int, rung: int) -> None:
        """``trial``'s best score so far becomes its score at ``rung``."""
        while len(self.rungs) <= rung:
            self.rungs.append({})
        self.rungs[rung][trial] = self.best[trial]
        self.next_rung[trial] = rung + 1


ENTRY = EarlyStoppingEntry("asha", "asynchronous successive halving: at rungs min_steps * eta^k keep the top 1/eta of"
                           " the scores recorded there so far (Li et al. 2020)", AshaOptions, AshaRule)
