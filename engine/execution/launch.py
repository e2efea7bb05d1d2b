"""Starting `nasapp` commands as detached processes: the dashboard's launches and resumes, and
`nasapp.run(wait=False)`. Each runs in its own session, so closing the dashboard, its terminal or a notebook's
kernel leaves the search running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nasapp.engine.execution.python_command import module_command
from nasapp.store import Store


def nasapp_command() -> list[str]:
    """How to start the `nasapp` CLI from here: the console script beside this interpreter, else -m."""
    script = Path(sys.executable).parent / "nasapp"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return module_command("nasapp.app.cli")


def launch_detached(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `nasapp ARGS` in its own session, its output going to `log_path`; ``env`` adds variables to this
    process's environment."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*nasapp_command(), *args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )


def launch_dir(store: Store) -> Path:
    """Where launched runners' output and the job files the dashboard writes go (beside the store's runs)."""
    return store.runs_dir / "launched"


def tail_lines(path: Path, lines: int = 200, max_bytes: int = 65536) -> list[str]:
    """The last `lines` lines of a text file (reads at most `max_bytes` from its end)."""
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - max_bytes))
            data = file.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace")
    out = text.splitlines()
    if size > max_bytes and out:
        out = out[1:]  # the first line is probably cut
    return out[-lines:]
