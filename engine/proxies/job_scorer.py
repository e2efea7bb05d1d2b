"""The proxy scorer a job's ``prescreen`` strategy uses: each architecture built with the job's prebuilt space
(at its proxy scale) and scored at initialisation on one fixed batch of the job's training data, on the CPU of
the runner process. Torch and the data are loaded on the first call, so a job without a pre-screen never
imports torch into its runner.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from nasapp.engine.errors import NasappError
from nasapp.engine.proxies import check_names
from nasapp.engine.strategies.prescreen import Scorer

BATCH_SIZE = 64


def job_scorer(spec: Any) -> Scorer:
    """``scorer(archs) -> list[float]`` for the job ``spec`` (a validated JobSpec) of a ``prescreen`` strategy."""
    proxy = spec.strategy.proxy
    try:
        check_names([proxy])
    except ValueError as error:  # check_names' message lists the known proxies
        raise NasappError(f"strategy.proxy: {error}") from None
    if not spec.space.prebuilt:
        raise NasappError("strategy.name = \"prescreen\" needs a prebuilt space: the proxy builds every candidate"
                          " with the space's model builder (a custom space's trainer builds its own models)")
    if spec.data is None:
        raise NasappError("strategy.name = \"prescreen\" needs a [data] table: the proxy runs on one batch of it")
    first_batch = functools.cache(lambda: _first_batch(spec))  # loaded on the first call, once

    def score(archs: list[Any]) -> list[float]:
        from nasapp.engine.proxies.scoring import score_archs

        inputs, targets, num_classes = first_batch()
        return score_archs(spec.space.prebuilt, archs, proxy, tuple(inputs.shape[1:]), num_classes, spec.seed,
                           batch=(inputs, targets), scale=spec.space.scale.model_dump())

    return score


def _first_batch(spec: Any) -> tuple[Any, Any, int]:
    """A fixed batch of the training split (rows drawn with the job's seed), as torch tensors."""
    import torch

    from nasapp.engine.data.loaders import load_dataset

    data = load_dataset(spec.data, spec.seed)
    rows = np.random.default_rng(spec.seed).choice(len(data.x_train), min(BATCH_SIZE, len(data.x_train)),
                                                   replace=False)
    return torch.from_numpy(data.x_train[rows]), torch.from_numpy(data.y_train[rows]).long(), data.num_classes
