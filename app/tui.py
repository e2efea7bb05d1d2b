"""The terminal dashboard: `nasapp tui` (and `nasapp` with no command).

It only reads the store and writes nothing but rows in the commands table (pause, resume, stop), so it can
attach to searches started headless, be closed and reopened, and never disturbs a running job. New jobs and
resumes start as detached `nasapp` processes. One screen per module in app/screens/.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from nasapp.app.formatting import markup_safe
from nasapp.app.screens.analysis import AnalysisScreen
from nasapp.app.screens.compare import CompareScreen
from nasapp.app.screens.help import HelpScreen
from nasapp.app.screens.job import JobScreen
from nasapp.app.screens.jobs import JobsScreen
from nasapp.app.screens.new_job import NewJobScreen
from nasapp.app.screens.proxy import ProxyScreen
from nasapp.app.screens.space import SpaceScreen
from nasapp.app.screens.trial import TrialScreen
from nasapp.engine.execution.launch import tail_lines
from nasapp.store import Store

REFRESH_S = 0.5  # the live views' tick (the issue asks for <= 1 s)


class NasApp(App):
    """The nasapp dashboard over one store."""

    TITLE = "nasapp"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", show=False),
        Binding("q", "quit", "Quit", show=False),
        Binding("n", "new_job", "New job", show=False),
        Binding("ctrl+j", "jobs", "Jobs", show=False),
    ]
    CSS = """
    Screen { background: $surface; }
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None, refresh_s: float = REFRESH_S,
                 export_root: Path | None = None, new_job_dirs: list[Path] | None = None) -> None:
        super().__init__()
        self.store = Store(db_path)
        self.refresh_s = refresh_s
        self.export_root = export_root or Path.cwd() / "nasapp-exports"
        self.new_job_dirs = new_job_dirs
        self.launched: list[tuple[subprocess.Popen, Path, str]] = []
        self.sub_title = str(self.store.path)

    def on_mount(self) -> None:
        self.push_screen(JobsScreen())
        self.set_interval(1.0, self._check_launched)

    def on_unmount(self) -> None:
        self.store.close()

    # ---- navigation ------------------------------------------------------------------------------------
    def open_job(self, job_id: int) -> None:
        self.push_screen(JobScreen(job_id))

    def open_trial(self, job_id: int, trial_id: int) -> None:
        self.push_screen(TrialScreen(job_id, trial_id))

    def open_analysis(self, job_id: int) -> None:
        self.push_screen(AnalysisScreen(job_id))

    def open_compare(self, job_id: int, trial_ids: list[int]) -> None:
        self.push_screen(CompareScreen(job_id, trial_ids))

    def open_space(self, job_id: int) -> None:
        self.push_screen(SpaceScreen(job_id))

    def action_jobs(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_proxy(self) -> None:
        if not isinstance(self.screen, ProxyScreen):
            self.push_screen(ProxyScreen())

    def action_new_job(self) -> None:
        if not isinstance(self.screen, NewJobScreen):
            self.push_screen(NewJobScreen(self.new_job_dirs))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # ---- the command palette -----------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Jobs screen", "Every job with its progress", self.action_jobs)
        yield SystemCommand("New job", "Pick a job file, adjust it, validate and launch", self.action_new_job)
        yield SystemCommand("Proxy tools", "The runs of proxy variance, select and search", self.action_proxy)
        yield SystemCommand("Help", "What this screen shows and its keys", self.action_help)
        for job in self.store.jobs()[-50:]:
            yield SystemCommand(f"Open job {job.id} {markup_safe(job.name)}", f"status {job.status}",
                                lambda job_id=job.id: self.open_job(job_id), discover=False)
            yield SystemCommand(f"Analyse job {job.id} {markup_safe(job.name)}",
                                "which decisions of its space mattered for the reward",
                                lambda job_id=job.id: self.open_analysis(job_id), discover=False)
        target = screen if not isinstance(screen, HelpScreen) else self.screen_stack[-2]
        seen: set[str] = set()
        for active in target.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.system or binding.action.startswith("app.") \
                    or binding.description in seen or binding.action in ("help", "quit", "new_job", "jobs", "proxy"):
                continue
            seen.add(binding.description)
            if active.enabled:
                yield SystemCommand(binding.description, f"key {self.get_key_display(binding)}",
                                    lambda node=active.node, action=binding.action: self._run_on(node, action))
            else:
                text = f"{binding.description}: not available now"
                yield SystemCommand(f"{binding.description} (not available now)", binding.tooltip or text,
                                    lambda text=text: self.notify(text, severity="warning"))

    def _run_on(self, node: object, action: str) -> None:
        self.call_later(self.run_action, action, node)

    # ---- detached processes --------------------------------------------------------------------------------
    def watch_launch(self, process: subprocess.Popen, log: Path, what: str) -> None:
        """Reap a launched runner, and say so when it ends early with an error."""
        self.launched.append((process, log, what))

    def _check_launched(self) -> None:
        for entry in list(self.launched):
            process, log, what = entry
            code = process.poll()
            if code is None:
                continue
            self.launched.remove(entry)
            if code not in (0, 130):
                last = " | ".join(tail_lines(log, 3)) or "(no output)"
                self.notify(markup_safe(f"{what} ended with code {code}: {last}"), severity="error", timeout=15)

    # ---- export ------------------------------------------------------------------------------------------
    def export_trials(self, job_id: int, numbers: list[int]) -> None:
        out = self.export_root / f"job-{job_id}"
        listed = ", ".join(str(n) for n in numbers)
        self.notify(f"exporting trial{'s' if len(numbers) > 1 else ''} {listed} of job {job_id} to {out} …")
        self._export(job_id, numbers, out)

    @work(thread=True, group="export")
    def _export(self, job_id: int, numbers: list[int], out: Path) -> list:
        from nasapp.engine.errors import NasappError
        from nasapp.engine.results.export import export_trials

        store = Store(self.store.path)  # this thread's own connection
        try:
            job = store.job(job_id)
            if job is None:
                raise NasappError(f"no job {job_id}")
            results = export_trials(store, job, numbers, out)
        except NasappError as error:
            self.call_from_thread(self.notify, f"export failed: {error}", severity="error", timeout=10)
            return []
        except Exception as error:  # noqa: BLE001 - shown to the user, never a crash of the dashboard
            self.call_from_thread(self.notify, f"export failed: {type(error).__name__}: {error}",
                                  severity="error", timeout=10)
            return []
        finally:
            store.close()
        checks = "; ".join(f"trial {r.trial}: {r.check_text.split(' ')[0]}" for r in results)
        self.call_from_thread(self.notify, f"exported to {out}: {checks}", timeout=10)
        return results


def run_tui(db_path: str | os.PathLike[str] | None = None) -> None:
    """Open the dashboard on a store (the default store when None)."""
    NasApp(db_path).run()
