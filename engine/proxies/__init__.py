"""Zero-cost proxies: scores of an untrained network at initialisation, from one batch or none.

``PROXIES`` is the registry (torch-free, so ``[trainer] zero_cost = [...]`` validates without torch); each
entry names where its function lives, ``"module:function"``, loaded on first use. A proxy function is
``proxy(model, inputs, targets) -> float``; it never changes ``model`` (the callers in
:mod:`nasapp.engine.proxies.scoring` hand it a copy anyway). Scores (``kind == "score"``) are higher for a
network predicted to train better; sizes (``kind == "size"``: ``params``, ``macs``, ``flops``) are plain costs with no
direction. :func:`nasapp.engine.proxies.scoring.score_archs` builds and scores architectures of a space;
the classification trainer computes ``trainer.zero_cost`` on its first batch (metrics ``zc_<name>``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nasapp.engine.registry import Options, Registry


@dataclass(frozen=True)
class ProxyEntry:
    """One proxy. ``data_free``: it reads only the batch's shape (synflow, params, flops)."""

    name: str
    description: str
    load: str
    kind: Literal["score", "size"]
    data_free: bool
    options: type[Options] = Options  # a proxy has no keys of its own; kept for the Registry's shape

    def function(self) -> Callable[..., float]:
        """The proxy function ``(model, inputs, targets) -> float`` (imports torch)."""
        module, _, attr = self.load.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


PROXIES: Registry[ProxyEntry] = Registry("zero-cost proxy", "trainer.zero_cost")

_MEASURES = "nasapp.engine.proxies.measures"
_SIZES = "nasapp.engine.proxies.sizes"
for _entry in (
    ProxyEntry("synflow", "data-free: sum of |w * dR/dw| of the |w| network on an all-ones input "
               "(Tanaka et al. 2020)", f"{_MEASURES}:synflow", "score", True),
    ProxyEntry("naswot", "log|det K| of the ReLU on/off-code agreement over the batch "
               "(Mellor et al. 2021)", f"{_MEASURES}:naswot", "score", False),
    ProxyEntry("grad_norm", "sum of the L2 norms of the conv/linear weight gradients of the batch's "
               "cross-entropy", f"{_MEASURES}:grad_norm", "score", False),
    ProxyEntry("jacob_cov", "how uncorrelated the input Jacobians of the batch are (Mellor et al. v1)",
               f"{_MEASURES}:jacob_cov", "score", False),
    ProxyEntry("params", "size, not a score: trainable parameters", f"{_SIZES}:params", "size", True),
    ProxyEntry("macs", "size, not a score: conv/linear multiply-accumulates (MACs, the papers' unit) of one"
               " forward pass of one input", f"{_SIZES}:macs", "size", True),
    ProxyEntry("flops", "size, not a score: 2 x macs (two floating-point operations per multiply-add)",
               f"{_SIZES}:flops", "size", True),
):
    PROXIES.register(_entry)


def check_names(names: Any) -> list[str]:
    """``names`` as a list of registered proxy names; raises ValueError naming the known ones otherwise.

    The message has no key prefix: the job-file validation puts ``trainer.zero_cost:`` in front.
    """
    if not isinstance(names, list | tuple) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"expected a list of proxy names; choose from: {PROXIES.known()}")
    unknown = [name for name in names if name not in PROXIES]
    if unknown:
        raise ValueError(f"unknown zero-cost proxy {unknown[0]!r}; choose from: {PROXIES.known()}")
    return list(dict.fromkeys(names))


__all__ = ["PROXIES", "ProxyEntry", "check_names"]
