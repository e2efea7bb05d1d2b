"""Plain-text renderings shared by the CLI commands."""

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


def arch_lines(arch: Any) -> list[str]:
    """An architecture as short lines: one per top-level key, one per element of a list of dicts."""
    if not isinstance(arch, dict):
        return [json.dumps(arch)]
    lines = []
    for key, value in arch.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += [f"{key}[{i}]: {inline_value(v)}" for i, v in enumerate(value)]
        else:
            lines.append(f"{key}: {inline_value(value)}")
    return lines
