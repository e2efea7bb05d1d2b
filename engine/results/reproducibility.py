"""The reproducibility record of a job, after the NAS best-practice checklist (Lindauer & Hutter, 2020): the
seeds, the space's hash, the code's version, the libraries, the hardware and the search's total cost.

Everything here is cheap and never fails: a missing library, a folder that is not a git checkout, a machine
without /proc or without GPUs give "unknown" / "none", not an error. Nothing imports torch.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from nasapp.engine.analysis.sample import SAMPLE_SEED
from nasapp.engine.jobs.liveness import elapsed_s
from nasapp.engine.results.comparison import space_hash, strategy_of
from nasapp.store.aggregates import device_seconds
from nasapp.store.records import Job

LIBRARIES = ("torch", "numpy", "onnxruntime", "optuna", "scipy", "scikit-learn")
GIT_TIMEOUT_S = 5.0

Record = dict[str, dict[str, str]]  # section -> label -> value


def record(store: Any, job: Job) -> Record:
    return {"search": _search(job), "code": code_version(), "libraries": library_versions(),
            "hardware": hardware(store, job), "cost": cost(store, job)}


def _search(job: Job) -> dict[str, str]:
    space = job.spec.get("space", {})
    which = space.get("prebuilt") or space.get("ref") or "custom"
    return {"job seed": str(job.seed), "strategy": strategy_of(job), "space": str(which),
            "space hash (sha256 of its canonical JSON)": space_hash(job),
            "analysis seeds": f"sample {SAMPLE_SEED}, fANOVA 0", "budget": f"{job.max_trials:,} trials"}


def code_version() -> dict[str, str]:
    root = Path(__file__).resolve().parents[2]  # the checkout's root when nasapp runs from one
    return {"nasapp (that made this report)": _version("nasapp") or "unknown",
            "git commit": git_commit(root) or "not a git checkout"}


def git_commit(root: Path) -> str | None:
    """HEAD of the git checkout at ``root`` ("+ local changes" when tracked files differ); None when it is not
    one, or git is missing or slow."""
    if not (root / ".git").exists():
        return None
    try:
        head = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + (" + local changes" if dirty else "") if head else None


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                          check=True)
    return done.stdout.strip()


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    found.update((name, _version(name) or "not installed") for name in LIBRARIES)
    return found


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def hardware(store: Any, job: Job) -> dict[str, str]:
    gpus = gpu_models()
    used = sorted(device_seconds(store, job.id))
    return {"machine (that made this report)": f"{platform.system()} {platform.release()} {platform.machine()}",
            "CPU": cpu_model() or "unknown", "CPU cores": str(os.cpu_count() or "unknown"),
            "GPUs": ", ".join(gpus) if gpus else "none found",
            "devices the trials ran on": ", ".join(used) if used else "none"}


def cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or None


def gpu_models() -> list[str]:
    """The NVIDIA GPUs the driver lists (its /proc files: no CUDA context, no torch import)."""
    root = Path("/proc/driver/nvidia/gpus")
    names = []
    try:
        for info in sorted(root.glob("*/information")):
            for line in info.read_text(errors="replace").splitlines():
                if line.startswith("Model:"):
                    names.append(line.partition(":")[2].strip())
    except OSError:
        return names
    return names


def cost(store: Any, job: Job) -> dict[str, str]:
    per_device = device_seconds(store, job.id)
    gpu = sum(s for d, (_, s) in per_device.items() if d.startswith("cuda"))
    other = sum(s for d, (_, s) in per_device.items() if not d.startswith("cuda"))
    counts = {status: n for status, n in store.counts(job.id).items() if n}
    return {"wall time": duration(elapsed_s(job)),
            "GPU-hours (one GPU per trial)": f"{gpu / 3600:.4f}",
            "CPU-slot-hours (one slot per trial)": f"{other / 3600:.4f}",
            "trials by status": ", ".join(f"{status} {n:,}" for status, n in counts.items()) or "none"}


def duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)} h {int(minutes):02d} min {secs:04.1f} s" if hours else f"{int(minutes)} min {secs:04.1f} s"
