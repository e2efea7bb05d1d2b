"""A job's trials as the job screen shows them, kept up to date incrementally (no UI code here).

The model never holds a job's trials: opening a job reads summaries (`store.queries`: the counts by status,
the metrics the newest trials report, the numbers the charts need), and each update reads only the new
trials and the ones not finished yet (`trial_rows`). From those it keeps the counts, the best rewards, the
charts' bounded points (app/chart_points.py) and the ids of new trials; the table reads the rows it shows
itself (app/trials_window.py). Succeeded trials never change again (a resume requeues only queued, running
and cancelled trials), which is what makes the best, the curve and the Pareto front incremental.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from nasapp.app.chart_points import CurvePoints, ParetoPoints
from nasapp.app.progress import format_duration
from nasapp.app.screens.common import STATUS_TONES, fmt_metric, fmt_number
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.rewards.pareto import metric_direction, metric_value
from nasapp.store import Store
from nasapp.store.aggregates import metric_points
from nasapp.store.db import FINISHED, TRIAL_STATES
from nasapp.store.queries import (
    max_trial_id,
    open_trial_ids,
    recent_metrics,
    status_summary,
    trial_rows,
    trials_by_ids,
)
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


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class TrialsModel:
    """A job's counts, best rewards, chart points and metric columns; see the module docstring.

    Column keys: "number", "status", "reward", "m:NAME" per metric (the reward metric and latency first, at
    most MAX_METRIC_COLUMNS), "time", "device", "note"; `cells(trial)` gives a row's texts in that order.
    """

    def __init__(self, job: Job) -> None:
        self.job_id = job.id
        self.reward = job_spec(job).reward
        self.metric = self.reward.metric  # the reward's metric: the first metric column, the Pareto chart's y
        self.loaded = False
        self.max_id = 0
        self.open: dict[int, Trial] = {}  # trials not finished yet, by id
        self.new_ids: list[int] = []  # trials first seen by the last update, by id
        self.metric_keys: list[str] = []  # the table's metric columns
        self.known_keys: set[str] = set()  # every metric seen (the newest trials' when the job was opened, then new)
        self.chosen_keys: list[str] | None = None  # the metric columns the user picked (None: the default ones)
        self.counts: dict[str, int] = dict.fromkeys(TRIAL_STATES, 0)
        self.best_max: float | None = None
        self.best_min: float | None = None
        self.curve = CurvePoints(self.reward.direction)
        self.pareto = ParetoPoints("min", metric_direction(self.metric, self.reward))
        self.note_width = 0  # the longest note so far (the table's auto-width column)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    # ---- reading -------------------------------------------------------------------------------------
    def update(self, store: Store) -> bool:
        """Read what changed since the last update (everything's summary the first time); True when anything did."""
        self.new_ids = []
        if not self.loaded:
            self._load(store)
            return True
        fresh = trial_rows(store, self.job_id, self.max_id, sorted(self.open))
        changed = False
        keys = set(self.known_keys)
        for trial in fresh:
            old = self.open.get(trial.id)
            if old == trial:
                continue
            changed = True
            self._keep(trial, old)
            keys.update(trial.metrics)
        if keys != self.known_keys:
            self.known_keys = keys
            self.metric_keys = self._order_keys(keys)
        return changed

    def choose_keys(self, keys: list[str] | None) -> None:
        """Show these metric columns (None: the default ones)."""
        self.chosen_keys = keys
        self.metric_keys = self._order_keys(self.known_keys)

    def all_keys(self) -> list[str]:
        """Every metric seen, the default columns' order first."""
        first = [k for k in (self.metric, LATENCY_KEY, "macs", "params") if k in self.known_keys]
        return first + sorted(self.known_keys - set(first))

    def _load(self, store: Store) -> None:
        self.loaded = True
        self.max_id = max_trial_id(store, self.job_id)
        for status, (count, high, low, note_width) in status_summary(store, self.job_id).items():
            self.counts[status] = count
            self.note_width = max(self.note_width, note_width)
            if status == "succeeded":
                self.best_max, self.best_min = high, low
        self.known_keys = {key for metrics in recent_metrics(store, self.job_id) for key in metrics}
        self.metric_keys = self._order_keys(self.known_keys)
        self._load_charts(store)
        if self.counts["queued"] or self.counts["running"]:
            open_rows = trials_by_ids(store, self.job_id, open_trial_ids(store, self.job_id))
            self.open = {trial.id: trial for trial in open_rows}

    def _load_charts(self, store: Store) -> None:
        _, rows = metric_points(store, self.job_id, LATENCY_KEY, self.metric)
        try:  # numbers (None: not reported) -> floats (NaN) at C speed
            table = np.array(rows, dtype=float).reshape(-1, 4)
        except (TypeError, ValueError):  # a metric that is not a number
            table = np.array([[_finite(v) for v in row] for row in rows], dtype=float).reshape(-1, 4)
        numbers, rewards, xs, ys = table.T
        good = np.isfinite(rewards)
        self.curve.extend(numbers[good].astype(np.int64), rewards[good])
        good = np.isfinite(xs) & np.isfinite(ys)
        self.pareto.extend(xs[good], ys[good])

    def _keep(self, trial: Trial, old: Trial | None) -> None:
        trial_id = trial.id
        if trial_id > self.max_id:
            self.max_id = trial_id
            self.new_ids.append(trial_id)
        if old is not None:
            self.counts[old.status] -= 1
        self.counts[trial.status] = self.counts.get(trial.status, 0) + 1
        if trial.status in FINISHED:
            self.open.pop(trial_id, None)
        else:
            self.open[trial_id] = trial
        if trial.status == "succeeded" and (old is None or old.status != "succeeded"):
            self._add_succeeded(trial)
        if trial.reason or trial.message:
            self.note_width = max(self.note_width, len(note(trial)))

    def _add_succeeded(self, trial: Trial) -> None:
        reward = _finite(trial.reward)
        if reward is not None:
            self.curve.add(trial.number, reward)
            self.best_max = reward if self.best_max is None else max(self.best_max, reward)
            self.best_min = reward if self.best_min is None else min(self.best_min, reward)
        x, y = metric_value(trial, LATENCY_KEY), metric_value(trial, self.metric)
        if x is not None and y is not None:
            self.pareto.add(x, y)

    def _order_keys(self, keys: set[str]) -> list[str]:
        if self.chosen_keys is not None:
            return list(self.chosen_keys)
        # the reward's metric, latency, then the size figures papers quote (MACs, not FLOPs = 2 x MACs)
        first = [k for k in (self.metric, LATENCY_KEY, "macs", "params") if k in keys]
        return (first + sorted(keys - set(first)))[:MAX_METRIC_COLUMNS]

    # ---- what the views take -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """The figures `screens.common.job_line` takes (the shape of `queries.job_stats` per job)."""
        return {"counts": self.counts, "best_max": self.best_max, "best_min": self.best_min}

    def column_keys(self) -> list[str]:
        return ["number", "status", "reward", *(f"m:{k}" for k in self.metric_keys), "time", "device", "note"]

    def cells(self, trial: Trial) -> tuple[str, ...]:
        """A trial's row as texts, in column_keys() order."""
        metrics = trial.metrics
        seconds = duration(trial)
        return (str(trial.number), trial.status, fmt_number(trial.reward),
                *(fmt_metric(metrics.get(k)) for k in self.metric_keys),
                format_duration(seconds) if seconds is not None else "-", trial.device or "-", note(trial))


def tone(trial: Trial) -> str | None:
    """How a trial's row is coloured: "good", "bad", "active", "muted" or None."""
    return STATUS_TONES.get(trial.status)
