"""Helpers shared by the tests: job files, the real `nasapp` console script, waiting on a condition.

Fixtures live in conftest.py; everything here is a plain function or constant (`from helpers import ...`;
pytest puts tests/ on sys.path because tests/ has a conftest.py and no __init__.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "toy.py"
NASAPP = Path(sys.executable).parent / "nasapp"

# For the subprocesses of a search whose trainer never uses torch (the toy trainers): its workers skip
# importing it. Pass it to one subprocess (`env=NO_TORCH`); never set it in this process's os.environ.
NO_TORCH = {"NASAPP_NO_TORCH": "1"}


def write_job(tmp_path: Path, body: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def toy_job(tmp_path: Path, *, trainer: str = "train", max_trials: int = 6, parallel: int = 2,
            strategy: str = "random", sleep: float = 0.0, extra: str = "",
            space: str = "space", options: str = "") -> Path:
    """A job on the toy space and a toy trainer; `options` adds keys to `[trainer] options` ("key = value")."""
    more = f", {options}" if options else ""
    return write_job(tmp_path, f"""
        name = "toy"
        seed = 1
        [space]
        ref = "{TOY}:{space}"
        [trainer]
        ref = "{TOY}:{trainer}"
        options = {{ sleep = {sleep}{more} }}
        [strategy]
        name = "{strategy}"
        {'population = 4' if strategy == 'evolution' else ''}
        {'sample_size = 2' if strategy == 'evolution' else ''}
        [search]
        max_trials = {max_trials}
        parallel = {parallel}
        devices = "cpu"
        trial_timeout_s = 30
        {extra}
    """)


def nasapp_cli(*args: str, check: bool = False, timeout: float = 240, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run the real `nasapp` console script to its end; `env` adds variables to this process's environment."""
    result = subprocess.run([str(NASAPP), *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **kwargs.pop("env", {})}, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"nasapp {args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def start_nasapp(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `nasapp ARGS` in its own session, so `stop_process` can end it with every process it started.

    Its stdout and stderr go to the file `log` (a pipe nobody reads could fill up and stall it).
    """
    with open(log, "w") as out:
        return subprocess.Popen([str(NASAPP), *args], stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **(env or {})}, start_new_session=True)


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL a process we started, by its PID, if it is still running, and reap it.

    When it leads its own process group (`start_nasapp` starts it in its own session) the whole group goes,
    with whatever it started. For a test's `finally`; a no-op for a process that already ended.
    """
    if proc.poll() is None:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=timeout)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 120.0, every: float = 0.05,
             proc: subprocess.Popen | None = None, log: Path | None = None) -> Any:
    """Poll `predicate` until it returns something true, and return that; fail after `timeout` seconds.

    With `proc`, fail as soon as that process has ended and the condition still does not hold (its `log`
    goes into the message): a condition its work did not bring about by then never holds.
    """
    deadline = time.monotonic() + timeout
    while True:
        ended = proc is not None and proc.poll() is not None
        value = predicate()
        if value:
            return value
        if ended:
            output = log.read_text() if log is not None and log.exists() else ""
            raise AssertionError(f"process {proc.pid} ended (code {proc.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
