"""The job screen: the spec summary, the search curve, the Pareto front, the trials table and the event log.

The screen reads the store once per tick into a TrialsModel (app/trials_model.py) and hands what changed to
three panels: JobSummary (the header lines), ChartsPanel (search curve and Pareto front) and TrialsPanel (the
trials table and the event log behind one bar). What the user picks (filter, sort, reverse, trials or log,
curve or Pareto, zoom) are reactive attributes of the panel or screen they belong to; their watch_ methods
redraw.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Log, Static

from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.formatting import plain
from nasapp.app.progress import format_duration
from nasapp.app.screens.common import (
    control_job,
    fmt_number,
    job_line,
    not_running,
    reward_summary,
    space_summary,
)
from nasapp.app.trial_filter import Fields, FilterError, parse_filter
from nasapp.app.trials_model import FILTERS, LATENCY_KEY, TrialsModel
from nasapp.app.trials_window import TrialsWindow
from nasapp.app.widgets import (
    ChoiceScreen,
    Column,
    ConfirmScreen,
    ParetoChart,
    PromptScreen,
    SearchCurve,
    VirtualTable,
)
from nasapp.engine.analysis.decisions import decisions_of
from nasapp.engine.execution.launch import launch_detached, launch_dir
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.results.export import why_not_exportable
from nasapp.engine.results.stage2 import stage2_line
from nasapp.engine.rewards.pareto import metric_direction
from nasapp.engine.spaces import Space
from nasapp.store import Store
from nasapp.store.leases import job_wait
from nasapp.store.queries import Condition, data_version, events_after
from nasapp.store.records import Job, Trial

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

CHART_THROTTLE_FROM = 1000  # trials: from here on the charts are re-plotted at most once per second
MAX_COMPARED = 10  # marked trials the compare view takes
ZOOMS = ("split", "table", "charts")


def trial_columns(metric_keys: list[str]) -> list[Column]:
    """The trials table's columns, in TrialsModel.column_keys() order."""
    metric_columns = [Column(f"m:{k}", k, max(8, min(len(k), 12)), "right") for k in metric_keys]
    return [Column("number", "#", 5, "right"), Column("status", "status", 9),
            Column("reward", "reward", 7, "right"), *metric_columns,
            Column("time", "time", 7, "right"), Column("device", "device", 6),
            Column("note", "note", None, max_width=60)]


# ---- the panels ----------------------------------------------------------------------------------

