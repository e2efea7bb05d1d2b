"""``nasapp check``: try a job before its real run, as managed NAS asks (check locally, run a small test stage,
estimate the cost of the whole search).

The pieces here are plain functions; app/check_command.py runs them in order and prints what they find.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from nasapp.engine.errors import NasappError

EXTREME_SAMPLES = 64  # architectures sampled to find the largest and the smallest by parameter count


@dataclass(frozen=True)
class Extremes:
    smallest: Any
    largest: Any
    smallest_params: int
    largest_params: int
    sampled: int


def extreme_archs(prebuilt: Any, input_shape: tuple[int, ...], num_classes: int, scale: dict[str, Any],
                  seed: int, samples: int = EXTREME_SAMPLES) -> Extremes:
    """The smallest and largest of ``samples`` sampled architectures by parameter count (built on the meta
    device: shapes only, no memory), plus the space's first and last choices everywhere when it has them."""
    import torch

    space = prebuilt.space
    candidates = [space.sample(seed * 1000 + i) for i in range(samples)]
    counted = []
    for arch in candidates:
        with torch.device("meta"):
            model = prebuilt.build(arch, input_shape, num_classes, scale)
        counted.append((sum(p.numel() for p in model.parameters()), arch))
    counted.sort(key=lambda pair: pair[0])
    return Extremes(counted[0][1], counted[-1][1], counted[0][0], counted[-1][0], samples)


def try_build(prebuilt: Any, arch: Any, data: Any, scale: dict[str, Any], batch_size: int, device: str
              ) -> dict[str, Any]:
    """Build ``arch`` for the job's data and run one training step on a batch of ``batch_size``: shape errors
    and running out of memory show here, before a search. Returns params and seconds; raises NasappError."""
    import time

    import torch

    started = time.perf_counter()
    try:
        model = prebuilt.build(arch, tuple(data.input_shape), int(data.num_classes), scale).to(device)
        x = torch.from_numpy(data.x_train[:batch_size]).float().to(device)
        y = torch.from_numpy(data.y_train[:batch_size]).long().to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0][:300]
        what = "runs out of memory" if "out of memory" in first.lower() else "fails"
        raise NasappError(f"a training step {what} on {device} with batch {batch_size}: {first}") from None
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {"params": sum(p.numel() for p in model.parameters()), "seconds": time.perf_counter() - started}


@dataclass(frozen=True)
class StageTrial:
    """One test-stage trial as the estimate reads it."""

    slot: str | None
    seconds: float  # how long it held its slot (see slot_seconds)
    # its time beyond its steps at its steady pace (the pace between its first and last reports): building,
    # warming up, exporting, measuring (None: fewer than two reports at different steps)
    outside_s: float | None = None
    params: float | None = None  # the model's parameter count, where the trainer reported it
    once: bool = False  # a trial the job runs once whatever its size ([search] baseline): not a sample of costs


def estimate(trials: list[StageTrial], stage_wall_s: float, slots: int, max_trials: int,
             devices_per_trial: float = 1.0, warm_workers: bool = True, random_start: int | None = None
             ) -> dict[str, Any]:
    """The whole job's cost from its test stage's ``trials`` (in start order). The job's first trials cost what
    the stage took (``stage_wall_s``: the workers' start-up, the latency service's, the baseline); the other
    trials run ``slots`` at a time at the stage's mean cost (see :func:`stage_costs`).

    ``random_start``: the trials the strategy proposes before outcomes steer it (None: they never do); the
    stage's trials are all from it. Steered trials move towards the better architectures, which in most spaces
    are the larger ones, so where the stage reports parameter counts a steered trial is costed as the mean of
    the stage's larger half by parameters (docs/BENCHMARKS.md has the misses each rule came from)."""
    if not trials:
        raise NasappError("the test stage finished no trial: nothing to estimate from")
    costs, sample, startup = stage_costs(trials, warm_workers)
    mean = statistics.fmean(costs[k] for k in sample)
    if startup is None:  # not measured: what the stage took beyond its waves of mean trials
        startup = max(0.0, stage_wall_s - math.ceil(len(trials) / slots) * mean)
    steered_mean = _larger_half_mean([(trials[k], costs[k]) for k in sample])
    staged = min(len(trials), max_trials)
    rest = max_trials - staged
    steered_from = None if random_start is None else random_start + sum(t.once for t in trials)
    steered = 0 if steered_from is None or steered_mean is None else min(rest, max_trials - max(steered_from, staged))
    rest_work = (rest - steered) * mean + steered * (steered_mean or 0.0)
    wall = stage_wall_s * staged / len(trials) + rest_work / slots
    trial_mean = (sum(costs[:staged]) + rest_work) / max_trials
    return {"mean_trial_s": round(trial_mean, 2), "stage_mean_s": round(mean, 2),
            "steered_trial_s": round(steered_mean, 2) if steered else None, "steered_trials": steered,
            "median_trial_s": round(statistics.median(t.seconds for t in trials), 2),
            "startup_s": round(startup, 1), "stage_wall_s": round(stage_wall_s, 1), "slots": slots,
            "max_trials": max_trials, "wall_s": round(wall, 1),
            "device_hours": round(max_trials * trial_mean * devices_per_trial / 3600, 3)}


