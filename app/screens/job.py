"""The job screen: the spec summary, the search curve, the Pareto front, the trials table and the event log."""

from __future__ import annotations

import time
from bisect import insort
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Log, Static

from nasapp.app.progress import format_duration
from nasapp.app.screens.common import (
    STATUS_TONES,
    control_job,
    fmt_metric,
    fmt_number,
    job_line,
    reward_summary,
    space_summary,
)
from nasapp.app.widgets import (
    Column,
    ConfirmScreen,
    LazyRows,
    ParetoChart,
    PromptScreen,
    SearchCurve,
    TableRow,
    VirtualTable,
)
from nasapp.engine.rewards.pareto import metric_direction, metric_value, pareto_front
from nasapp.store import Store
from nasapp.store.db import FINISHED, TRIAL_STATES
from nasapp.store.queries import data_version, events_after, trial_rows

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

FILTERS = ("all", *TRIAL_STATES)
MAX_METRIC_COLUMNS = 5
LATENCY_KEY = "latency_ms"
CHART_THROTTLE_FROM = 1000  # trials: from here on the charts are re-plotted at most once per second
STAGE2_AVAILABLE = False  # stage-2 retraining of the top N: not in the engine yet (the action shows disabled)


def _duration(trial: dict[str, Any]) -> float | None:
    if trial["started_at"] is None:
        return None
    end = trial["finished_at"] if trial["status"] not in ("running", "queued") else time.time()
    return max(0.0, (end or time.time()) - trial["started_at"])


def _note(trial: dict[str, Any]) -> str:
    """The trials table's note: the failure reason and its message, on one line."""
    note = trial["reason"] or ""
    if trial["message"]:
        note = f"{note}: {trial['message']}" if note else trial["message"]
    return note.replace("\n", " ")


