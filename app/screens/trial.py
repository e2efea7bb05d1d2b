"""The trial screen: the architecture as a tree, all metrics, the learning curve, the failure and the log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Static, Tree
from textual.widgets.tree import TreeNode

from nasapp.app.formatting import inline_value
from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.progress import format_duration
from nasapp.app.screens.common import fmt_metric, fmt_number
from nasapp.app.trials_model import duration
from nasapp.app.widgets import LearningCurve
from nasapp.engine.execution.launch import tail_lines
from nasapp.engine.jobs.spec import job_spec
from nasapp.engine.results.export import why_not_exportable
from nasapp.store import Store
from nasapp.store.queries import data_version, metrics_after
from nasapp.store.records import Job, Trial

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

LOG_LINES = 400
BIG_TREE = 30  # nodes: above this, the items of lists start folded (their summary on one line)


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count(v) for v in value)
    return 1


def fill_tree(node: TreeNode, value: Any, big: bool) -> None:
    """Add `value` (an architecture: dicts, lists, scalars) under `node`, one node per key or element."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        label = f"[{key}]" if isinstance(key, int) else str(key)
        if isinstance(child, dict) and child:
            branch = node.add(f"{escape(label)}  [dim]{escape(inline_value(child))}[/dim]" if isinstance(key, int)
                              else escape(label), expand=not (big and isinstance(key, int)))
            fill_tree(branch, child, big)
        elif isinstance(child, list) and child and any(isinstance(c, dict | list) for c in child):
            branch = node.add(f"{escape(label)} ({len(child)})", expand=True)
            fill_tree(branch, child, big)
        else:
            text = "{}" if isinstance(child, dict) else inline_value(child)
            node.add_leaf(f"{escape(label)}: [b]{escape(text)}[/b]")


