"""The dispatch bench's no-op search space and trainer (referenced by path from the bench's job).

The trainer returns at once, so a search with it measures nasapp's own per-trial overhead: ask, store
writes, the pipe to and from a worker, tell. ``optuna_objective`` is the same work for Optuna.
"""

from __future__ import annotations

from typing import Any

import nasapp as nas

OPS = ["conv", "dwconv", "mbconv", "skip"]

space = nas.space({
    "width": nas.integer(8, 512),
    "op": nas.choice(OPS),
    "lr": nas.floating(1e-4, 1e-1, log=True),
})


def score(width: int, op: str, lr: float) -> float:
    return 1.0 - abs(width - 200) / 512 + OPS.index(op) * 0.01 + lr


def train(arch: dict[str, Any], ctx: Any) -> dict[str, float]:
    return {"accuracy": score(arch["width"], arch["op"], arch["lr"])}


def optuna_objective(trial: Any) -> float:
    width = trial.suggest_int("width", 8, 512)
    op = trial.suggest_categorical("op", OPS)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    return score(width, op, lr)


def tune_trainable(config: dict[str, Any]) -> None:
    """The same work for Ray Tune: a function trainable that reports its one result."""
    from ray import tune

    tune.report({"accuracy": score(config["width"], config["op"], config["lr"])})
