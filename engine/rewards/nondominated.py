"""The non-dominated points of a set, every axis to be maximised: what the CLI's and the dashboard's Pareto
fronts and the multi-objective strategies' ranking share.

A point dominates another when it is at least as good on every axis and better on one; equal points do not
dominate each other (both stay on the front). Sorted best first lexicographically, a point can only be
dominated by one before it, which every method here relies on:

- two axes: a sweep keeping each point whose second value beats every one seen so far, O(n log n);
- three axes: the same sweep over a staircase of the kept points' last two values (Kung et al. 1975), each
  point found dominated or not by one binary search, O(n log n) comparisons;
- more axes: each point against the front kept so far, O(n x front size).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def nondominated(points: Sequence[Point]) -> list[int]:
    """The indices of the points no other point dominates, ascending."""
    if not points:
        return []
    order = sorted(range(len(points)), key=lambda i: tuple(points[i]), reverse=True)
    axes = len(points[order[0]])
    sweep = {1: _sweep_1d, 2: _sweep_2d, 3: _sweep_3d}.get(axes, _sweep_nd)
    return sorted(sweep(points, order))


def _sweep_1d(points: Sequence[Point], order: list[int]) -> list[int]:
    top = points[order[0]][0]
    return [i for i in order if points[i][0] == top]


def _sweep_2d(points: Sequence[Point], order: list[int]) -> list[int]:
    kept: list[int] = []
    best: Point | None = None  # the kept point with the highest second value (the last kept)
    for i in order:
        p = points[i]
        if best is None or p[1] > best[1] or tuple(p) == tuple(best):
            kept.append(i)
            best = p
    return kept


def _sweep_3d(points: Sequence[Point], order: list[int]) -> list[int]:
    # The staircase: kept points' (second, third) values with no kept point beating them on both, by second
    # value ascending (so third values descend). Among kept points whose second value is >= p's, the first
    # in the staircase has the highest third value: p is dominated when that one reaches p's third value.
    seconds: list[float] = []
    thirds: list[float] = []
    owners: list[int] = []
    kept: list[int] = []
    for i in order:
        p = points[i]
        at = bisect_left(seconds, p[1])
        if at < len(seconds) and thirds[at] >= p[2]:
            if tuple(points[owners[at]]) != tuple(p):
                continue
            kept.append(i)  # equal to a kept point: on the front too, the staircase already has its values
            continue
        kept.append(i)
        start, end = at, at  # the steps p beats on both values: just before `at` (third values <= p's) ...
        while start > 0 and thirds[start - 1] <= p[2]:
            start -= 1
        while end < len(seconds) and seconds[end] == p[1]:  # ... and any with p's second value (lower third)
            end += 1
        seconds[start:end] = [p[1]]
        thirds[start:end] = [p[2]]
        owners[start:end] = [i]
    return kept


def _sweep_nd(points: Sequence[Point], order: list[int]) -> list[int]:
    kept: list[int] = []
    for i in order:
        if not any(dominates(points[k], points[i]) for k in kept):
            kept.append(i)
    return kept


def front_ranks(points: Sequence[Point]) -> list[int]:
    """Each point's front: 0 for the non-dominated ones, 1 for those only the first front dominates, ..."""
    ranks = [0] * len(points)
    left = list(range(len(points)))
    rank = 0
    while left:
        front = set(left[j] for j in nondominated([points[i] for i in left]))
        for i in front:
            ranks[i] = rank
        left = [i for i in left if i not in front]
        rank += 1
    return ranks
