"""A JSON value (an architecture, an option) on one line, as the CLI, the dashboard and the HTML report show it."""

from __future__ import annotations

import json
from typing import Any


def inline_value(value: Any) -> str:
    """A JSON value on one line: dicts as `k=v` pairs, strings, booleans and null as JSON."""
    if isinstance(value, dict):
        return " ".join(f"{k}={inline_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(inline_value(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str | bool) or value is None else str(value)