class TrialsModel:
    """A job's trials, read incrementally: each update reads new trials and the ones not finished yet.

    Everything a tick needs is kept up to date from the changed rows only: counts by status, the best
    rewards, the search curve's points (sorted by trial number), the succeeded trials not yet charted,
    and per column the sort values. Succeeded trials never change again (a resume requeues only queued,
    running and cancelled trials), which is what makes the best, the curve and the front incremental.
    """

    def __init__(self, job: dict[str, Any]) -> None:
        self.job_id = job["id"]
        self.metric = job["spec"].get("reward", {}).get("metric", "accuracy")
        self.rows: dict[int, dict[str, Any]] = {}  # trial id -> row (no architecture), in id (= number) order
        self.max_id = 0
        self.open_ids: set[int] = set()
        self.metric_keys: list[str] = []
        self.counts: dict[str, int] = dict.fromkeys(TRIAL_STATES, 0)
        self.best_max: float | None = None
        self.best_min: float | None = None
        self.curve_points: list[tuple[int, float]] = []  # (number, reward) of succeeded trials, sorted
        self.new_succeeded: list[dict[str, Any]] = []  # succeeded since the charts last took them
        self._formatted: dict[int, TableRow] = {}
        self._values: dict[str, dict[int, Any]] = {}  # column -> trial id -> sort value
        self.note_width = 0  # the longest note so far (the table's auto-width column)
        self.version = 0  # bumped when anything changed

    def update(self, store: Store) -> bool:
        fresh = trial_rows(store, self.job_id, self.max_id, sorted(self.open_ids))
        changed = False
        keys = set(self.metric_keys)
        for row in fresh:
            trial_id = row["id"]
            old = self.rows.get(trial_id)
            if old == row:
                continue
            changed = True
            self.rows[trial_id] = row
            self._formatted.pop(trial_id, None)
            for values in self._values.values():
                values.pop(trial_id, None)
            self.max_id = max(self.max_id, trial_id)
            if old is not None:
                self.counts[old["status"]] -= 1
            self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
            if row["status"] in FINISHED:
                self.open_ids.discard(trial_id)
            else:
                self.open_ids.add(trial_id)
            if row["status"] == "succeeded" and (old is None or old["status"] != "succeeded"):
                self._add_succeeded(row)
            if row["reason"] or row["message"]:
                self.note_width = max(self.note_width, len(_note(row)))
            keys.update(row["metrics"])
        if keys != set(self.metric_keys):
            self.metric_keys = self._order_keys(keys)
            self._formatted.clear()
        if changed:
            self.version += 1
        return changed

    def _add_succeeded(self, row: dict[str, Any]) -> None:
        self.new_succeeded.append(row)
        reward = row["reward"]
        if reward is None or reward != reward:
            return
        insort(self.curve_points, (row["number"], float(reward)))
        self.best_max = reward if self.best_max is None else max(self.best_max, reward)
        self.best_min = reward if self.best_min is None else min(self.best_min, reward)

    def take_new_succeeded(self) -> list[dict[str, Any]]:
        taken, self.new_succeeded = self.new_succeeded, []
        return taken

    def _order_keys(self, keys: set[str]) -> list[str]:
        first = [k for k in (self.metric, LATENCY_KEY) if k in keys]
        return (first + sorted(keys - set(first)))[:MAX_METRIC_COLUMNS]

    def columns(self) -> list[Column]:
        metric_columns = [Column(f"m:{k}", k, max(8, min(len(k), 12)), "right") for k in self.metric_keys]
        return [Column("number", "#", 5, "right"), Column("status", "status", 9),
                Column("reward", "reward", 7, "right"), *metric_columns,
                Column("time", "time", 7, "right"), Column("device", "device", 6),
                Column("note", "note", None, max_width=60)]

    def table_row(self, trial: dict[str, Any]) -> TableRow:
        cached = self._formatted.get(trial["id"])
        if cached is not None and trial["status"] != "running":
            return cached
        metrics = trial["metrics"]
        duration = _duration(trial)
        cells = (str(trial["number"]), trial["status"], fmt_number(trial["reward"]),
                 *(fmt_metric(metrics.get(k)) for k in self.metric_keys),
                 format_duration(duration) if duration is not None else "-", trial["device"] or "-",
                 _note(trial))
        row = TableRow(trial["id"], cells, STATUS_TONES.get(trial["status"]))
        self._formatted[trial["id"]] = row
        return row

    def sort_value(self, trial: dict[str, Any], column: str) -> Any:
        """A trial's value in a column, for sorting (None: empty, sorted last)."""
        if column == "number":
            return trial["number"]
        if column == "reward":
            reward = trial["reward"]
            return reward if reward is not None and reward == reward else None
        if column.startswith("m:"):
            value = trial["metrics"].get(column[2:])
            return value if isinstance(value, int | float) and value == value else None
        if column == "time":
            return _duration(trial)
        if column == "note":
            return trial["reason"] or trial["message"] or None
        return trial.get(column)

    def _column_values(self, column: str, ids: list[int]) -> dict[int, Any]:
        if column == "time":  # running trials' durations grow: never cached
            return {i: _duration(self.rows[i]) for i in ids}
        values = self._values.setdefault(column, {})
        rows = self.rows
        for i in ids:
            if i not in values:
                values[i] = self.sort_value(rows[i], column)
        return values

    def view(self, status: str, sort: str, reverse: bool) -> LazyRows:
        """The table's rows, formatted when drawn: filtered by status, sorted by a column (empty values last
        either way; ties in trial-number order)."""
        rows = self.rows
        ids = list(rows) if status == "all" else [i for i, t in rows.items() if t["status"] == status]
        if sort == "number":
            ordered = ids[::-1] if reverse else ids
        else:
            values = self._column_values(sort, ids)
            present = [i for i in ids if values[i] is not None]
            missing = [i for i in ids if values[i] is None]
            present.sort(key=values.__getitem__, reverse=reverse)
            ordered = present + missing
        return LazyRows(ordered, self._row_for_id)

    def _row_for_id(self, trial_id: int) -> TableRow:
        return self.table_row(self.rows[trial_id])

    def curve(self) -> tuple[list[float], list[float]]:
        return [float(n) for n, _ in self.curve_points], [r for _, r in self.curve_points]


