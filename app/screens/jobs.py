"""The jobs screen: every job in the store with its progress, refreshed live."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from nasapp.app.formatting import markup_safe
from nasapp.app.screens.common import STATUS_TONES, JobLine, control_job, job_line, not_running, space_summary
from nasapp.app.widgets import Column, ConfirmScreen, TableRow, VirtualTable
from nasapp.engine.jobs.spec import job_spec
from nasapp.store.leases import waiting_notes
from nasapp.store.queries import data_version, job_stats
from nasapp.store.records import Job

if TYPE_CHECKING:
    from nasapp.app.tui import NasApp

COLUMNS = [
    Column("id", "id", 3, "right"),
    Column("name", "name", None, max_width=28),
    Column("status", "status", 11),
    Column("trials", "trials", 9, "right"),
    Column("running", "run", 3, "right"),
    Column("failed", "fail", 4, "right"),
    Column("best", "best", 7, "right"),
    Column("elapsed", "elapsed", 7, "right"),
    Column("eta", "ETA", 7, "right"),
]
WIDE_COLUMNS = [  # shown when the terminal has room (120 columns or more)
    Column("strategy", "strategy", None, max_width=12),
    Column("space", "space", None, max_width=40),
    Column("created", "created", 16),
]
WIDE = 120


class JobsScreen(Screen):
    """Every job: status, trials done/total, running, failed, best reward, elapsed time and ETA."""

    TITLE = "Jobs"
    HELP = """\
## Jobs

Every job in the store, refreshed live. The figures come from the store only, so jobs started
headless (`nasapp run`) show here too, and closing the dashboard never touches a running search.

- **trials**: finished trials (succeeded, failed or pruned) of the job's budget
- **run** / **fail**: trials running now / failed so far
- **best**: the best reward so far (the job's reward direction)
- **ETA**: time left at the pace so far (running jobs only)
- **status** `interrupted`: the job was running but its runner is gone; **r** resumes it
- **status** `waiting`: the job runs but some of its slots wait for devices other jobs lease (the line
  below the table says which: "waiting: cpu cores 0–1 leased by job 7")
- **x** opens the proxy tools screen: the runs of `nasapp proxy variance`, `select` and `search`
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help"),
        Binding("enter", "open", "Open", show=False),
        Binding("n", "app.new_job", "New job"),
        Binding("x", "app.proxy", "Proxy tools"),
        Binding("p", "control('pause')", "Pause"),
        Binding("r", "control('resume')", "Resume"),
        Binding("s", "control('stop')", "Stop"),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    JobsScreen #jobs { height: 1fr; }
    JobsScreen #detail { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    JobsScreen #empty { padding: 1 2; display: none; }
    JobsScreen.-empty #empty { display: block; }
    JobsScreen.-empty #jobs { display: none; }
    """

    def __init__(self) -> None:
        super().__init__(id="jobs-screen")
        self.lines: dict[int, JobLine] = {}
        self._jobs: list[Job] = []
        self._stats: dict[int, dict] = {}
        self._waits: dict[int, tuple[str, str | None]] = {}  # job id -> its device-lease wait
        self._version: int | None = None
        self._static: dict[int, tuple[str, ...]] = {}  # job id -> cells that never change (wide layout)
        self._wide = False

    @property
    def nas(self) -> NasApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield VirtualTable(COLUMNS, id="jobs")
        yield Static("No jobs in this store yet. Press [b]n[/b] to start one (or run `nasapp run` in a"
                     " terminal: it shows up here).", id="empty")
        yield Static("", id="detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_data(force=True)
        self.set_interval(self.nas.refresh_s, self.refresh_data)
        self.query_one(VirtualTable).focus()

    def on_screen_resume(self) -> None:
        self.refresh_data(force=True)

    # ---- data --------------------------------------------------------------------------------------
    def refresh_data(self, force: bool = False) -> None:
        """Re-read the jobs when the store changed; recompute elapsed and ETA on every tick."""
        store = self.nas.store
        version = data_version(store)
        if force or version != self._version:
            self._version = version
            self._jobs = store.jobs()
            self._stats = job_stats(store)
            self._waits = waiting_notes(store)
        now = time.time()
        self.lines = {job.id: job_line(job, self._stats.get(job.id), now, self._waits.get(job.id))
                      for job in self._jobs}
        table = self.query_one(VirtualTable)
        wide = self.size.width >= WIDE
        if wide != self._wide:
            self._wide = wide
            table.set_columns(COLUMNS + WIDE_COLUMNS if wide else COLUMNS)
        jobs = {job.id: job for job in self._jobs}
        rows = [TableRow(line.id, line.cells() + (self._static_cells(jobs[line.id]) if wide else ()),
                         STATUS_TONES.get(line.status))
                for line in sorted(self.lines.values(), key=lambda line: -line.id)]
        self.set_class(not rows, "-empty")
        table.set_rows(rows)
        self._show_detail(table.cursor_key)

    def _static_cells(self, job: Job) -> tuple[str, ...]:
        cells = self._static.get(job.id)
        if cells is None:
            created = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")
            cells = (job_spec(job).strategy.name, space_summary(job), created)
            self._static[job.id] = cells
        return cells

    def on_resize(self) -> None:
        self.refresh_data()

    def _show_detail(self, job_id: int | None) -> None:
        line = self.lines.get(job_id) if job_id is not None else None
        detail = self.query_one("#detail", Static)
        if line is None:
            detail.update("")
            return
        text = f"job {line.id} {line.name}: {line.status}"
        if line.message:
            text += f" — {line.message}"
        if line.waiting:
            text += f" — waiting: {line.waiting}"
        detail.update(markup_safe(text))

    def on_virtual_table_highlighted(self, event: VirtualTable.Highlighted) -> None:
        self._show_detail(event.key)

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        self.nas.open_job(event.key)

    # ---- actions -------------------------------------------------------------------------------------
    @property
    def selected_job(self) -> int | None:
        return self.query_one(VirtualTable).cursor_key

    def action_open(self) -> None:
        if self.selected_job is not None:
            self.nas.open_job(self.selected_job)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "control":
            return self.selected_job is not None  # hidden while the store has no job
        return True

    def action_control(self, command: str) -> None:
        job_id = self.selected_job
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        if command == "stop":
            refusal = not_running(self.nas, job_id)
            if refusal:  # nothing to stop: say so at once instead of asking first
                self.notify(markup_safe(refusal), severity="warning")
                return
            line = self.lines.get(job_id)
            name = f"job {job_id} {markup_safe(line.name)}" if line else f"job {job_id}"

            def answered(yes: bool | None) -> None:
                if yes:
                    self._send(job_id, "stop")

            self.app.push_screen(ConfirmScreen(f"Stop {name}? Running trials are cancelled;"
                                               " resume (r) continues it later."), answered)
            return
        self._send(job_id, command)

    def _send(self, job_id: int, command: str) -> None:
        ok, message = control_job(self.nas, job_id, command)
        self.notify(markup_safe(message), severity="information" if ok else "warning")
        self.refresh_data(force=True)
