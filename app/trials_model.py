"""A job's trials as the job screen shows them, kept up to date incrementally (no UI code here).

Each update reads only the new trials and the ones not finished yet (`store.queries.trial_rows`), and keeps
from those rows alone: the counts by status, the best rewards, the search curve's points, the succeeded
trials not yet charted, the formatted table cells and, per column, the sort values. Succeeded trials never
change again (a resume requeues only queued, running and cancelled trials), which is what makes the best,
the curve and the Pareto front incremental.
"""

from __future__ import annotations

import time
from bisect import insort
from typing import Any

from nasapp.app.progress import format_duration
from nasapp.app.screens.common import STATUS_TONES, fmt_metric, fmt_number
from nasapp.engine.jobs.spec import job_spec
from nasapp.store import Store
from nasapp.store.db import FINISHED, TRIAL_STATES
from nasapp.store.queries import trial_rows
from nasapp.store.records import Job, Trial

FILTERS = ("all", *TRIAL_STATES)
MAX_METRIC_COLUMNS = 5
LATENCY_KEY = "latency_ms"


def duration(trial: Trial, now: float | None = None) -> float | None:
    """Seconds a trial ran (so far, while it runs); None before it started."""
    if trial.started_at is None:
        return None
    now = time.time() if now is None else now
    end = trial.finished_at if trial.status not in ("running", "queued") else now
    return max(0.0, (end or now) - trial.started_at)


def note(trial: Trial) -> str:
    """The trials table's note: the failure reason and its message, on one line."""
    text = trial.reason or ""
    if trial.message:
        text = f"{text}: {trial.message}" if text else trial.message
    return text.replace("\n", " ")


def _number_or_none(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) and value == value else None


