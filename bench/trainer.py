"""Prebuilt classification trainer vs a minimal hand-written PyTorch loop: same model, data, steps.

    .venv/bin/python bench/trainer.py                  # CPU
    .venv/bin/python bench/trainer.py --device cuda --batch-size 512

Both sides do the same work, timed from model build to saved weights: put digits on the device, build
the same CNN from the same seed, run ``--steps`` SGD steps (momentum, weight decay, per-step cosine LR) on
seeded per-epoch permutations, evaluate once on the validation split and save the weights. The prebuilt
trainer evaluates only at the end (``eval_every`` > steps). On CUDA both use bf16 autocast and
channels-last, as the trainer does. The runs alternate (one warm-up each, then ``--rounds`` rounds of
prebuilt/hand in alternating order) so drift on a shared machine hits both. Steps/s come from each side's
fastest run (the one least disturbed by other processes); the ratio is the median over rounds of the
ratio within a round (the two runs of a round sit next to each other in time); the ratio of the fastest
runs and of median process CPU times are printed too. ``--threads`` defaults to 1: on a shared machine,
several OpenMP threads per process contending for cores make step times swing far more than any trainer
overhead does.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from nasapp.engine.data.loaders import Dataset, load_dataset
from nasapp.engine.execution.context import TrialContext
from nasapp.engine.trainers.classification import train

LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4


def build_cnn(arch: dict, input_shape: tuple[int, ...], num_classes: int, scale: dict) -> torch.nn.Module:
    """A small CNN (three 3x3 conv-BN-ReLU blocks, global pooling, linear head)."""
    width = int(arch["width"])
    layers: list[torch.nn.Module] = []
    channels = input_shape[0]
    for out in (width, 2 * width, 2 * width):
        layers += [torch.nn.Conv2d(channels, out, 3, padding=1, bias=False), torch.nn.BatchNorm2d(out)]
        layers.append(torch.nn.ReLU(inplace=True))
        channels = out
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, num_classes)]
    return torch.nn.Sequential(*layers)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_prebuilt(data: Dataset, args: argparse.Namespace, workdir: Path) -> float:
    ctx = TrialContext(
        trial_id=0,
        number=0,
        seed=args.seed,
        device=args.device,
        workdir=workdir / "prebuilt",
        proxy={"steps": args.steps, "batch_size": args.batch_size, "eval_every": args.steps + 1},
        data=data,
        build=build_cnn,
        scale={},
    )
    return train({"width": args.width}, ctx)["accuracy"]


def run_hand(data: Dataset, args: argparse.Namespace, workdir: Path) -> float:
    """The loop a person would write by hand for the same job."""
    device, steps, bs = args.device, args.steps, args.batch_size
    cuda = device.startswith("cuda")
    fmt = torch.channels_last if cuda else torch.contiguous_format
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    torch.manual_seed(args.seed)
    model = build_cnn({"width": args.width}, data.input_shape, data.num_classes, {})
    model = model.to(device=device, memory_format=fmt).train()
    x = torch.from_numpy(data.x_train).to(device).contiguous(memory_format=fmt)
    y = torch.from_numpy(data.y_train).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    gen = torch.Generator().manual_seed(args.seed)
    per_epoch = len(x) // bs
    for step in range(steps):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=gen).to(device)
        idx = perm[(step % per_epoch) * bs : (step % per_epoch + 1) * bs]
        with amp:
            loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad(), amp:
        xv = torch.from_numpy(data.x_val).to(device).contiguous(memory_format=fmt)
        yv = torch.from_numpy(data.y_val).to(device)
        accuracy = (model(xv).argmax(1) == yv).float().mean().item()
    (workdir / "hand").mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, workdir / "hand" / "model.pt")
    return accuracy


RUNNERS: dict[str, Callable[[Dataset, argparse.Namespace, Path], float]] = {
    "prebuilt": run_prebuilt,
    "hand": run_hand,
}


def timed(name: str, data: Dataset, args: argparse.Namespace, workdir: Path) -> tuple[float, float, float]:
    """(wall seconds, process CPU seconds, validation accuracy) of one run, model build to saved weights."""
    sync(args.device)
    wall, cpu = time.perf_counter(), time.process_time()
    accuracy = RUNNERS[name](data, args, workdir)
    sync(args.device)
    return time.perf_counter() - wall, time.process_time() - cpu, accuracy


def measure(data: Dataset, args: argparse.Namespace) -> dict[str, list[tuple[float, float, float]]]:
    runs: dict[str, list[tuple[float, float, float]]] = {"prebuilt": [], "hand": []}
    with tempfile.TemporaryDirectory() as tmp:
        warm_up = argparse.Namespace(**{**vars(args), "steps": 20})
        for name in RUNNERS:
            timed(name, data, warm_up, Path(tmp))
        for r in range(args.rounds):
            for name in ("prebuilt", "hand") if r % 2 == 0 else ("hand", "prebuilt"):
                runs[name].append(timed(name, data, args, Path(tmp)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=int, default=16, help="CNN width (channels of the first block)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench/trainer.py: --device cuda asked for but torch sees no CUDA device")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    data = load_dataset({"kind": "digits"}, seed=args.seed)
    runs = measure(data, args)

    best = {name: args.steps / min(r[0] for r in rs) for name, rs in runs.items()}
    median = {name: args.steps / statistics.median(r[0] for r in rs) for name, rs in runs.items()}
    cpu = {name: statistics.median(r[1] for r in rs) for name, rs in runs.items()}
    paired = [h[0] / p[0] for p, h in zip(runs["prebuilt"], runs["hand"], strict=True)]
    ratio = statistics.median(paired)
    print(f"trainer bench: {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, {platform.machine()}")
    print(f"digits CNN width {args.width}, batch {args.batch_size}, {args.steps} steps, {args.rounds} rounds")
    print(f"{'loop':<10}{'best steps/s':>14}{'median':>9}{'images/s':>10}  {'wall s per run':<32}{'acc':>8}")
    for name in ("prebuilt", "hand"):
        walls = " ".join(f"{r[0]:.2f}" for r in runs[name])
        print(f"{name:<10}{best[name]:>14.1f}{median[name]:>9.1f}{best[name] * args.batch_size:>10.0f}  "
              f"{walls:<32}{runs[name][-1][2]:>8.3f}")
    print(f"ratio prebuilt/hand per round: {' '.join(f'{r:.3f}' for r in paired)}")
    print(f"ratio prebuilt/hand: {ratio:.3f} (median of rounds; target >= 0.95); "
          f"{best['prebuilt'] / best['hand']:.3f} best runs, {cpu['hand'] / cpu['prebuilt']:.3f} by CPU time")
    figures = {
        "bench": "trainer",
        "device": args.device,
        "prebuilt_steps_per_s": round(best["prebuilt"], 2),
        "hand_steps_per_s": round(best["hand"], 2),
        "ratio": round(ratio, 3),
        "ratio_best": round(best["prebuilt"] / best["hand"], 3),
        "ratios_per_round": [round(r, 3) for r in paired],
        "ratio_cpu_time": round(cpu["hand"] / cpu["prebuilt"], 3),
        "prebuilt_images_per_s": round(best["prebuilt"] * args.batch_size, 1),
        "hand_images_per_s": round(best["hand"] * args.batch_size, 1),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "width": args.width,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "prebuilt_accuracy": round(runs["prebuilt"][-1][2], 4),
        "hand_accuracy": round(runs["hand"][-1][2], 4),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