def stage_costs(trials: list[StageTrial], warm_workers: bool) -> tuple[list[float], list[int], float | None]:
    """Each stage trial's cost, the indices of those that sample the space's costs, and the workers' start-up
    (None where it cannot be measured).

    A worker's first trial also pays for starting the worker (importing torch, loading the data, the first
    steps' warm-up, the first export). Where every trial reported at two steps or more, the start-up is how
    much more time the first trials spent beyond their steps at their steady pace than the others
    (``outside_s``); it is taken off them and they count: five trials are a small sample, and leaving out the
    first of each worker leaves out two of them. Otherwise the first trials are left out of the sample.
    ``warm_workers`` False (a command trainer: a new process every trial): every trial counts as it is. The
    baseline (``once``) is never a sample."""
    firsts = _first_of_each_slot(trials) if warm_workers else set()
    measured = bool(firsts) and all(t.outside_s is not None for t in trials)
    startup = _startup_from_outside(trials, firsts) if measured else None
    costs = [t.seconds - (startup if startup is not None and k in firsts else 0.0) for k, t in enumerate(trials)]
    sample = [k for k, t in enumerate(trials) if not t.once and (measured or k not in firsts)]
    sample = sample or [k for k, t in enumerate(trials) if not t.once] or list(range(len(trials)))
    return costs, sample, startup


def _first_of_each_slot(trials: list[StageTrial]) -> set[int]:
    seen: set[str | None] = set()
    firsts = set()
    for k, trial in enumerate(trials):
        if trial.slot not in seen:
            firsts.add(k)
        seen.add(trial.slot)
    return firsts


def _startup_from_outside(trials: list[StageTrial], firsts: set[int]) -> float:
    """A worker's start-up: the median time its first trial spent outside its steady steps, less the others'
    median (0 when every trial was some worker's first)."""
    outside = [float(t.outside_s) for t in trials]  # type: ignore[arg-type]
    rest = [outside[k] for k in range(len(trials)) if k not in firsts]
    return max(0.0, statistics.median(outside[k] for k in firsts) - statistics.median(rest)) if rest else 0.0


def outside_time(seconds: float, reports: list[tuple[int, float]]) -> float | None:
    """The part of a trial's ``seconds`` not spent on its steps at its steady pace, from its ``reports``
    ((step, time) in step order; the pace is the one between its first and last report): ``seconds`` less
    pace x the last report's step. None with fewer than two reports at different steps."""
    if len(reports) < 2 or reports[-1][0] <= reports[0][0]:
        return None
    (first_step, first_at), (last_step, last_at) = reports[0], reports[-1]
    return seconds - (last_at - first_at) / (last_step - first_step) * last_step


def _larger_half_mean(costed: list[tuple[StageTrial, float]]) -> float | None:
    """The mean cost of the trials with at least the median parameter count; None without parameter counts
    for every trial (a custom trainer that does not report ``params``) or with fewer than 3 trials."""
    if len(costed) < 3 or any(t.params is None for t, _ in costed):
        return None
    middle = statistics.median(float(t.params) for t, _ in costed)  # type: ignore[arg-type]
    return statistics.fmean(cost for t, cost in costed if float(t.params) >= middle)  # type: ignore[arg-type]


def slot_seconds(spans: list[tuple[str | None, float, float, float | None]]) -> list[float]:
    """How long each trial held its slot, from ``spans`` ((slot, started, ended, its last report's time or
    None), time.time() values): until the next trial on that slot started, at most until it ended. The runner
    frees a slot when the trainer returns; the latency measurement and waiting for the baseline's come after,
    off the slot, so a trial's own span overstates what it costs the job. A slot's last trial: its time to its
    last report plus the median time the others held their slot after their last report (its own span when
    that is unknown)."""
    held: list[float | None] = [None] * len(spans)
    by_slot: dict[str | None, list[int]] = {}
    for k in sorted(range(len(spans)), key=lambda k: spans[k][1]):
        by_slot.setdefault(spans[k][0], []).append(k)
    for order in by_slot.values():
        for k, after in zip(order, order[1:], strict=False):
            held[k] = min(spans[after][1], spans[k][2]) - spans[k][1]
    tails = [held[k] - (last - start) for k, (_, start, _, last) in enumerate(spans)  # type: ignore[operator]
             if held[k] is not None and last is not None]
    for k, (_, start, end, last) in enumerate(spans):
        if held[k] is None:
            held[k] = min(end, last + statistics.median(tails)) - start if last is not None and tails else end - start
    return [float(h) for h in held]  # type: ignore[arg-type]