class JobScreen(Screen):
    """One job: its spec, search curve, Pareto front, trials and events, refreshed live."""

    HELP = """\
## Job

- **Header**: the job's space and its size, strategy, budget (trials, parallel workers), reward,
  and its progress.
- **Search curve**: each finished trial's reward as a point (x: trial number), the running best as a
  line. **Pareto front**: accuracy (the reward metric) against measured latency, the front as a line;
  it shows when the job measures latency. On narrow terminals **v** switches between the two charts.
- **Trials**: sortable by any column (**o** next column, **O** reverse, or click a header), filtered by
  status (**f**). **enter** opens the highlighted trial.
- **Events**: the job's log (**l** switches between trials and events).
- **z** zooms: charts and table, table only, charts only.
- **e** exports the highlighted trial to ONNX, **b** the best K (into `./nasapp-exports/job-N/`).
- **t** stage-2 retraining of the top N: not available yet.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("s", "control('stop')", "Stop"),
        Binding("e", "export_selected", "Export"),
        Binding("b", "export_best", "Export best K"),
        Binding("t", "stage2", "Stage 2", tooltip="Stage-2 retraining of the top N: not available yet"),
        Binding("f", "cycle_filter", "Filter"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("l", "toggle_log", "Trials/Log"),
        Binding("v", "toggle_chart", "Curve/Pareto"),
        Binding("z", "zoom", "Zoom"),
    ]
    DEFAULT_CSS = """
    JobScreen #summary { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    JobScreen #charts { height: 45%; min-height: 7; }
    JobScreen #pareto { display: none; }
    JobScreen.-show-pareto #curve { display: none; }
    JobScreen.-show-pareto #pareto { display: block; }
    JobScreen.-wide #curve { display: block; }
    JobScreen.-wide #pareto { display: block; }
    JobScreen.-wide.-no-latency #pareto { display: none; }
    JobScreen #bar { height: 1; padding: 0 1; background: $panel; }
    JobScreen #switcher { height: 1fr; }
    JobScreen #trials { height: 1fr; }
    JobScreen #events { height: 1fr; overflow: auto; }
    JobScreen.-zoom-table #charts { display: none; }
    JobScreen.-zoom-charts #charts { height: 1fr; }
    JobScreen.-zoom-charts #bar { display: none; }
    JobScreen.-zoom-charts #switcher { display: none; }
    """
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: dict[str, Any] = {}
        self.model: TrialsModel | None = None
        self.filter = "all"
        self.sort = "number"
        self.reverse = False
        self.zoom = "split"
        self._version: int | None = None
        self._events_after = 0
        self._space_text = ""
        self._pareto_xs: list[float] = []
        self._pareto_ys: list[float] = []
        self._front: list[dict[str, Any]] = []
        self._charts_dirty = False
        self._charts_at = 0.0
        self.chart_interval_s = 1.0

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="summary")
        with Horizontal(id="charts"):
            yield SearchCurve(id="curve")
            yield ParetoChart(id="pareto")
        yield Static("", id="bar")
        with ContentSwitcher(initial="trials", id="switcher"):
            yield VirtualTable(id="trials")
            yield Log(id="events", max_lines=5000, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        job = self.nas.store.job(self.job_id)
        if job is None:
            self.notify(f"no job {self.job_id}", severity="error")
            return
        self.job = job
        self.title = f"Job {job['id']} {job['name']}"
        self.model = TrialsModel(job)
        self._space_text = space_summary(job)
        self.refresh_data(force=True)
        self.set_interval(self.nas.refresh_s, self.refresh_data)
        self.query_one("#trials", VirtualTable).focus()

    # ---- data --------------------------------------------------------------------------------------
    def refresh_data(self, force: bool = False) -> None:
        """One tick: when the store changed, read what changed; always refresh the header's clock."""
        if self.model is None:
            return
        store = self.nas.store
        version = data_version(store)
        if force or version != self._version:
            self._version = version
            self.job = store.job(self.job_id) or self.job
            if self.model.update(store) or force:
                self._refresh_table()
                self._charts_dirty = True
            self._refresh_events(store)
        # re-plotting costs tens of ms on big jobs (plotext's output is parsed back from ANSI): at most
        # once per chart_interval_s once a job has many trials
        now = time.monotonic()
        if self._charts_dirty and (force or len(self.model.rows) < CHART_THROTTLE_FROM
                                   or now - self._charts_at >= self.chart_interval_s):
            self._charts_dirty = False
            self._charts_at = now
            self._refresh_charts()
        self._refresh_summary()
        self._refresh_bar()

    def _refresh_summary(self) -> None:
        assert self.model is not None
        job = self.job
        spec = job["spec"]
        model = self.model
        line = job_line(job, {"counts": model.counts, "best_max": model.best_max, "best_min": model.best_min})
        search = spec.get("search", {})
        first = (f"[b]{escape(job['name'])}[/b] · {line.status} · strategy"
                 f" {spec.get('strategy', {}).get('name', '?')} · reward {escape(reward_summary(spec))}\n"
                 f"space {escape(self._space_text)} · budget {job['max_trials']} trials,"
                 f" parallel {search.get('parallel', '?')}")
        eta = format_duration(line.eta_s) if line.eta_s is not None else "-"
        second = (f"{line.done}/{line.total} trials · {line.running} running · {line.failed} failed ·"
                  f" best {fmt_number(line.best)} · time {format_duration(line.elapsed_s)} · ETA {eta}")
        if job.get("message"):
            second += f" · {escape(job['message'])}"
        self.query_one("#summary", Static).update(f"{first}\n{second}")

    def _refresh_bar(self) -> None:
        table = self.query_one("#trials", VirtualTable)
        showing = self.query_one(ContentSwitcher).current
        arrow = "▼" if self.reverse else "▲"
        sort_label = self._sort_label()
        if showing == "trials":
            text = (f"[b]Trials[/b] | Events (l) · filter [b]{self.filter}[/b] (f) · sort [b]{sort_label}"
                    f" {arrow}[/b] (o/O) · {table.row_count} shown")
        else:
            text = "Trials | [b]Events[/b] (l) · the job's log, newest last"
        self.query_one("#bar", Static).update(text)

    def _sort_label(self) -> str:
        for column in self.query_one("#trials", VirtualTable).columns:
            if column.key == self.sort:
                return column.label
        return self.sort

    def _refresh_table(self) -> None:
        assert self.model is not None
        table = self.query_one("#trials", VirtualTable)
        columns = self.model.columns()
        if [c.key for c in columns] != [c.key for c in table.columns]:
            table.set_columns(columns)
            if self.sort not in {c.key for c in columns}:
                self.sort, self.reverse = "number", False
        table.header_marks = {self.sort: "▼" if self.reverse else "▲"}
        rows = self.model.view(self.filter, self.sort, self.reverse)
        table.set_rows(rows, keys=rows.keys, widths={"note": self.model.note_width})

    def _refresh_charts(self) -> None:
        """The curve from the model's sorted points; the Pareto front from the new succeeded trials only
        (the front of a set plus new points is the front of its old front plus those points)."""
        assert self.model is not None
        spec = self.job["spec"]
        direction = spec.get("reward", {}).get("direction", "max")
        xs, ys = self.model.curve()
        self.query_one(SearchCurve).set_data(xs, ys, direction, label="reward")
        y_key = self.model.metric
        new = [t for t in self.model.take_new_succeeded()
               if metric_value(t, LATENCY_KEY) is not None and metric_value(t, y_key) is not None]
        if new:
            self._pareto_xs += [t["metrics"][LATENCY_KEY] for t in new]
            self._pareto_ys += [t["metrics"][y_key] for t in new]
            self._front = pareto_front(self._front + new, x=LATENCY_KEY, y=y_key, x_dir="min",
                                       y_dir=metric_direction(y_key, spec.get("reward")))
        has_latency = bool(self._pareto_xs)
        self.set_class(not has_latency, "-no-latency")
        pareto = self.query_one(ParetoChart)
        if not has_latency:
            if pareto.has_data or pareto.renders == 0:
                pareto.set_data(([], []), ([], []))
            return
        if new or not pareto.has_data:
            pareto.set_data((self._pareto_xs, self._pareto_ys),
                            ([t["metrics"][LATENCY_KEY] for t in self._front],
                             [t["metrics"][y_key] for t in self._front]), x_label=LATENCY_KEY, y_label=y_key)

    def _refresh_events(self, store: Store) -> None:
        rows = events_after(store, self.job_id, self._events_after)
        if not rows:
            return
        self._events_after = rows[-1]["id"]
        lines = []
        for event in rows:
            stamp = datetime.fromtimestamp(event["ts"]).strftime("%H:%M:%S")
            level = "" if event["level"] == "info" else f"{event['level'].upper()} "
            lines.append(f"{stamp} {level}{event['message']}")
        self.query_one("#events", Log).write_lines(lines)

    # ---- table interaction -----------------------------------------------------------------------------
    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        self.nas.open_trial(self.job_id, event.key)

    def on_virtual_table_header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        if event.column == self.sort:
            self.reverse = not self.reverse
        else:
            self.sort, self.reverse = event.column, False
        self._refresh_table()
        self._refresh_bar()

    def on_click(self, event: Any) -> None:
        if event.widget is not None and event.widget.id == "bar":
            self.action_toggle_log()

    def action_cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self._refresh_table()
        self._refresh_bar()

    def set_filter(self, status: str) -> None:
        self.filter = status
        self._refresh_table()
        self._refresh_bar()

    def set_sort(self, column: str, reverse: bool = False) -> None:
        self.sort, self.reverse = column, reverse
        self._refresh_table()
        self._refresh_bar()

    def action_cycle_sort(self) -> None:
        keys = [c.key for c in self.query_one("#trials", VirtualTable).columns]
        index = keys.index(self.sort) if self.sort in keys else -1
        self.set_sort(keys[(index + 1) % len(keys)], self.reverse)

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort, not self.reverse)

    def action_toggle_log(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "events" if switcher.current == "trials" else "trials"
        self.query_one(f"#{switcher.current}").focus()
        self._refresh_bar()

    def action_toggle_chart(self) -> None:
        self.toggle_class("-show-pareto")

    def action_zoom(self) -> None:
        order = ("split", "table", "charts")
        self.remove_class(f"-zoom-{self.zoom}")
        self.zoom = order[(order.index(self.zoom) + 1) % len(order)]
        self.add_class(f"-zoom-{self.zoom}")

    # ---- job control and export ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stage2":
            return True if STAGE2_AVAILABLE else None  # None: shown, but disabled
        return True

    def action_stage2(self) -> None:
        self.notify("stage-2 retraining of the top N is not available yet", severity="warning")

    def action_control(self, command: str) -> None:
        if command == "stop":
            def answered(yes: bool | None) -> None:
                if yes:
                    self._send("stop")

            self.app.push_screen(ConfirmScreen(f"Stop job {self.job_id} {self.job.get('name', '')}? Running"
                                               " trials are cancelled; resume (r) continues it later."),
                                 answered)
            return
        self._send(command)

    def _send(self, command: str) -> None:
        ok, message = control_job(self.nas, self.job_id, command)
        self.notify(message, severity="information" if ok else "warning")
        self.refresh_data(force=True)

    def action_export_selected(self) -> None:
        table = self.query_one("#trials", VirtualTable)
        if self.model is None or table.cursor_key is None:
            self.notify("no trial selected", severity="warning")
            return
        trial = self.model.rows[table.cursor_key]
        if trial["status"] != "succeeded":
            self.notify(f"trial {trial['number']} is {trial['status']}; only succeeded trials can be exported",
                        severity="warning")
            return
        self.run_export([trial["number"]])

    def action_export_best(self) -> None:
        def answered(value: str | None) -> None:
            if not value:
                return
            k = int(value)
            if k < 1:
                self.notify("give 1 or more", severity="warning")
                return
            direction = self.job["spec"].get("reward", {}).get("direction", "max")
            best = self.nas.store.best_trials(self.job_id, k, direction)
            if not best:
                self.notify("no succeeded trial to export yet", severity="warning")
                return
            self.run_export([t["number"] for t in best])

        self.app.push_screen(PromptScreen("Export the best K trials to ONNX: K =", "5", restrict=r"[0-9]*"),
                             answered)

    def run_export(self, numbers: list[int]) -> None:
        self.nas.export_trials(self.job_id, numbers)