class JobSummary(Static):
    """Two lines about the job: name, status, strategy, reward, space, budget; progress, best, time, ETA."""

    DEFAULT_CSS = """
    JobSummary { height: auto; max-height: 5; padding: 0 1; background: $boost; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._space: tuple[int, str] | None = None  # (job id, its space summary): computed once
        self.stage2: str | None = None  # the line on the job's stage 2 (set when the store changed)
        self.wait: tuple[str, str | None] | None = None  # the job's device-lease wait (set when the store changed)

    def show(self, job: Job, model: TrialsModel) -> None:
        if self._space is None or self._space[0] != job.id:
            self._space = (job.id, space_summary(job))
        spec = job_spec(job)
        line = job_line(job, model.stats(), wait=self.wait)
        first = (f"[b]{escape(job.name)}[/b] · {line.status} · strategy {spec.strategy.name}"
                 f" · reward {escape(reward_summary(spec))}\n"
                 f"space {escape(self._space[1])} · budget {job.max_trials} trials,"
                 f" parallel {spec.search.parallel}")
        eta = format_duration(line.eta_s) if line.eta_s is not None else "-"
        pruned = f" {line.pruned} pruned ·" if line.pruned else ""
        second = (f"{line.done}/{line.total} trials · {line.running} running · {line.failed} failed ·{pruned}"
                  f" best {fmt_number(line.best)} · time {format_duration(line.elapsed_s)} · ETA {eta}")
        if job.message:
            second += f" · {escape(job.message)}"
        if line.waiting:
            second += f" · waiting: {escape(line.waiting)}"
        third = f"\n{escape(self.stage2)}" if self.stage2 else ""
        self.update(f"{first}\n{second}{third}")


class ChartsPanel(Horizontal):
    """The search curve and the Pareto front, side by side when there is room, else one of them (v).

    Fed from a TrialsModel's bounded chart points (app/chart_points.py: the binned rewards and the exact best
    so far; a sample of the trials with every Pareto front point), so a plot costs the same at 1,000 and at
    100,000 trials. Re-plotting still costs tens of ms (plotext's output is parsed back from ANSI), so once a
    job has CHART_THROTTLE_FROM trials the charts are re-plotted at most once per `interval_s`.
    """

    DEFAULT_CSS = """
    ChartsPanel { height: 45%; min-height: 7; }
    ChartsPanel #pareto { display: none; }
    ChartsPanel.-show-pareto #curve { display: none; }
    ChartsPanel.-show-pareto #pareto { display: block; }
    """
    show_pareto: reactive[bool] = reactive(False, init=False)  # the narrow layout shows the Pareto chart
    has_latency: reactive[bool] = reactive(False, init=False)  # any trial with a measured latency yet

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-no-latency")
        self.interval_s = 1.0
        self._stale = False
        self._plotted_at = 0.0
        self._pareto_count = 0  # the points the Pareto chart was given last

    def compose(self) -> ComposeResult:
        yield SearchCurve(id="curve")
        yield ParetoChart(id="pareto")

    def watch_show_pareto(self, show: bool) -> None:
        self.set_class(show, "-show-pareto")

    def watch_has_latency(self, has: bool) -> None:
        self.set_class(not has, "-no-latency")

    def data_changed(self) -> None:
        """The model has new trials: re-plot at the next redraw()."""
        self._stale = True

    def redraw(self, model: TrialsModel, force: bool = False) -> None:
        """Re-plot when the data changed (throttled on big jobs unless forced)."""
        now = time.monotonic()
        if not self._stale or not (force or model.total < CHART_THROTTLE_FROM
                                   or now - self._plotted_at >= self.interval_s):
            return
        self._stale = False
        self._plotted_at = now
        self._plot(model)

    def _plot(self, model: TrialsModel) -> None:
        xs, ys = model.curve.scatter()
        self.query_one(SearchCurve).set_data(xs, ys, model.reward.direction, label="reward",
                                             best=model.curve.best_line())
        points = model.pareto
        self.has_latency = points.count > 0
        pareto = self.query_one(ParetoChart)
        if not self.has_latency:
            if pareto.has_data or pareto.renders == 0:
                pareto.set_data(([], []), ([], []))
            return
        if points.count != self._pareto_count or not pareto.has_data:
            self._pareto_count = points.count
            pareto.set_data(points.points(), points.front_xy(), x_label=LATENCY_KEY, y_label=model.metric,
                            total=points.count)


class EventLog(Log):
    """The job's log, newest last."""

    def add_events(self, rows: list[dict[str, Any]]) -> None:
        lines = []
        for event in rows:
            stamp = datetime.fromtimestamp(event["ts"]).strftime("%H:%M:%S")
            level = "" if event["level"] == "info" else f"{event['level'].upper()} "
            lines.append(f"{stamp} {level}{event['message']}")
        self.write_lines(lines)


class TrialsPanel(Vertical):
    """The trials table and the event log behind one bar (a click on the bar switches between them).

    The table shows the job's trials filtered by `filter` and sorted by `sort` (`reverse`) through a
    TrialsWindow (app/trials_window.py: the store filters and sorts, only the rows on screen are read);
    `showing` says which of "trials" and "events" is on screen. Setting any of them redraws (their watch_
    methods).
    """

    DEFAULT_CSS = """
    TrialsPanel { height: 1fr; }
    TrialsPanel #bar { height: 1; padding: 0 1; background: $panel; }
    TrialsPanel #switcher { height: 1fr; }
    TrialsPanel #trials { height: 1fr; }
    TrialsPanel #events { height: 1fr; overflow: auto; }
    """
    filter: reactive[str] = reactive("all", init=False)  # "all" or a trial status
    sort: reactive[str] = reactive("number", init=False)  # a column key
    reverse: reactive[bool] = reactive(False, init=False)
    showing: reactive[str] = reactive("trials", init=False)  # "trials" | "events"
    where: reactive[str] = reactive("", init=False)  # the filter's text ("accuracy > 0.9"): app/trial_filter.py

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model: TrialsModel | None = None  # set by the screen once it has read the job
        self.window: TrialsWindow | None = None
        self.conditions: tuple[Condition, ...] = ()  # `where`, read
        self.marked: list[int] = []  # trial ids the user marked (space), in marking order

    def compose(self) -> ComposeResult:
        yield Static("", id="bar")
        with ContentSwitcher(initial="trials", id="switcher"):
            yield VirtualTable(id="trials")
            yield EventLog(id="events", max_lines=5000, auto_scroll=True)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#trials", VirtualTable)

    @property
    def selected_trial(self) -> Trial | None:
        key = self.table.cursor_key
        return self.window.trial(key) if self.window is not None and key is not None else None

    # ---- what the user picks ---------------------------------------------------------------------------
    def watch_filter(self) -> None:
        self.refresh_rows(data_changed=False)

    def watch_sort(self) -> None:
        self.refresh_rows(data_changed=False)

    def watch_reverse(self) -> None:
        self.refresh_rows(data_changed=False)

    def set_where(self, text: str, fields: Fields) -> str | None:
        """Filter by `text`; the problem with it (one line) when it cannot be read, and the filter unchanged."""
        try:
            conditions = parse_filter(text, fields)
        except FilterError as error:
            return str(error)
        self.conditions = conditions
        if text.strip() == self.where:
            self.refresh_rows(data_changed=False)
        self.where = text.strip()
        return None

    def watch_where(self) -> None:
        self.refresh_rows(data_changed=False)

    def toggle_mark(self) -> int | None:
        """Mark or unmark the highlighted trial (then highlight the next one); the trial's id."""
        key = self.table.cursor_key
        if key is None:
            return None
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)
        self.table.marked = set(self.marked)
        self.table.refresh()
        self.table.action_cursor_down()
        self._refresh_bar()
        return key

    def watch_showing(self, showing: str) -> None:
        self.query_one(ContentSwitcher).current = showing
        self.query_one(f"#{showing}").focus()
        self._refresh_bar()

    def cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]

    def sort_by(self, column: str, reverse: bool = False) -> None:
        """Sort by `column` (one redraw, also when both the column and the direction change)."""
        if column == self.sort:
            self.reverse = reverse
        else:
            self.set_reactive(TrialsPanel.reverse, reverse)
            self.sort = column

    def best_first(self, column: str) -> bool:
        """The direction a column starts in: best first for the reward and the metrics (descending where larger
        is better: accuracy; ascending where smaller is: latency, loss), ascending for the rest."""
        if self.model is None:
            return False
        name = "reward" if column == "reward" else column[2:] if column.startswith("m:") else None
        return name is not None and metric_direction(name, self.model.reward) == "max"

    def cycle_sort(self) -> None:
        keys = [c.key for c in self.table.columns]
        index = keys.index(self.sort) if self.sort in keys else -1
        column = keys[(index + 1) % len(keys)]
        self.sort_by(column, self.best_first(column))

    def toggle_log(self) -> None:
        self.showing = "events" if self.showing == "trials" else "trials"

    def on_virtual_table_header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        self.sort_by(event.column, not self.reverse if event.column == self.sort else self.best_first(event.column))

    def on_click(self, event: events.Click) -> None:
        if event.widget is not None and event.widget.id == "bar":
            self.toggle_log()

    # ---- drawing ---------------------------------------------------------------------------------------
    def refresh_rows(self, data_changed: bool = True) -> None:
        """Show the job's trials as they are now (after the data changed, or the view did)."""
        model, window = self.model, self.window
        if model is None or window is None:
            return
        table = self.table
        if model.column_keys() != [c.key for c in table.columns]:
            table.set_columns(trial_columns(model.metric_keys))
            if self.sort not in model.column_keys():
                self.set_reactive(TrialsPanel.sort, "number")
                self.set_reactive(TrialsPanel.reverse, False)
        table.header_marks = {self.sort: "▼" if self.reverse else "▲"}
        window.show(self.filter, self.sort, self.reverse, data_changed, self.conditions)
        self._show_window()

    def catch_up(self) -> None:
        """A tick without new data: an id list the throttle held back is queried now if it is due."""
        if self.window is not None and self.window.catch_up():
            self._show_window()

    def _show_window(self) -> None:
        assert self.model is not None and self.window is not None
        self.table.set_rows(self.window, keys=self.window.ids, widths={"note": self.model.note_width})
        self._refresh_bar()

    def _refresh_bar(self) -> None:
        if self.showing == "trials":
            arrow = "▼" if self.reverse else "▲"
            shown = self.where if len(self.where) <= 24 else self.where[:23] + "…"
            where = f"[b]{escape(shown)}[/b]" if self.where else "no filter"
            marked = f" · {len(self.marked)} marked (m)" if self.marked else ""
            text = (f"[b]Trials[/b]|Events (l) · [b]{self.filter}[/b] (f) · {where} (/) · sort"
                    f" [b]{escape(self._sort_label())}{arrow}[/b] (o) · {self.table.row_count:,} shown{marked}")
        else:
            text = "Trials | [b]Events[/b] (l) · the job's log, newest last"
        self.query_one("#bar", Static).update(text)

    def _sort_label(self) -> str:
        for column in self.table.columns:
            if column.key == self.sort:
                return column.label
        return self.sort


