"""The compare screen: a few marked trials side by side (status, reward, metrics, every value of their
architectures; rows where they differ highlighted) and their learning curves on one chart.

It reads only the marked trials (at most MAX_COMPARED on the job screen) and their intermediate reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from nasapp.app.formatting import inline_value
from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.screens.common import fmt_metric, fmt_number
from nasapp.app.widgets import Column, InfoTable, SeriesChart, TableRow, VirtualTable
from nasapp.engine.jobs.spec import job_spec
from nasapp.store.queries import metrics_after
from nasapp.store.records import Trial

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

ZOOMS = ("split", "table", "chart")


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """An architecture's leaves by path: {"blocks[0].kernel": 3, "op": "b"} (empty containers as leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(flatten(child, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, child in enumerate(value):
            out.update(flatten(child, f"{path}[{i}]"))
        return out
    return {path or "(value)": value}


def compare_rows(trials: list[Trial], metric: str) -> list[TableRow]:
    """One row per field (status, reward, each metric, each architecture value), one cell per trial; rows where
    the trials differ are "active" (highlighted), the others muted."""
    metrics = sorted({k for t in trials for k in t.metrics}, key=lambda k: (k != metric, k))
    archs = [flatten(t.arch) for t in trials]
    paths = list(dict.fromkeys(p for arch in archs for p in arch))
    fields: list[tuple[str, list[str]]] = [("status", [t.status for t in trials]),
                                           ("reward", [fmt_number(t.reward) for t in trials])]
    fields += [(m, [fmt_metric(t.metrics.get(m)) for t in trials]) for m in metrics]
    fields += [(f"arch {p}", [inline_value(a[p]) if p in a else "-" for a in archs]) for p in paths]
    return [TableRow(name, (name, *cells), "active" if len(set(cells)) > 1 else "muted") for name, cells in fields]


class CompareScreen(Screen):
    """Marked trials side by side, and their learning curves on one chart."""

    HELP = """\
## Compare

The trials marked on the job screen (**space** there marks one), side by side: status, reward, every
metric and every value of their architectures. Rows where they differ are highlighted; rows where they
agree are dimmed. The chart draws each trial's learning curve (its intermediate reports of the reward's
metric) on one chart. **z** zooms.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("z", "zoom", "Zoom"),
    ]
    DEFAULT_CSS = """
    CompareScreen #note { height: 1; padding: 0 1; background: $boost; }
    CompareScreen #fields { height: 1fr; }
    CompareScreen #curves { height: 45%; }
    CompareScreen.-zoom-table #curves { display: none; }
    CompareScreen.-zoom-chart #fields { display: none; }
    CompareScreen.-zoom-chart #curves { height: 1fr; }
    """

    zoom: reactive[str] = reactive("split", init=False)

    def __init__(self, job_id: int, trial_ids: list[int]) -> None:
        super().__init__()
        self.job_id = job_id
        self.trial_ids = trial_ids

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="note")
        yield InfoTable(id="fields")
        yield SeriesChart(id="curves")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        store = self.nas.store
        job = store.job(self.job_id)
        trials = sorted(store.trials_among(self.job_id, "id", self.trial_ids), key=lambda trial: trial.number)
        metric = job_spec(job).reward.metric if job is not None else "accuracy"
        self.title = f"Job {self.job_id}: trials " + ", ".join(str(t.number) for t in trials)
        differ = compare_rows(trials, metric)
        table = self.query_one("#fields", VirtualTable)
        table.set_columns([Column("field", "field", None, max_width=28),
                           *(Column(str(t.number), f"#{t.number}", None, max_width=14) for t in trials)])
        table.set_rows(differ)
        changed = sum(row.tone == "active" for row in differ)
        self.query_one("#note", Static).update(escape(f"{len(trials)} trials · {changed} of {len(differ)} fields"
                                                      " differ (highlighted)"))
        series = {}
        for trial in trials:
            points = [(m["step"], m["values"].get(metric)) for m in metrics_after(store, trial.id)]
            points = [(s, v) for s, v in points if isinstance(v, int | float)]
            series[f"#{trial.number}"] = ([float(s) for s, _ in points], [float(v) for _, v in points])
        self.query_one(SeriesChart).set_data(series, f"{metric} by step",
                                             empty="no intermediate reports of the reward's metric")
        table.focus()

    def action_zoom(self) -> None:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]

    def watch_zoom(self, old: str, new: str) -> None:
        self.remove_class(f"-zoom-{old}")
        self.add_class(f"-zoom-{new}")