class TrialsModel:
    """A job's trials (without architectures), read incrementally; see the module docstring.

    Column keys: "number", "status", "reward", "m:NAME" per metric (the reward metric and latency first, at
    most MAX_METRIC_COLUMNS), "time", "device", "note"; `cells(trial_id)` gives a row's texts in that order.
    """

    def __init__(self, job: Job) -> None:
        self.job_id = job.id
        self.reward = job_spec(job).reward
        self.metric = self.reward.metric  # the reward's metric: the first metric column, the Pareto chart's y
        self.rows: dict[int, Trial] = {}  # trial id -> trial, in id (= number) order
        self.max_id = 0
        self.open_ids: set[int] = set()
        self.metric_keys: list[str] = []
        self.counts: dict[str, int] = dict.fromkeys(TRIAL_STATES, 0)
        self.best_max: float | None = None
        self.best_min: float | None = None
        self.curve_points: list[tuple[int, float]] = []  # (number, reward) of succeeded trials, sorted
        self.new_succeeded: list[Trial] = []  # succeeded since the charts last took them
        self._cells: dict[int, tuple[str, ...]] = {}
        self._values: dict[str, dict[int, Any]] = {}  # column -> trial id -> sort value
        self.note_width = 0  # the longest note so far (the table's auto-width column)

    # ---- reading -------------------------------------------------------------------------------------
    def update(self, store: Store) -> bool:
        """Read what changed since the last update; True when anything did."""
        fresh = trial_rows(store, self.job_id, self.max_id, sorted(self.open_ids))
        changed = False
        keys = set(self.metric_keys)
        for trial in fresh:
            old = self.rows.get(trial.id)
            if old == trial:
                continue
            changed = True
            self._keep(trial, old)
            keys.update(trial.metrics)
        if keys != set(self.metric_keys):
            self.metric_keys = self._order_keys(keys)
            self._cells.clear()
        return changed

    def _keep(self, trial: Trial, old: Trial | None) -> None:
        trial_id = trial.id
        self.rows[trial_id] = trial
        self._cells.pop(trial_id, None)
        for values in self._values.values():
            values.pop(trial_id, None)
        self.max_id = max(self.max_id, trial_id)
        if old is not None:
            self.counts[old.status] -= 1
        self.counts[trial.status] = self.counts.get(trial.status, 0) + 1
        if trial.status in FINISHED:
            self.open_ids.discard(trial_id)
        else:
            self.open_ids.add(trial_id)
        if trial.status == "succeeded" and (old is None or old.status != "succeeded"):
            self._add_succeeded(trial)
        if trial.reason or trial.message:
            self.note_width = max(self.note_width, len(note(trial)))

    def _add_succeeded(self, trial: Trial) -> None:
        self.new_succeeded.append(trial)
        reward = trial.reward
        if reward is None or reward != reward:
            return
        insort(self.curve_points, (trial.number, float(reward)))
        self.best_max = reward if self.best_max is None else max(self.best_max, reward)
        self.best_min = reward if self.best_min is None else min(self.best_min, reward)

    def _order_keys(self, keys: set[str]) -> list[str]:
        # the reward's metric, latency, then the size figures papers quote (MACs, not FLOPs = 2 x MACs)
        first = [k for k in (self.metric, LATENCY_KEY, "macs", "params") if k in keys]
        return (first + sorted(keys - set(first)))[:MAX_METRIC_COLUMNS]

    # ---- what the views take -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The figures `screens.common.job_line` takes (the shape of `queries.job_stats` per job)."""
        return {"counts": self.counts, "best_max": self.best_max, "best_min": self.best_min}

    def take_new_succeeded(self) -> list[Trial]:
        taken, self.new_succeeded = self.new_succeeded, []
        return taken

    def curve(self) -> tuple[list[float], list[float]]:
        """The search curve: (trial numbers, rewards) of the succeeded trials, by number."""
        return [float(n) for n, _ in self.curve_points], [r for _, r in self.curve_points]

    def column_keys(self) -> list[str]:
        return ["number", "status", "reward", *(f"m:{k}" for k in self.metric_keys), "time", "device", "note"]

    def cells(self, trial_id: int) -> tuple[str, ...]:
        """A trial's row as texts, in column_keys() order (cached, except while it runs: its time grows)."""
        trial = self.rows[trial_id]
        cached = self._cells.get(trial_id)
        if cached is not None and trial.status != "running":
            return cached
        metrics = trial.metrics
        seconds = duration(trial)
        cells = (str(trial.number), trial.status, fmt_number(trial.reward),
                 *(fmt_metric(metrics.get(k)) for k in self.metric_keys),
                 format_duration(seconds) if seconds is not None else "-", trial.device or "-", note(trial))
        self._cells[trial_id] = cells
        return cells

    def tone(self, trial_id: int) -> str | None:
        """How the row is coloured: "good", "bad", "active", "muted" or None."""
        return STATUS_TONES.get(self.rows[trial_id].status)

    def sort_value(self, trial: Trial, column: str) -> Any:
        """A trial's value in a column, for sorting (None: empty, sorted last)."""
        if column == "number":
            return trial.number
        if column == "reward":
            return _number_or_none(trial.reward)
        if column.startswith("m:"):
            return _number_or_none(trial.metrics.get(column[2:]))
        if column == "time":
            return duration(trial)
        if column == "note":
            return trial.reason or trial.message or None
        return getattr(trial, column, None)

    def _column_values(self, column: str, ids: list[int]) -> dict[int, Any]:
        if column == "time":  # running trials' durations grow: never cached
            now = time.time()
            return {i: duration(self.rows[i], now) for i in ids}
        values = self._values.setdefault(column, {})
        rows = self.rows
        for i in ids:
            if i not in values:
                values[i] = self.sort_value(rows[i], column)
        return values

    def ordered_ids(self, status: str, sort: str, reverse: bool) -> list[int]:
        """The table's trial ids: filtered by status ("all": every trial), sorted by a column (empty values
        last either way; ties in trial-number order)."""
        rows = self.rows
        ids = list(rows) if status == "all" else [i for i, t in rows.items() if t.status == status]
        if sort == "number":
            return ids[::-1] if reverse else ids
        values = self._column_values(sort, ids)
        present = [i for i in ids if values[i] is not None]
        missing = [i for i in ids if values[i] is None]
        present.sort(key=values.__getitem__, reverse=reverse)
        return present + missing
