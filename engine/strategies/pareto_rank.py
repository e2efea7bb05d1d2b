"""Pareto-aware selection for population strategies: non-dominated sorting and crowding distance (NSGA-II,
Deb et al. 2002). Points are tuples to maximise on every axis (see ``base.objective_values``). The fronts
come from engine/rewards/nondominated.py, which the CLI's and the dashboard's Pareto fronts use too."""

from __future__ import annotations

import math

from nasapp.engine.rewards.nondominated import Point, dominates, front_ranks

__all__ = ["Point", "crowding", "dominates", "front_ranks", "pareto_order"]


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
