"""Pareto-aware selection for population strategies: non-dominated sorting and crowding distance (NSGA-II,
Deb et al. 2002). Points are tuples to maximise on every axis (see ``base.objective_values``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def front_ranks(points: list[Point]) -> list[int]:
    """Each point's front: 0 for the non-dominated ones, 1 for those only the first front dominates, ..."""
    dominated_by = [0] * len(points)
    beats: list[list[int]] = [[] for _ in points]
    for i, a in enumerate(points):
        for j in range(i + 1, len(points)):
            b = points[j]
            if dominates(a, b):
                beats[i].append(j)
                dominated_by[j] += 1
            elif dominates(b, a):
                beats[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * len(points)
    current = [i for i, count in enumerate(dominated_by) if count == 0]
    rank = 0
    while current:
        following = []
        for i in current:
            ranks[i] = rank
            for j in beats[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current, rank = following, rank + 1
    return ranks


def crowding(points: list[Point], ranks: list[int]) -> list[float]:
    """Each point's crowding distance within its front (infinite at a front's ends): larger = lonelier."""
    distance = [0.0] * len(points)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for axis in range(len(points[0])):
            ordered = sorted(members, key=lambda i: points[i][axis])
            low, high = points[ordered[0]][axis], points[ordered[-1]][axis]
            distance[ordered[0]] = distance[ordered[-1]] = math.inf
            if high == low:
                continue
            for before, at, after in zip(ordered, ordered[1:], ordered[2:], strict=False):
                distance[at] += (points[after][axis] - points[before][axis]) / (high - low)
    return distance


def pareto_order(points: list[Point]) -> list[tuple[int, float]]:
    """A sort key per point, smaller is better: (front, -crowding)."""
    ranks = front_ranks(points)
    spread = crowding(points, ranks)
    return [(rank, -distance) for rank, distance in zip(ranks, spread, strict=True)]
