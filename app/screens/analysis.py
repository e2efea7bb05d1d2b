"""The analysis screen: which decisions of a job's space mattered for its reward, over a bounded sample.

The figures are `nasapp analyze`'s (engine/analysis/: fANOVA importance, Holm-corrected significance, the
reward per choice, parallel-coordinates rows), computed in a thread (a second or more on a big job) over at
most DEFAULT_SAMPLE trials; the heading says how many of how many. A job the analysis cannot take yet (too
few trials, a reward that never varied) shows why instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, LoadingIndicator, Static

from nasapp.app.formatting import fmt_number, inline_value
from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.widgets import Chart, Column, InfoTable, TableRow, VirtualTable
from nasapp.engine.analysis.curves import ParallelRow, parallel_rows
from nasapp.engine.analysis.report import DEFAULT_SAMPLE, DecisionReport, JobAnalysis, analyze_sample
from nasapp.engine.errors import NasappError
from nasapp.store import Store

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

AXES = 12  # decisions on the parallel-coordinates chart (the most important ones)
LINES = 50  # trials drawn on it: the best HIGHLIGHTED and the rest spread over the ranking
HIGHLIGHTED = 10
BAR = 6  # characters of the longest importance bar
ZOOMS = ("split", "tables", "chart")


def heading(analysis: JobAnalysis) -> str:
    """The sample and the reward, one line: "2,000 of 95,027 succeeded trials (the 200 best, 1,800 at random)"."""
    better = "higher" if analysis.direction == "max" else "lower"
    if analysis.sampled < analysis.total:
        which = (f"{analysis.sampled:,} of {analysis.total:,} succeeded trials (the {analysis.best_kept:,} best,"
                 f" {analysis.sampled - analysis.best_kept:,} at random)")
    else:
        which = f"all {analysis.total:,} succeeded trials"
    return f"{which} · reward {analysis.metric}, {better} is better"


def decision_rows(analysis: JobAnalysis) -> list[TableRow]:
    """The ranking: importance as a bar and a share, p (Holm), significant or not."""
    top = max((d.importance for d in analysis.decisions), default=0.0) or 1.0
    rows = []
    for rank, report in enumerate(analysis.decisions, start=1):
        bar = "█" * max(0, round(report.importance / top * BAR))
        p = "<1e-300" if report.p_holm < 1e-300 else f"{report.p_holm:.2g}"
        rows.append(TableRow(rank - 1, (str(rank), report.path, f"{bar:<{BAR}} {report.importance:.3f}", p,
                                        "yes" if report.significant else "no"),
                             "good" if report.significant else "muted"))
    return rows


def choice_columns(decision: str) -> list[Column]:
    """The reward-per-choice table's columns; the first is named after the decision."""
    return [Column("value", decision, None, max_width=16), Column("n", "n", 5, "right"),
            Column("mean", "mean", 7, "right"), Column("median", "median", 7, "right"),
            Column("best", "best", 7, "right")]


def choice_rows(report: DecisionReport) -> list[TableRow]:
    return [TableRow(i, (c.value if isinstance(c.value, str) else inline_value(c.value), f"{c.count:,}",
                         fmt_number(c.mean), fmt_number(c.median), fmt_number(c.best)))
            for i, c in enumerate(report.choices)]


def chart_lines(rows: list[ParallelRow], limit: int = LINES) -> list[ParallelRow]:
    """At most `limit` of the rows (best first): the HIGHLIGHTED best, then the rest spread evenly over them."""
    if len(rows) <= limit:
        return rows
    rest = rows[HIGHLIGHTED:]
    step = len(rest) / (limit - HIGHLIGHTED)
    return rows[:HIGHLIGHTED] + [rest[int(i * step)] for i in range(limit - HIGHLIGHTED)]


class ParallelChart(Chart):
    """Parallel coordinates: one line per trial across the most important decisions (each on [0, 1]) and the
    reward (R, scaled so the best is at the top); the best trials in green, the others in blue."""

    empty_text = "parallel coordinates: no trials"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.paths: list[str] = []
        self.rows: list[ParallelRow] = []
        self.direction = "max"

    def set_data(self, rows: list[ParallelRow], paths: list[str], direction: str, sampled: int) -> None:
        self.rows, self.paths, self.direction = chart_lines(rows), paths[:AXES], direction
        self.has_data = bool(self.rows and self.paths)
        best = min(HIGHLIGHTED, len(self.rows))
        self.set_title(f"parallel coordinates · [green]{best} best[/] + {len(self.rows) - best} more of"
                       f" {sampled:,} · x: decision rank, R: reward")
        self.refresh()

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        rewards = [row.reward for row in self.rows]
        low, high = min(rewards), max(rewards)
        span = (high - low) or 1.0
        axes = list(range(len(self.paths) + 1))
        for index in range(len(self.rows) - 1, -1, -1):  # the best drawn last, on top
            row = self.rows[index]
            scaled = (row.reward - low) / span if self.direction == "max" else (high - row.reward) / span
            points = [(x, row.values.get(path)) for x, path in enumerate(self.paths)] + [(axes[-1], scaled)]
            xs = [x for x, y in points if y is not None]
            ys = [y for _, y in points if y is not None]
            plt.plot(xs, ys, marker="braille", color="green" if index < HIGHLIGHTED else "blue")
        plt.xticks(axes, [str(x + 1) for x in axes[:-1]] + ["R"])
        plt.ylim(0, 1)


