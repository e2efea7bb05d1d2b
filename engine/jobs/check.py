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


def estimate(trials: list[tuple[str | None, float]], stage_wall_s: float, slots: int, max_trials: int,
             devices_per_trial: float = 1.0, warm_workers: bool = True) -> dict[str, Any]:
    """The whole job's cost from its test stage's ``trials`` ((slot, seconds) in start order).

    A worker's first trial also pays for starting the worker (importing torch, loading the data), once per
    job: the mean trial time is taken over the other trials when there are any, and what the stage took beyond
    its waves of mean trials is the start-up, paid once. Wall time = start-up + waves x mean trial time.
    ``warm_workers`` False (a command trainer: a new process every trial): every trial counts."""
    if not trials:
        raise NasappError("the test stage finished no trial: nothing to estimate from")
    seen: set[str | None] = set()
    steady = []
    for slot, seconds in trials:
        if slot in seen or not warm_workers:
            steady.append(seconds)
        seen.add(slot)
    durations_s = [seconds for _, seconds in trials]
    mean = statistics.fmean(steady or durations_s)
    stage_trials = len(trials)
    startup = max(0.0, stage_wall_s - math.ceil(stage_trials / slots) * mean)
    wall = startup + math.ceil(max_trials / slots) * mean
    return {"mean_trial_s": round(mean, 2), "median_trial_s": round(statistics.median(durations_s), 2),
            "startup_s": round(startup, 1), "slots": slots, "max_trials": max_trials,
            "wall_s": round(wall, 1), "device_hours": round(max_trials * mean * devices_per_trial / 3600, 3)}