# ---- the screen ------------------------------------------------------------------------------------

class JobScreen(Screen):
    """One job: its spec, search curve, Pareto front, trials and events, refreshed live."""

    HELP = """\
## Job

- **Header**: the job's space and its size, strategy, budget (trials, parallel workers), reward,
  and its progress.
- **Search curve**: each finished trial's reward as a point (x: trial number), the running best as a
  line. **Pareto front**: accuracy (the reward metric) against measured latency, the front as a line;
  it shows when the job measures latency. On narrow terminals **v** switches between the two charts.
- **Trials**: sortable by any column (**o** next column, best first for the reward and metrics; **O**
  reverse; or click a header), filtered by status (**f**). **enter** opens the highlighted trial.
- **Events**: the job's log (**l** switches between trials and events).
- **z** zooms: charts and table, table only, charts only.
- **e** exports the highlighted trial to ONNX, **b** the best K (into `./nasapp-exports/job-N/`).
- **t** stage 2: retrains the top K distinct models with full settings (`nasapp stage2 JOB --top K`, started
  in the background); the header then shows its job, progress and Kendall's rank correlation between the
  search's rewards and stage 2's.
- **/** filters the trials by any metric, the reward, the status, the trial number or a decision of the
  space: `accuracy > 0.9`, `latency_ms < 5 and op = b`, `status = failed`, `blocks[3].kernel = 5`
  (an empty filter shows every trial). **c** picks the table's metric columns.
- **space** marks the highlighted trial (again to unmark); **m** compares the marked trials (up to 10)
  side by side, their learning curves on one chart.
- **a** the analysis: which decisions of the space mattered for the reward, the reward per choice, and
  parallel coordinates, over a bounded sample of the trials. **d** the search space's dimensions.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        # The footer of an 80-column terminal holds the keys shown here; the trials bar names f, /, o and l,
        # and help (?) and the command palette (ctrl+p) list every key.
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("s", "control('stop')", "Stop"),
        Binding("a", "analysis", "Analysis"),
        Binding("z", "zoom", "Zoom"),
        Binding("e", "export_selected", "Export", show=False),
        Binding("b", "export_best", "Export best K", show=False),
        Binding("t", "stage2", "Stage 2", show=False,
                tooltip="Retrain the top K models with full settings (stage 2)"),
        Binding("f", "cycle_filter", "Status filter", show=False),
        Binding("slash", "filter_prompt", "Filter by value", show=False),
        Binding("c", "columns", "Metric columns", show=False),
        Binding("space", "mark", "Mark trial", show=False),
        Binding("m", "compare", "Compare marked", show=False),
        Binding("d", "space", "Search space", show=False),
        Binding("o", "cycle_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("l", "toggle_log", "Trials/Log", show=False),
        Binding("v", "toggle_chart", "Curve/Pareto", show=False),
    ]
    DEFAULT_CSS = """
    JobScreen.-wide ChartsPanel #curve { display: block; }
    JobScreen.-wide ChartsPanel #pareto { display: block; }
    JobScreen.-wide ChartsPanel.-no-latency #pareto { display: none; }
    JobScreen.-zoom-table ChartsPanel { display: none; }
    JobScreen.-zoom-charts ChartsPanel { height: 1fr; }
    JobScreen.-zoom-charts TrialsPanel { display: none; }
    """
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (120, "-wide")]

    zoom: reactive[str] = reactive("split", init=False)  # "split" | "table" (only) | "charts" (only)

    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.job: Job | None = None
        self.model: TrialsModel | None = None
        self.summary = JobSummary(id="summary")
        self.charts = ChartsPanel(id="charts")
        self.trials = TrialsPanel(id="trials-panel")
        self._version: int | None = None
        self._events_after = 0
        self._fields: Fields | None = None

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        self.job = self.nas.store.job(self.job_id)
        self.model = self.trials.model = TrialsModel(self.job) if self.job is not None else None
        if self.model is not None:
            self.trials.window = TrialsWindow(self.nas.store, self.model)
        yield Header()
        yield self.summary
        yield self.charts
        yield self.trials
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.job is None:
            self.notify(f"no job {self.job_id}", severity="error")
            return
        self.title = plain(f"Job {self.job.id} {self.job.name}", False)
        self.refresh_data(force=True)
        self.set_interval(self.nas.refresh_s, self.refresh_data)
        self.trials.table.focus()

    # ---- data --------------------------------------------------------------------------------------
    def refresh_data(self, force: bool = False) -> None:
        """One tick: when the store changed, read what changed; always refresh the header's clock."""
        if self.model is None or self.job is None:
            return
        store = self.nas.store
        version = data_version(store)
        if force or version != self._version:
            self._version = version
            self.job = store.job(self.job_id) or self.job
            self.summary.stage2 = stage2_line(store, self.job_id, job_spec(self.job).reward.direction)
            self.summary.wait = job_wait(store, self.job_id)
            if self.model.update(store) or force:
                self.trials.refresh_rows()
                self.charts.data_changed()
            self._read_events(store)
        else:
            self.trials.catch_up()
        self.charts.redraw(self.model, force)
        self.summary.show(self.job, self.model)

    def _read_events(self, store: Store) -> None:
        rows = events_after(store, self.job_id, self._events_after)
        if rows:
            self._events_after = rows[-1]["id"]
            self.query_one(EventLog).add_events(rows)

    # ---- what the keys do --------------------------------------------------------------------------
    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        self.nas.open_trial(self.job_id, event.key)

    def action_cycle_filter(self) -> None:
        self.trials.cycle_filter()

    def action_cycle_sort(self) -> None:
        self.trials.cycle_sort()

    def action_reverse_sort(self) -> None:
        self.trials.reverse = not self.trials.reverse

    def action_toggle_log(self) -> None:
        self.trials.toggle_log()

    def fields(self) -> Fields:
        """What the filter can name: every metric seen, the space's decisions (read once)."""
        assert self.model is not None and self.job is not None
        if self._fields is None:
            try:
                decisions = decisions_of(Space.from_json(self.job.space))
            except Exception:  # noqa: BLE001 - a space that does not load still filters by metrics
                decisions = []
            self._fields = Fields([], decisions)
        return Fields(self.model.all_keys(), self._fields.decisions)

    def action_filter_prompt(self) -> None:
        def answered(text: str | None) -> None:
            if text is None or self.model is None:
                return
            problem = self.trials.set_where(text, self.fields())
            if problem:
                self.notify(escape(problem), severity="warning", timeout=8)

        if self.model is None:
            return
        self.app.push_screen(PromptScreen("Filter, e.g. accuracy > 0.9 and op = b (empty: all trials):",
                                          self.trials.where), answered)

    def action_columns(self) -> None:
        def answered(keys: list[str] | None) -> None:
            if keys is not None and self.model is not None:
                self.model.choose_keys(keys)
                self.trials.refresh_rows(data_changed=False)

        if self.model is None:
            return
        keys = self.model.all_keys()
        if not keys:
            self.notify("no metrics reported yet", severity="warning")
            return
        self.app.push_screen(ChoiceScreen("The table's metric columns:", keys, self.model.metric_keys), answered)

    def action_mark(self) -> None:
        if self.trials.showing == "trials":
            self.trials.toggle_mark()

    def action_compare(self) -> None:
        marked = self.trials.marked
        if not marked:
            self.notify("mark trials with space first (up to 10), then m compares them", severity="warning")
            return
        if len(marked) > MAX_COMPARED:
            self.notify(f"comparing the first {MAX_COMPARED} of {len(marked)} marked trials", severity="warning")
        self.nas.open_compare(self.job_id, marked[:MAX_COMPARED])

    def action_analysis(self) -> None:
        self.nas.open_analysis(self.job_id)

    def action_space(self) -> None:
        self.nas.open_space(self.job_id)

    def action_toggle_chart(self) -> None:
        self.charts.show_pareto = not self.charts.show_pareto

    def action_zoom(self) -> None:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]

    def watch_zoom(self, old: str, new: str) -> None:
        self.remove_class(f"-zoom-{old}")
        self.add_class(f"-zoom-{new}")

    # ---- job control and export ------------------------------------------------------------------------
    def action_stage2(self) -> None:
        def answered(value: str | None) -> None:
            if not value or self.job is None:
                return
            if int(value) < 1:
                self.notify("give 1 or more", severity="warning")
                return
            log = launch_dir(self.nas.store) / f"stage2-job-{self.job_id}.log"
            process = launch_detached(["stage2", str(self.job_id), "--top", value, "--db",
                                       str(self.nas.store.path)], log)
            self.nas.watch_launch(process, log, f"stage 2 of job {self.job_id}")
            self.notify(escape(f"stage 2 of job {self.job_id} started (pid {process.pid}): its progress shows in"
                               f" this header and as job {self.job.name}-stage2. Output: {log}"), timeout=8)

        if self.job is None or not self.nas.store.best_trials(self.job_id, 1, job_spec(self.job).reward.direction):
            self.notify("no succeeded trial to retrain yet", severity="warning")
            return
        self.app.push_screen(PromptScreen("Stage 2: retrain the best K models with full settings: K =", "10",
                                          restrict=r"[0-9]*"), answered)

    def action_control(self, command: str) -> None:
        if command == "stop":
            refusal = not_running(self.nas, self.job_id)
            if refusal:  # nothing to stop: say so at once instead of asking first
                self.notify(escape(refusal), severity="warning")
                return

            def answered(yes: bool | None) -> None:
                if yes:
                    self._send("stop")

            name = self.job.name if self.job is not None else ""
            self.app.push_screen(ConfirmScreen(f"Stop job {self.job_id} {escape(name)}? Running trials are cancelled;"
                                               " resume (r) continues it later."), answered)
            return
        self._send(command)

    def _send(self, command: str) -> None:
        ok, message = control_job(self.nas, self.job_id, command)
        self.notify(escape(message), severity="information" if ok else "warning")
        self.refresh_data(force=True)

    def action_export_selected(self) -> None:
        trial = self.trials.selected_trial
        if trial is None:
            self.notify("no trial selected", severity="warning")
            return
        refusal = why_not_exportable(trial, self.job_id)
        if refusal:
            self.notify(escape(refusal), severity="warning")
            return
        self.run_export([trial.number])

    def action_export_best(self) -> None:
        def answered(value: str | None) -> None:
            if not value or self.job is None:
                return
            k = int(value)
            if k < 1:
                self.notify("give 1 or more", severity="warning")
                return
            best = self.nas.store.best_trials(self.job_id, k, job_spec(self.job).reward.direction)
            if not best:
                self.notify("no succeeded trial to export yet", severity="warning")
                return
            self.run_export([t.number for t in best])

        self.app.push_screen(PromptScreen("Export the best K trials to ONNX: K =", "5", restrict=r"[0-9]*"),
                             answered)

    def run_export(self, numbers: list[int]) -> None:
        self.nas.export_trials(self.job_id, numbers)
