from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TOY = FIXTURES / "toy.py"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's ~/.nasapp from a test."""
    monkeypatch.setenv("NASAPP_HOME", str(tmp_path / "home"))


def write_job(tmp_path: Path, body: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def toy_job(tmp_path: Path, *, trainer: str = "train", max_trials: int = 6, parallel: int = 2,
            strategy: str = "random", sleep: float = 0.0, extra: str = "",
            space: str = "space") -> Path:
    return write_job(tmp_path, f"""
        name = "toy"
        seed = 1
        [space]
        ref = "{TOY}:{space}"
        [trainer]
        ref = "{TOY}:{trainer}"
        options = {{ sleep = {sleep} }}
        [strategy]
        name = "{strategy}"
        population = 4
        sample_size = 2
        [search]
        max_trials = {max_trials}
        parallel = {parallel}
        devices = "cpu"
        trial_timeout_s = 30
        {extra}
    """)


def nasapp_cli(*args: str, check: bool = False, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `nasapp` console script."""
    exe = Path(sys.executable).parent / "nasapp"
    result = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **kwargs.pop("env", {})}, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"nasapp {args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
