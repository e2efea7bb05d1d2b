"""How close latency predictions came to the measurements (numpy-free: `nasapp ls` and `show` use it)."""

from __future__ import annotations

from collections.abc import Sequence


def within(predicted: Sequence[float], measured: Sequence[float], tol: float = 0.1) -> float:
    """The share of predictions within ``+-tol`` (relative) of their measurement; 0.0 for no pairs."""
    pairs = [(float(p), float(m)) for p, m in zip(predicted, measured, strict=True)]
    if not pairs:
        return 0.0
    return sum(1 for p, m in pairs if abs(p - m) <= tol * abs(m)) / len(pairs)