class AnalysisScreen(Screen):
    """A job's analysis: the ranking of its decisions, the reward per choice, parallel coordinates."""

    HELP = """\
## Analysis

Which decisions of the job's space mattered for the reward (as `nasapp analyze`, docs/analysis.md),
over a bounded sample of the succeeded trials: the job's best tenth and the rest drawn at random
(at most 2,000; the heading says how many of how many).

- **Decisions**, most important first: the share of the reward's variance each explains (fANOVA) as a
  bar, and Kruskal-Wallis / Spearman p-values, Holm-corrected ("yes": significant below 0.05).
- **Reward per choice** of the highlighted decision: count, mean, median and best reward per value.
- **Parallel coordinates**: the best trials (green) and others (blue) across the most important decisions
  (x: their rank in the list) and the reward (R, best at the top).
- **u** runs the analysis again (a running job has more trials by now); **z** zooms.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("u", "run", "Update"),
        Binding("z", "zoom", "Zoom"),
    ]
    DEFAULT_CSS = """
    AnalysisScreen #heading { height: auto; padding: 0 1; background: $boost; }
    AnalysisScreen #message { height: auto; padding: 1 2; display: none; }
    AnalysisScreen #loading { height: 3; display: none; }
    AnalysisScreen.-loading #loading { display: block; }
    AnalysisScreen.-failed #message { display: block; }
    AnalysisScreen.-loading #body, AnalysisScreen.-failed #body { display: none; }
    AnalysisScreen #body { height: 1fr; }
    AnalysisScreen #tables { height: 1fr; min-height: 5; }
    AnalysisScreen #decisions { width: 1fr; }
    AnalysisScreen #choices { width: 1fr; border-left: solid $primary 50%; }
    AnalysisScreen #parallel { height: 50%; }
    AnalysisScreen.-zoom-tables #parallel { display: none; }
    AnalysisScreen.-zoom-chart #tables { display: none; }
    AnalysisScreen.-zoom-chart #parallel { height: 1fr; }
    """

    zoom: reactive[str] = reactive("split", init=False)

    def __init__(self, job_id: int, sample: int = DEFAULT_SAMPLE) -> None:
        super().__init__(classes="-loading")
        self.job_id = job_id
        self.sample = sample
        self.analysis: JobAnalysis | None = None

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="heading")
        yield LoadingIndicator(id="loading")
        yield Static("", id="message")
        with Vertical(id="body"):
            with Horizontal(id="tables"):
                yield InfoTable([Column("rank", "#", 2, "right"), Column("decision", "decision", None, max_width=24),
                                    Column("importance", "importance", BAR + 6), Column("p", "p Holm", 6, "right"),
                                    Column("significant", "sig", 3)], id="decisions")
                yield InfoTable(choice_columns("value"), id="choices")
            yield ParallelChart(id="parallel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        job = self.nas.store.job(self.job_id)
        self.title = f"Analysis of job {self.job_id}" + (f" {job.name}" if job is not None else "")
        self.action_run()

    def action_run(self) -> None:
        self.set_class(True, "-loading")
        self.set_class(False, "-failed")
        self.query_one("#heading", Static).update(f"analysing at most {self.sample:,} succeeded trials …")
        self._analyse()

    @work(thread=True, exclusive=True, group="analysis", exit_on_error=False)
    def _analyse(self) -> None:
        store = Store(self.nas.store.path)  # this thread's own connection
        try:
            job = store.job(self.job_id)
            if job is None:
                raise NasappError(f"no job {self.job_id}")
            analysis, table = analyze_sample(store, job, self.sample)
            rows = parallel_rows(table, analysis.direction)
            result: tuple[JobAnalysis, list[ParallelRow]] | str = (analysis, rows)
        except NasappError as error:
            result = str(error)
        except Exception as error:  # noqa: BLE001 - shown in the screen, never a crash of the dashboard
            result = f"the analysis failed: {type(error).__name__}: {error}"
        finally:
            store.close()
        try:
            self.app.call_from_thread(self._show, result)
        except RuntimeError:  # the dashboard closed meanwhile
            pass

    def _show(self, result: tuple[JobAnalysis, list[ParallelRow]] | str) -> None:
        self.set_class(False, "-loading")
        if isinstance(result, str):
            self.set_class(True, "-failed")
            self.query_one("#heading", Static).update(f"job {self.job_id}: no analysis yet")
            self.query_one("#message", Static).update(escape(result))
            return
        analysis, rows = result
        self.analysis = analysis
        self.query_one("#heading", Static).update(escape(heading(analysis)))
        decisions = self.query_one("#decisions", VirtualTable)
        decisions.set_rows(decision_rows(analysis))
        self._show_choices(decisions.cursor_key or 0)
        self.query_one(ParallelChart).set_data(rows, [d.path for d in analysis.decisions], analysis.direction,
                                               analysis.sampled)
        decisions.focus()

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        if event.table.id == "decisions" and event.key is not None:
            self._show_choices(event.key)

    def _show_choices(self, index: int) -> None:
        if self.analysis is None or not 0 <= index < len(self.analysis.decisions):
            return
        report = self.analysis.decisions[index]
        choices = self.query_one("#choices", VirtualTable)
        choices.set_columns(choice_columns(report.path))
        choices.set_rows(choice_rows(report))

    def action_zoom(self) -> None:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]

    def watch_zoom(self, old: str, new: str) -> None:
        self.remove_class(f"-zoom-{old}")
        self.add_class(f"-zoom-{new}")
