"""Plain-text renderings shared by the CLI commands."""

from __future__ import annotations

import json
from typing import Any


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_inline(v)}" for k, v in value.items())
    return json.dumps(value) if isinstance(value, str | list) else str(value)


def arch_lines(arch: Any) -> list[str]:
    """An architecture as short lines: one per top-level key, one per element of a list of dicts."""
    if not isinstance(arch, dict):
        return [json.dumps(arch)]
    lines = []
    for key, value in arch.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += [f"{key}[{i}]: {_inline(v)}" for i, v in enumerate(value)]
        else:
            lines.append(f"{key}: {_inline(value)}")
    return lines
