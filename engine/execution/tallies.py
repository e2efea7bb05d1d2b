"""The runner's running figures for one job: trials per state, the best reward, the next trial number and the
failure policy. The runner is the only writer of its job's trial rows, so it keeps these in memory instead of
querying the store each time; they are loaded once when a runner starts."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasapp.store import Store, Trial
from nasapp.store.db import FINISHED, TRIAL_STATES

MIN_TRIALS_FOR_FAILURE_POLICY = 10


def score(reward: float | None, direction: str) -> float | None:
    """A reward as strategies and rules see it: higher is better."""
    if reward is None:
        return None
    return reward if direction == "max" else -reward


@dataclass
class Tallies:
    direction: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRIAL_STATES, 0))
    next_number: int = 0
    best: float | None = None
    infeasible: int = 0  # failed with reason "constraint": the search working, not broken

    @classmethod
    def load(cls, store: Store, job_id: int, direction: str, trials: list[Trial] | None = None) -> Tallies:
        """From the store: two aggregate queries, and ``trials`` (all of the job's, as the runner read them at
        start-up; read here when not given) for the next number and the infeasible count."""
        trials = store.trials(job_id) if trials is None else trials
        best = store.best_trials(job_id, 1, direction)
        return cls(
            direction=direction, counts=store.counts(job_id),
            next_number=max((t.number for t in trials), default=-1) + 1,
            best=best[0].reward if best else None,
            infeasible=sum(t.status == "failed" and t.reason == "constraint" for t in trials),
        )

    def take_number(self) -> int:
        number, self.next_number = self.next_number, self.next_number + 1
        return number

    def move(self, old: str | None, new: str) -> None:
        """A trial changed state (``old`` None: a new trial)."""
        if old is not None:
            self.counts[old] -= 1
        self.counts[new] += 1

    def finished(self) -> int:
        return sum(self.counts[s] for s in FINISHED)

    def planned(self) -> int:
        """Trials finished, running or waiting: what counts against max_trials."""
        return self.finished() + self.counts["running"] + self.counts["queued"]

    def record(self, reward: float | None, reason: str | None) -> None:
        """A trial finished with ``reward`` (None: no reward) and failure ``reason``."""
        self.infeasible += reason == "constraint"
        if reward is None:
            return
        if self.best is None or score(reward, self.direction) > score(self.best, self.direction):  # type: ignore[operator]
            self.best = reward

    def failure_policy(self, store: Store, job_id: int, max_failure_rate: float) -> str | None:
        """Why the job must stop for failing too often, or None."""
        failures = self.counts["failed"] - self.infeasible
        finished = self.finished()
        if finished < MIN_TRIALS_FOR_FAILURE_POLICY or failures <= max_failure_rate * finished:
            return None
        failed = [t for t in store.trials(job_id, "failed") if t.reason != "constraint"][-1]
        log = store.trial_dir(job_id, failed.number) / "trial.log"
        return (f"{failures} of {finished} finished trials failed, more than"
                f" search.max_failure_rate = {max_failure_rate:g}; last failure: trial {failed.number}"
                f" ({failed.reason}: {failed.message}); its log: {log}")
