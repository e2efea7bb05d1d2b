"""How nasapp starts its own helper processes (workers, the latency service)."""

from __future__ import annotations

import sys


def module_command(module: str) -> list[str]:
    """`python -P -m module` with this interpreter.

    -P keeps the working directory off sys.path: run from a clone of the repository, its top-level
    `nasapp/` folder (only the thin public face) would otherwise shadow the installed package.
    """
    return [sys.executable, "-P", "-m", module]