class TrialScreen(Screen):
    """One trial: architecture, metrics, learning curve, failure reason and the tail of its log."""

    HELP = """\
## Trial

- **Architecture**: the trial's architecture as a tree (enter or a click folds a branch).
- **Metrics**: every metric the trainer returned, the reward, timings and the device.
- **Learning curve**: the intermediate reports (`ctx.report(step, ...)`), the reward metric on the
  left axis and another metric (e.g. loss) on the right.
- **Failure**: the reason (error, crash, timeout, nan, oom, ...) and its message; for a trial the
  early-stopping rule pruned, the step it stopped at (it has no reward and cannot be exported).
- **Log**: the last lines of the trial's `trial.log` (live while the trial runs).
- **[** / **]** previous / next trial, **e** exports this trial to ONNX, **m** maximizes the focused
  panel.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("escape,backspace", "app.pop_screen", "Back"),
        Binding("left_square_bracket", "step(-1)", "Prev trial"),
        Binding("right_square_bracket", "step(1)", "Next trial"),
        Binding("e", "export", "Export"),
        Binding("m", "maximize_panel", "Maximize"),
    ]
    DEFAULT_CSS = """
    TrialScreen #title { height: auto; max-height: 2; padding: 0 1; background: $boost; }
    TrialScreen #failure { height: auto; max-height: 4; padding: 0 1; color: $text-error; display: none; }
    TrialScreen.-failed #failure { display: block; }
    TrialScreen.-pruned #failure { color: $text-muted; }
    TrialScreen #top { height: 1fr; }
    TrialScreen #bottom { height: 1fr; }
    TrialScreen #arch { width: 3fr; border: round $primary 50%; border-title-color: $text; }
    TrialScreen #metrics-box { width: 2fr; border: round $primary 50%; }
    TrialScreen #curve { width: 1fr; }
    TrialScreen #log { width: 1fr; border: round $primary 50%; overflow: auto; }
    TrialScreen.-narrow #top { layout: vertical; }
    TrialScreen.-narrow #arch { height: 1fr; }
    TrialScreen.-narrow #metrics-box { height: auto; max-height: 50%; }
    """
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (70, "-normal")]

    def __init__(self, job_id: int, trial_id: int) -> None:
        super().__init__()
        self.job_id = job_id
        self.trial_id = trial_id
        self.trial: Trial | None = None
        self.job: Job | None = None
        self.metric: str | None = None  # the reward metric: listed first, drawn on the left axis
        self._version: int | None = None
        self._metrics_after = 0
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._log_size = -1

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="title")
        yield Static("", id="failure")
        with Horizontal(id="top"):
            yield Tree("architecture", id="arch")
            with Vertical(id="metrics-box"):
                yield Static("", id="metrics")
        with Horizontal(id="bottom"):
            yield LearningCurve(id="curve")
            yield Log(id="log", max_lines=LOG_LINES, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#arch").border_title = "architecture"
        self.query_one("#metrics-box").border_title = "metrics"
        self.query_one("#log").border_title = "trial.log (tail)"
        self.load()
        self.set_interval(self.nas.refresh_s, self.refresh_data)
        self.query_one("#arch", Tree).focus()

    def load(self) -> None:
        """(Re)load everything for self.trial_id."""
        store = self.nas.store
        self.job = store.job(self.job_id)
        if self.job is not None:
            self.metric = job_spec(self.job).reward.metric
        trial = store.trial(self.trial_id)
        if trial is None:
            self.notify(f"no trial {self.trial_id}", severity="error")
            return
        self.trial = trial
        self.title = f"Job {self.job_id} · trial {trial.number}"
        self._metrics_after = 0
        self._series = {}
        self._log_size = -1
        self.query_one("#log", Log).clear()
        tree = self.query_one("#arch", Tree)
        tree.clear()
        tree.root.set_label(f"architecture of trial {trial.number}")
        arch = trial.arch
        if isinstance(arch, dict | list):
            fill_tree(tree.root, arch, _count(arch) > BIG_TREE)
        else:
            tree.root.add_leaf(escape(inline_value(arch)))
        tree.root.expand()
        self._version = None
        self.refresh_data(force=True)

    # ---- data --------------------------------------------------------------------------------------
    def refresh_data(self, force: bool = False) -> None:
        if self.trial is None:
            return
        store = self.nas.store
        version = data_version(store)
        if force or version != self._version:
            self._version = version
            if not force:
                self.trial = store.trial(self.trial_id) or self.trial
            self._refresh_text()
            self._refresh_curve(store)
        self._refresh_log()

    def _refresh_text(self) -> None:
        t = self.trial
        assert t is not None
        seconds = duration(t)
        name = self.job.name if self.job is not None else ""
        self.query_one("#title", Static).update(
            f"[b]trial {t.number}[/b] of job {self.job_id} {escape(name)} · {t.status}"
            f" · reward {fmt_number(t.reward)} · {t.device or '-'} ·"
            f" {format_duration(seconds) if seconds is not None else '-'}"
            + (f" · attempt {t.attempts}" if t.attempts > 1 else ""))
        failed = t.status in ("failed", "cancelled", "pruned") and bool(t.reason or t.message)
        self.set_class(failed, "-failed")
        self.set_class(t.status == "pruned", "-pruned")  # stopped by early stopping: the search working, no error
        if failed:
            self.query_one("#failure", Static).update(
                f"[b]{t.status} ({escape(t.reason or '?')})[/b]: {escape(t.message or '')}")
        metrics = t.metrics
        names = sorted(metrics, key=lambda k: (k != self.metric, k))
        width = max([len(n) for n in names] + [6])
        lines = [f"{'reward'.ljust(width)}  [b]{fmt_number(t.reward)}[/b]"]
        lines += [f"{escape(name.ljust(width))}  {fmt_metric(metrics[name])}" for name in names]
        if not metrics:
            lines.append("[dim](no metrics" + (" yet)" if t.status in ("queued", "running") else ")") + "[/dim]")
        lines.append(f"[dim]{'attempts'.ljust(width)}  {t.attempts}\nfingerprint {t.fingerprint}[/dim]")
        self.query_one("#metrics", Static).update("\n".join(lines))

    def _refresh_curve(self, store: Store) -> None:
        rows = metrics_after(store, self.trial_id, self._metrics_after)
        if not rows and self._series:
            return
        for row in rows:
            self._metrics_after = max(self._metrics_after, row["id"])
            for name, value in row["values"].items():
                if isinstance(value, int | float):
                    xs, ys = self._series.setdefault(name, ([], []))
                    xs.append(float(row["step"]))
                    ys.append(float(value))
        ordered = dict(sorted(self._series.items(), key=lambda item: (item[0] != self.metric, item[0])))
        self.query_one(LearningCurve).set_data(ordered)

    def _refresh_log(self) -> None:
        if self.trial is None:
            return
        path = self.nas.store.trial_dir(self.job_id, self.trial.number) / "trial.log"
        try:
            size = path.stat().st_size
        except OSError:
            size = -2
        if size == self._log_size:
            return
        self._log_size = size
        log = self.query_one("#log", Log)
        log.clear()
        if size < 0:
            log.write_line(f"(no log yet: {path})")
            return
        log.write_lines(tail_lines(path, LOG_LINES))

    # ---- actions -------------------------------------------------------------------------------------
    def action_step(self, delta: int) -> None:
        if self.trial is None:
            return
        store = self.nas.store
        other = store.trial_by_number(self.job_id, self.trial.number + delta)
        if other is None:
            self.notify("no more trials that way", severity="warning")
            return
        self.trial_id = other.id
        self.load()

    def action_maximize_panel(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    def action_export(self) -> None:
        trial = self.trial
        if trial is None:
            return
        refusal = why_not_exportable(trial, self.job_id)
        if refusal:
            self.notify(escape(refusal), severity="warning")
            return
        self.nas.export_trials(self.job_id, [trial.number])
