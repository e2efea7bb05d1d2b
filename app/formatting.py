"""Plain-text renderings shared by the CLI commands, and the escaping of user strings for the CLI and the TUI.

Every string a user (or a user's trainer, space or data) supplied is shown as plain text: `plain` makes control
characters (ESC, which starts terminal escape sequences, C1 codes, bidi overrides, ...) visible as `\\x1b`-style
escapes, so nothing a job name, a message or an architecture holds reaches the terminal as a command; `markup_safe`
also escapes Rich/Textual markup for widgets that parse it. The CLI's consoles never parse markup or emoji codes.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from nasapp.engine.results.inline import inline_value  # noqa: F401  (app modules import it from here)

# Unicode categories shown escaped: control (Cc), format (Cf: bidi overrides, zero-width), line and paragraph
# separators (Zl, Zp) and lone surrogates (Cs)
_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs")


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def plain(text: Any, keep_newlines: bool = True) -> str:
    """`text` as a string that prints as itself: control and format characters become visible escapes
    (ESC -> `\\x1b`); newlines stay when `keep_newlines` (tabs always stay)."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to escape
        return text
    kept = ("\n", "\t") if keep_newlines else ("\t",)
    return "".join(_escape_char(c) if c not in kept and unicodedata.category(c) in _HIDDEN else c for c in text)


def markup_safe(text: Any, keep_newlines: bool = True) -> str:
    """`plain(text)` with Rich/Textual markup escaped: for a widget that parses markup (Static, Label, notify)."""
    from rich.markup import escape

    return escape(plain(text, keep_newlines))


def fmt_count(value: Any, unit_format: str = ".2f") -> str:
    """A count (MACs, parameters) with a k/M/G unit: "314.42 M" (``unit_format`` ".3g": "314 M"); "-" for None."""
    if value is None:
        return "-"
    value = float(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:{unit_format}} {unit}"
    return f"{value:.0f}"


def fmt_number(value: float | None, digits: int = 4) -> str:
    """A reward-like number: fixed decimals (large values in general format)."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.5g}"


def json_document(value: Any) -> str:
    """Standard JSON for `--json` outputs: NaN and infinities (a store written by an older nasapp may hold
    them) become null, never the non-standard `NaN` / `Infinity`."""
    return json.dumps(_finite(value), indent=2, allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def space_lines(name: str, description: str, space: Any, baselines: Any) -> list[str]:
    """A space as `nasapp spaces NAME` prints it: the name, the size, every dimension, the baselines."""
    exact = f" ({space.size():,})" if space.size() >= 10**7 else ""
    lines = [f"{name}: {description}", f"size: {space.size_text()}{exact}"]
    lines += ["  " + dim.describe() for dim in space.dims()]
    if baselines:
        lines.append(f"baselines (`[search] baseline = \"NAME\"` trains one as trial 0; `nasapp latency --space"
                     f" {name} --baseline NAME` times it): " + ", ".join(baselines))
    return lines
