"""The proxy screen: the runs of the proxy-task tools (proxy variance, proxy select, proxy search) and, for
the highlighted one, its figures and a chart: the copies' validation curves, the selected models' accuracy
against latency, or each candidate proxy's rank correlation with full training over steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from nasapp.app.formatting import markup_safe as escape
from nasapp.app.widgets import Column, SeriesChart, TableRow, VirtualTable
from nasapp.engine.errors import NasappError
from nasapp.engine.jobs.spec import job_spec
from nasapp.store import Store
from nasapp.store.queries import data_version

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

COLUMNS = [Column("kind", "tool", 8), Column("id", "run", 4, "right"), Column("name", "name", None, max_width=30),
           Column("status", "status", 9)]


class ProxyScreen(Screen):
    """Every proxy-tool run in the store; the highlighted one's figures and chart, refreshed live."""

    TITLE = "Proxy tools"
    HELP = """\
## Proxy tools

The runs of `nasapp proxy variance`, `nasapp proxy select` and `nasapp proxy search` in this store, newest
first, refreshed live. Highlight one to see:

- **variance**: each copy's final score, the coefficient of variation and the advice; the chart draws
  every copy's validation curve (curves that cross a lot mean a noisy proxy).
- **select**: the rounds and the selected models; the chart plots each selected model's full-training
  accuracy against its latency (against its model number when the job measures no latency).
- **search**: every candidate proxy, where and why it stopped, its Kendall correlation with full training
  and its cost; the chart draws each candidate's correlation over steps.

Runs are started from the command line (see docs/jobs.md); **enter** on a variance run opens its job.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    ProxyScreen #runs { width: 50; height: 1fr; }
    ProxyScreen #right { width: 1fr; }
    ProxyScreen #detail { height: auto; max-height: 45%; padding: 0 1; overflow-y: auto; }
    ProxyScreen #chart { height: 1fr; }
    ProxyScreen #empty { padding: 1 2; display: none; }
    ProxyScreen.-empty #empty { display: block; }
    ProxyScreen.-empty #panes { display: none; }
    """

    def __init__(self) -> None:
        super().__init__(id="proxy-screen")
        self._version: int | None = None
        self._shown: Any = None

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No proxy-tool runs in this store yet: `nasapp proxy variance JOB.toml`, `nasapp proxy select"
                     " JOB.toml` and `nasapp proxy search JOB.toml --models RUN` make them.", id="empty")
        with Horizontal(id="panes"):
            yield VirtualTable(COLUMNS, id="runs")
            with Vertical(id="right"):
                yield Static("", id="detail")
                yield SeriesChart(id="chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_data(force=True)
        self.set_interval(self.nas.refresh_s, self.refresh_data)
        self.query_one(VirtualTable).focus()

    def refresh_data(self, force: bool = False) -> None:
        store = self.nas.store
        version = data_version(store)
        if not force and version == self._version:
            return
        self._version = version
        rows = [TableRow(key, cells) for key, cells in proxy_runs(store)]
        self.set_class(not rows, "-empty")
        table = self.query_one(VirtualTable)
        table.set_rows(rows)
        self._show(table.cursor_key, force=True)

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self._show(event.key)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        if event.key and event.key[0] == "variance":
            self.nas.open_job(event.key[1])

    def _show(self, key: Any, force: bool = False) -> None:
        if key is None or (key == self._shown and not force):
            return
        self._shown = key
        try:
            text, series, title, points = run_view(self.nas.store, key)
        except NasappError as error:  # a run whose jobs are not there yet (it is being made)
            text, series, title, points = str(error), {}, "", False
        self.query_one("#detail", Static).update(escape(text))
        self.query_one(SeriesChart).set_data(series, title, points=points, empty="nothing to plot yet")


def proxy_runs(store: Store) -> list[tuple[tuple[str, int], tuple[str, ...]]]:
    """(key, cells) of every proxy-tool run, newest first: variance runs are jobs, the others tool runs."""
    rows = []
    for job in store.jobs():
        if job.spec.get("strategy", {}).get("name") == "copies":
            rows.append((job.created_at, ("variance", job.id), ("variance", str(job.id), job.name, job.status)))
    for run in store.tool_runs():
        rows.append((run.created_at, (run.kind, run.id), (run.kind, str(run.id), run.name, run.status)))
    return [(key, cells) for _, key, cells in sorted(rows, key=lambda row: -row[0])]


def run_view(store: Store, key: tuple[str, int]) -> tuple[str, dict, str, bool]:
    """(text, chart series, chart title, points?) of one run."""
    kind, run_id = key
    if kind == "variance":
        return _variance_view(store, run_id)
    run = store.tool_run(run_id)
    if run is None:
        return f"no run {run_id}", {}, "", False
    return _select_view(store, run) if kind == "select" else _search_view(store, run)


def _variance_view(store: Store, job_id: int) -> tuple[str, dict, str, bool]:
    from nasapp.engine.results.variance import proxy_settings, variance_summary

    job = store.job(job_id)
    spec = job_spec(job)
    metric = spec.reward.metric
    s = variance_summary(store, job_id, metric, int(job.spec["strategy"].get("copies", 5)),
                         settings=proxy_settings(spec))
    lines = [f"proxy variance run {job_id} ({job.status}): {s['succeeded']} of {s['copies']} copies succeeded,"
             f" {s['failed']} failed, {s['resampled']} model(s) resampled",
             "final scores: " + ", ".join(f"{v:.4f}" for v in s["scores"])]
    if s["cv"] is not None:
        lines.append(f"coefficient of variation {s['cv']:.2%} (noisy above {s['max_cv']:.1%}); curves fall back by"
                     f" {s['curve_noise']:.2%} between evaluations")
    lines += [f"advice: {tip}" for tip in s["advice"]]
    series = {}
    for trial in store.trials(job_id, "succeeded"):
        reports = [(r["step"], r["values"].get(metric)) for r in store.metrics(trial.id)]
        series[f"copy {trial.number}"] = ([float(x) for x, _ in reports], [y for _, y in reports])
    return "\n".join(lines), series, f"{metric} by step, one curve per copy", False


def _select_view(store: Store, run: Any) -> tuple[str, dict, str, bool]:
    from nasapp.engine.results.selection import selection_summary

    s = selection_summary(store, run, run.settings["metric"])
    lines = [f"proxy select run {run.id} ({run.status}): {s['begin']} models sampled, {len(s['selected'])}"
             f" selected, full training {s['full_steps']} steps"]
    lines += [f"round {r['round']} (job {r['job']}, {r['steps']} steps = {r['fraction']}): {r['trained']} trained,"
              f" {r['failed']} failed, {len(r['dropped'])} dropped" for r in s["rounds"]]
    if s["message"]:
        lines.append(s["message"])
    selected = [m for m in s["models"] if m["status"] == "selected"]
    with_latency = bool(selected) and all(m["latency_ms"] is not None for m in selected)
    xs = [float(m["latency_ms"]) if with_latency else float(m["model"]) for m in selected]
    series = {"selected models": (xs, [m["full_score"] for m in selected])}
    axis = "latency (ms)" if with_latency else "model number"
    return "\n".join(lines), series, f"full-training {s['metric']} against {axis}", True


def _search_view(store: Store, run: Any) -> tuple[str, dict, str, bool]:
    from nasapp.engine.results.proxy_search import full_training, job_lines, search_summary

    full = full_training(store, store.tool_run(run.settings["select_run"]), run.settings["metric"])
    s = search_summary(store, run, full)
    lines = [f"proxy search run {run.id} ({run.status}) against the {s['models']} models of select run"
             f" {s['select_run']}: target Kendall tau >= {s['target_correlation']}, p <= {s['max_p_value']}"]
    for c in s["candidates"]:
        tau = "-" if c["kendall_tau"] is None else f"{c['kendall_tau']:.3f}"
        cost = "-" if c["cost_share"] is None else f"{c['cost_share']:.1%} of full training"
        lines.append(f"{c['name']}: {c['stopped'] or 'running'} at step {c['final_steps'] or '-'}, tau {tau},"
                     f" cost {cost}")
    best = next((c for c in s["candidates"] if c["name"] == s["best"]), None)
    if best is not None:
        lines.append(f"best: {best['name']} · " + " · ".join(job_lines(best, run.settings["spec"])))
    series = {c["name"]: ([float(p["step"]) for p in c["correlation"]], [p["kendall_tau"] for p in c["correlation"]])
              for c in s["candidates"]}
    return "\n".join(lines), series, "Kendall tau with full training by step", False
