"""The job screen's charts in a bounded number of points, however many trials a job has (no UI code here).

A chart cell shows one marker, so plotting 100,000 points draws nothing more than plotting a few thousand;
what must stay exact is what a reader takes from the chart: the best so far (every improvement is kept) and
the Pareto front (every front point is kept). Both structures take points one at a time (a live tick) or all
at once (`CurvePoints.extend`, `ParetoPoints.extend` when a screen opens).
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

from nasapp.engine.rewards.pareto import pareto_front

CURVE_BUCKETS = 512  # the search curve's scatter: at most twice this many points (lowest, highest per bucket)
PARETO_SAMPLE = 2000  # the Pareto chart's scatter: at most this many points besides the front


class CurvePoints:
    """The search curve: the exact best-so-far line, and the rewards binned by trial number.

    The best so far is kept as its improvements (trial number, reward), sorted by number, so a trial that
    finishes out of order still lands in its place. The scatter keeps, per bucket of `width` consecutive trial
    numbers, the lowest and the highest reward; when there are more than `buckets` buckets, neighbours merge
    and `width` doubles (min and max merge exactly), so the scatter never has more than 2 x `buckets` points.
    """

    def __init__(self, direction: str = "max", buckets: int = CURVE_BUCKETS) -> None:
        self.direction = direction
        self.buckets = buckets
        self.width = 1
        self.bins: dict[int, tuple[tuple[int, float], tuple[int, float]]] = {}  # bucket -> (lowest, highest)
        self.records: list[tuple[int, float]] = []  # the improvements, by trial number
        self.count = 0
        self.last_number: int | None = None

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def add(self, number: int, reward: float) -> None:
        self.count += 1
        self.last_number = number if self.last_number is None else max(self.last_number, number)
        self._add_record(number, reward)
        self._add_to_bin(number // self.width, (number, reward))

    def extend(self, numbers: Sequence[int], rewards: Sequence[float]) -> None:
        """Add many points; into an empty curve, points sorted by number are taken at once (numpy)."""
        numbers, rewards = np.asarray(numbers, dtype=np.int64), np.asarray(rewards, dtype=float)
        if self.count or np.any(numbers[1:] < numbers[:-1]):
            for number, reward in zip(numbers.tolist(), rewards.tolist(), strict=True):
                self.add(number, reward)
        elif len(numbers):
            self._load(numbers, rewards)

    def _load(self, numbers: np.ndarray, rewards: np.ndarray) -> None:
        self.count, self.last_number = len(numbers), int(numbers[-1])
        signed = rewards if self.direction == "max" else -rewards
        best_before = np.maximum.accumulate(np.concatenate(([-np.inf], signed)))[:-1]
        self.records = [(int(numbers[i]), float(rewards[i])) for i in np.flatnonzero(signed > best_before)]
        while int(numbers[-1]) // self.width - int(numbers[0]) // self.width >= self.buckets:
            self.width *= 2
        keys = numbers // self.width
        order = np.lexsort((rewards, keys))  # by bucket, then reward: a bucket's first is its lowest
        starts = np.flatnonzero(np.diff(keys[order], prepend=-1))
        ends = np.append(starts[1:], len(order)) - 1
        for low, high in zip(order[starts].tolist(), order[ends].tolist(), strict=True):
            self.bins[int(keys[low])] = ((int(numbers[low]), float(rewards[low])),
                                         (int(numbers[high]), float(rewards[high])))

    def _add_record(self, number: int, reward: float) -> None:
        records = self.records
        at = bisect_left(records, (number,))
        if at > 0 and not self._better(reward, records[at - 1][1]):
            return  # not better than the best before it
        end = at
        while end < len(records) and not self._better(records[end][1], reward):
            end += 1  # later records this one beats are no longer improvements
        records[at:end] = [(number, reward)]

    def _add_to_bin(self, key: int, point: tuple[int, float]) -> None:
        low, high = self.bins.get(key, (point, point))
        self.bins[key] = (min(low, point, key=_value), max(high, point, key=_value))
        if len(self.bins) > self.buckets:
            self._merge()

    def _merge(self) -> None:
        old, self.bins = self.bins, {}
        self.width *= 2
        for key, (low, high) in old.items():
            self._add_to_bin(key // 2, low)
            self._add_to_bin(key // 2, high)

    def scatter(self) -> tuple[list[float], list[float]]:
        """Per bucket its lowest and highest reward (one point when they are the same trial), by number."""
        points = sorted({p for pair in self.bins.values() for p in pair})
        return [float(n) for n, _ in points], [r for _, r in points]

    def best_line(self) -> tuple[list[float], list[float]]:
        """The best so far as a step line: a point where it improves, the step before it, and the last trial."""
        xs: list[float] = []
        ys: list[float] = []
        for number, reward in self.records:
            if ys:
                xs.append(float(number))
                ys.append(ys[-1])
            xs.append(float(number))
            ys.append(reward)
        if xs and self.last_number is not None and xs[-1] != self.last_number:
            xs.append(float(self.last_number))
            ys.append(ys[-1])
        return xs, ys


def _value(point: tuple[int, float]) -> float:
    return point[1]


class ParetoPoints:
    """The Pareto chart: every point of the front, and a uniform sample of at most `limit` other points.

    The front is `pareto_front` of the old front plus the new points (the front of a set plus new points is
    the front of its old front plus those points). The sample is a reservoir (seeded: the same trials draw
    the same sample), so every point seen so far had the same chance to be in it.
    """

    def __init__(self, x_dir: str = "min", y_dir: str = "max", limit: int = PARETO_SAMPLE) -> None:
        self.x_dir, self.y_dir, self.limit = x_dir, y_dir, limit
        self.front: list[dict] = []
        self.sample: list[tuple[float, float]] = []
        self.count = 0
        self._rng = random.Random(0)

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Add many points at once: the front from the few points no earlier point (by x) beats, found with numpy."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        if not len(xs):
            return
        keep = front_candidates(xs, ys, self.x_dir, self.y_dir)
        self._take_front(xs[keep].tolist(), ys[keep].tolist())
        if self.count == 0 and len(xs) > self.limit:  # a uniform sample at once, as the reservoir would hold
            self.count = len(xs)
            chosen = sorted(self._rng.sample(range(len(xs)), self.limit))
            self.sample = list(zip(xs[chosen].tolist(), ys[chosen].tolist(), strict=True))
            return
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            self._sample(x, y)

    def add(self, x: float, y: float) -> None:
        self._take_front([x], [y])
        self._sample(x, y)

    def _take_front(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        new = [{"metrics": {"x": x, "y": y}} for x, y in zip(xs, ys, strict=True)]
        self.front = pareto_front(self.front + new, x="x", y="y", x_dir=self.x_dir, y_dir=self.y_dir)

    def _sample(self, x: float, y: float) -> None:
        self.count += 1
        if len(self.sample) < self.limit:
            self.sample.append((x, y))
            return
        slot = self._rng.randrange(self.count)
        if slot < self.limit:
            self.sample[slot] = (x, y)

    def front_xy(self) -> tuple[list[float], list[float]]:
        return [p["metrics"]["x"] for p in self.front], [p["metrics"]["y"] for p in self.front]

    def points(self) -> tuple[list[float], list[float]]:
        """The sample and the front points not in it (the scatter): at most `limit` + the front's size."""
        sampled = set(self.sample)
        points = self.sample + [p for p in zip(*self.front_xy(), strict=True) if p not in sampled]
        return [x for x, _ in points], [y for _, y in points]


def front_candidates(xs: np.ndarray, ys: np.ndarray, x_dir: str, y_dir: str) -> np.ndarray:
    """Indices of the points that may be on the Pareto front: sorted by x (best first, then y best first), the
    points whose y is at least as good as every y before them. Every front point is among them (a point with
    a better y at a better or equal x dominates it), and they are few, so `pareto_front` decides the rest."""
    kx = xs if x_dir == "min" else -xs
    ky = ys if y_dir == "min" else -ys
    finite = np.flatnonzero(np.isfinite(kx) & np.isfinite(ky))
    if finite.size == 0:
        return finite
    order = finite[np.lexsort((ky[finite], kx[finite]))]
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], ky[order])))[:-1]
    return np.sort(order[ky[order] <= best_before])
