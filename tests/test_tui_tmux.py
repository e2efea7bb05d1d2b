"""The real dashboard in a real terminal (tmux) beside a real search: keys in, screen text out."""

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
from pathlib import Path

import pytest
from conftest import toy_job

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")

NASAPP = Path(sys.executable).parent / "nasapp"


def tui_command(db: Path) -> list[str]:
    """`nasapp tui --db DB` once the CLI has that command; until then the same entry point, run_tui()."""
    from nasapp.app import cli

    names = {command.name or command.callback.__name__ for command in cli.app.registered_commands}
    if "tui" in names:
        return [str(NASAPP), "tui", "--db", str(db)]
    return [sys.executable, "-c", f"from nasapp.app.tui import run_tui; run_tui({str(db)!r})"]


class Tmux:
    """A private tmux server (its own socket) running one command in a 100x30 window."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.socket = name
        self.env = env
        self._tmux("new-session", "-d", "-s", "tui", "-x", "100", "-y", "30", shlex.join(command))

    def _tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              env=self.env, timeout=20)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "tui").stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: an escape followed at once by a key reads as alt+key
            self._tmux("send-keys", "-t", "tui", key)
            time.sleep(0.3)

    def alive(self) -> bool:
        return self._tmux("has-session", "-t", "tui").returncode == 0

    def kill(self) -> None:
        self._tmux("kill-server")

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.25)


def runner_pid(db: Path) -> int | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT runner_pid FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def test_the_real_tui_follows_a_real_search_and_closing_it_leaves_the_search_running(tmp_path):
    env = {**os.environ, "NASAPP_NO_TORCH": "1", "TERM": "xterm-256color"}
    db = tmp_path / "nasapp.db"
    job = toy_job(tmp_path, max_trials=40, parallel=1, sleep=0.5)  # about 20 s
    runner = subprocess.Popen([str(NASAPP), "run", str(job), "--db", str(db)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    tmux = None
    try:
        deadline = time.monotonic() + 30
        while runner_pid(db) is None:
            assert time.monotonic() < deadline, "the runner did not start"
            time.sleep(0.1)
        tmux = Tmux(f"nasapp-test-{os.getpid()}", tui_command(db), env)

        def done(text: str) -> int | None:
            found = re.search(r"\b(\d+)/40\b", text)
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
        text = tmux.wait_for(lambda t: "strategy random" in t and "budget 40 trials" in t, what="job screen")
        first = int(re.search(r"(\d+)/40 trials", text).group(1))
        tmux.wait_for(lambda t: (m := re.search(r"(\d+)/40 trials", t)) and int(m.group(1)) > first,
                      what="the job screen's count to grow")
        tmux.keys("Escape")
        tmux.wait_for(lambda t: "ETA" in t and "New job" in t, what="back on the jobs screen")
        tmux.keys("q")
        deadline = time.monotonic() + 15
        while tmux.alive():
            assert time.monotonic() < deadline, "q did not quit the dashboard"
            time.sleep(0.2)
        assert runner.poll() is None, "closing the dashboard must leave the search running"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT status FROM jobs").fetchone()[0] == "running"
            assert conn.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0  # it only read
    finally:
        if tmux is not None:
            tmux.kill()
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGTERM)
            runner.wait(timeout=30)
