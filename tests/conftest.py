"""Fixtures only; shared helper functions live in helpers.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Never touch the user's ~/.nasapp from a test."""
    monkeypatch.setenv("NASAPP_HOME", str(tmp_path / "home"))
