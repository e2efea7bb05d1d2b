"""Values that come from a trainer (its returned metrics, its reports, a metrics file, the worker's pipe) are
checked here, at the boundary, before the runner stores or uses them. A bad value fails its trial with a reason
that names the key; it never reaches SQLite, the reward code or a JSON output as something they cannot take.

Numbers are Python ints and floats, NumPy scalars and 0-d arrays, and 0-d tensors (anything with ``ndim == 0``
and ``item()``); booleans, strings, lists and the rest are not metrics.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from nasapp.engine.errors import TrialFailed

MAX_STEP = 2**53  # steps are stored as SQLite integers and shown as JSON numbers: keep them exact in both
MAX_METRICS = 1000
MAX_KEY_LENGTH = 200


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a numeric scalar (NaN and inf included), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # numpy 0-d arrays, torch 0-d tensors
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        return math.inf if value > 0 else -math.inf  # an int too large for a float


def describe(value: Any) -> str:
    shown = repr(value)
    return f"{type(value).__name__} {shown[:60]}{'…' if len(shown) > 60 else ''}"


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise TrialFailed("error", f"metric name {describe(key)} is not a string of 1 to {MAX_KEY_LENGTH} characters")
    return key


def checked_metrics(metrics: Any, *, what: str = "the trainer returned") -> dict[str, float]:
    """A trial's final metrics as finite floats; raises TrialFailed naming the first bad key.

    Reasons: ``error`` (not a dict, a key that is not a string, a value that is not a number), ``nan`` (a NaN),
    ``nonfinite`` (an infinity, e.g. a loss that overflowed).
    """
    if not isinstance(metrics, Mapping):
        raise TrialFailed("error", f"{what} {describe(metrics)}; a trainer returns a dict of metrics")
    if len(metrics) > MAX_METRICS:
        raise TrialFailed("error", f"{what} {len(metrics)} metrics; at most {MAX_METRICS} are kept")
    clean: dict[str, float] = {}
    for key, number in _numbers(metrics, f"{what} "):
        if math.isnan(number):
            raise TrialFailed("nan", f"{what} {key} = NaN")
        if math.isinf(number):
            raise TrialFailed("nonfinite", f"{what} {key} = {number}; metrics must be finite numbers")
        clean[key] = number
    return clean


def checked_step(step: Any) -> int:
    """An intermediate report's step: a whole number in [0, 2**53]."""
    number = as_number(step)
    if number is None or not math.isfinite(number) or number != int(number) or not 0 <= number <= MAX_STEP:
        raise TrialFailed("error", f"a report's step is {describe(step)}; steps are whole numbers from 0 to 2**53")
    return int(number)


def checked_report(step: Any, metrics: Any) -> tuple[int, dict[str, float]]:
    """An intermediate report: its step, and its metrics with non-finite values left out (a NaN loss mid-way
    is worth knowing about but cannot be stored as a number; the final metrics decide the trial)."""
    if not isinstance(metrics, Mapping):
        raise TrialFailed("error", f"a report's metrics are {describe(metrics)}, not a dict")
    clean = {key: number for key, number in _numbers(metrics, f"a report at step {step!r} has ")
             if math.isfinite(number)}
    return checked_step(step), clean


def _numbers(metrics: Mapping[Any, Any], prefix: str) -> list[tuple[str, float]]:
    """Each (key, value as a float); a bad key or a value that is not a number raises TrialFailed."""
    found = []
    for key, value in metrics.items():
        key = _key(key)
        number = as_number(value)
        if number is None:
            raise TrialFailed("error", f"{prefix}{key} = {describe(value)}, not a number")
        found.append((key, number))
    return found
