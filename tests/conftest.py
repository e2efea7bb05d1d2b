"""Fixtures only; shared helper functions live in helpers.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's ~/.nasapp from a test."""
    monkeypatch.setenv("NASAPP_HOME", str(tmp_path / "home"))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs `-n auto --dist loadgroup`), keep the tests of one module together
    on one worker when they share a module- or session-scoped fixture defined in that module (a store made by
    real runs, an exported model): split across workers, each would make it again. Every other test is handed
    out on its own, so the slow tests of one file run side by side."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        shared = any(definition.scope in ("module", "session") and definition.baseid == module
                     for definitions in info.name2fixturedefs.values() for definition in definitions)
        if shared:
            item.add_marker(pytest.mark.xdist_group(module))


def _leftover_processes(basetemp: str) -> list[str]:
    """Processes that a test started and nobody ended: they carry a NASAPP_HOME under this session's tmp."""
    import os
    from pathlib import Path

    marker = f"NASAPP_HOME={basetemp}".encode()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
                    left.append(f"{entry.name}: {command!r}")
        except OSError:
            continue
    return left


def pytest_sessionfinish(session, exitstatus):
    """After the whole suite, no process a test started may still run (Linux: read from /proc)."""
    import time
    from pathlib import Path

    if not Path("/proc/self/environ").exists() or hasattr(session.config, "workerinput"):
        return
    basetemp = str(session.config._tmp_path_factory.getbasetemp())
    deadline = time.monotonic() + 10  # processes killed at the very end may take a moment to go
    left = _leftover_processes(basetemp)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _leftover_processes(basetemp)
    if left:
        print("\nprocesses started by the tests are still running:\n  " + "\n  ".join(left))
        session.exitstatus = 1
