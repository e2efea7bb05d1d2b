"""The real dashboard in a real terminal (tmux) beside a real search: keys in, screen text out.

The search has a budget it never reaches here (the test ends it by PID, and the tmux server and the
dashboard too), NASAPP_NO_TORCH is given to the runner in its own environment, and every wait has a deadline.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from helpers import NASAPP, NO_TORCH, start_nasapp, stop_process, toy_job, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")

BUDGET = 9999  # never reached in the test; "N/9999" fits the jobs screen's trials column


def tui_command(db: Path) -> list[str]:
    """`nasapp tui --db DB` once the CLI has that command; until then the same entry point, run_tui()."""
    from nasapp.app import cli

    names = {command.name or command.callback.__name__ for command in cli.app.registered_commands}
    if "tui" in names:
        return [str(NASAPP), "tui", "--db", str(db)]
    return [sys.executable, "-c", f"from nasapp.app.tui import run_tui; run_tui({str(db)!r})"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runner_pid(db: Path) -> int | None:
    """The runner's PID once it has created and migrated the store and recorded itself (None before)."""
    if not db.exists():
        return None
    try:
        with closing(sqlite3.connect(db)) as conn:
            row = conn.execute("SELECT runner_pid FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # no jobs table yet: the runner has not migrated the new store
        return None
    return row[0] if row else None


class Tmux:
    """A private tmux server (its own socket) running one command in a 100x30 window."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.socket = name
        self.env = env
        self.pids: list[int] = []  # the tmux server and the dashboard in its pane: ended by PID in kill()
        self._tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "30", shlex.join(command))
        found = self._tmux("display-message", "-p", "-t", "tui", "#{pid} #{pane_pid}").stdout.split()
        self.pids = [int(pid) for pid in found if pid.isdigit()]

    def _tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              env=self.env, timeout=20)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "tui").stdout

    def keys(self, key: str) -> None:
        """One key (the caller then waits for what it does, so an escape is never read as alt+next key)."""
        self._tmux("send-keys", "-t", "tui", key)

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", "tui").returncode == 0

    def kill(self) -> None:
        """kill-server ends the server and the dashboard; what is still there after 10 s gets SIGKILL."""
        self._tmux("kill-server")
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in reversed(self.pids):  # the dashboard first, then the server
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.25)


def test_the_real_tui_follows_a_real_search_and_closing_it_leaves_the_search_running(tmp_path):
    db, log = tmp_path / "nasapp.db", tmp_path / "runner.log"
    job = toy_job(tmp_path, max_trials=BUDGET, parallel=1, sleep=0.3)
    runner = start_nasapp("run", str(job), "--db", str(db), log=log, env=NO_TORCH)
    tmux = None
    try:
        wait_for(lambda: runner_pid(db), "the runner to start", timeout=60, proc=runner, log=log)
        tmux = Tmux(f"nasapp-test-{os.getpid()}", tui_command(db), {**os.environ, "TERM": "xterm-256color"})

        def done(text: str) -> int | None:
            found = re.search(rf"\b(\d+)/{BUDGET}\b", text)
            return int(found.group(1)) if found else None

        seen: list[int] = []

        def grown(text: str) -> bool:
            count = done(text)
            if count is not None and (not seen or count > seen[-1]):
                seen.append(count)
            return len(seen) >= 3

        text = tmux.wait_for(grown, what="the trial count to grow twice on the jobs screen")
        assert "toy" in text and "running" in text
        assert seen == sorted(seen) and seen[-1] > seen[0]

        tmux.keys("Enter")  # the job screen
        text = tmux.wait_for(lambda t: "strategy random" in t and f"budget {BUDGET} trials" in t,
                             what="job screen")
        first = int(re.search(rf"(\d+)/{BUDGET} trials", text).group(1))
        tmux.wait_for(lambda t: (m := re.search(rf"(\d+)/{BUDGET} trials", t)) and int(m.group(1)) > first,
                      what="the job screen's count to grow")
        tmux.keys("Escape")
        tmux.wait_for(lambda t: "ETA" in t and "New job" in t, what="back on the jobs screen")
        tmux.keys("q")
        wait_for(lambda: not tmux.alive(), "q to quit the dashboard", timeout=30)
        assert runner.poll() is None, "closing the dashboard must leave the search running"
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT status FROM jobs").fetchone()[0] == "running"
            assert conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0  # it only read
    finally:
        if tmux is not None:
            tmux.kill()
        stop_process(runner)
