"""The registry of prebuilt search spaces: a space plus the builder of its torch model.

Torch-free: listing the spaces (``nasapp spaces``) never imports torch; ``Prebuilt.build`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nasapp.engine.errors import NasappError
from nasapp.engine.spaces import mlp, mnasnet, nb201
from nasapp.engine.spaces.core import Space

# build(arch, input_shape, num_classes, scale) -> torch.nn.Module
BuildFn = Callable[..., Any]


@dataclass(frozen=True)
class Prebuilt:
    """A named search space and the function that builds a model for one of its architectures.

    ``build(arch, input_shape, num_classes, scale)``: ``input_shape`` is ``(C, H, W)`` for images or ``(F,)``
    for tabular data; ``scale`` is ``{"width": 1.0, "depth": 1.0, "resolution": None}`` (missing keys take
    these defaults; see :mod:`nasapp.engine.spaces.scale`).
    """

    name: str
    description: str
    space: Space
    build: BuildFn
    kind: Literal["vision", "tabular"]
    # parse(text) -> arch: how tables name an architecture when not as JSON (NAS-Bench-201's own strings)
    parse: Callable[[str], Any] | None = None
    baselines: Mapping[str, Any] = field(default_factory=dict)  # named reference architectures


_PREBUILT: dict[str, Prebuilt] = {
    p.name: p
    for p in (
        Prebuilt(mlp.NAME, mlp.DESCRIPTION, mlp.SPACE, mlp.build, "tabular"),
        Prebuilt(mnasnet.NAME, mnasnet.DESCRIPTION, mnasnet.SPACE, mnasnet.build, "vision",
                 baselines=mnasnet.BASELINES),
        Prebuilt(nb201.NAME, nb201.DESCRIPTION, nb201.SPACE, nb201.build, "vision", nb201.from_nb201_string,
                 nb201.BASELINES),
    )
}


def list_prebuilt() -> list[Prebuilt]:
    """All prebuilt spaces, sorted by name."""
    return [_PREBUILT[name] for name in sorted(_PREBUILT)]


def get_prebuilt(name: str) -> Prebuilt:
    """The prebuilt space called ``name``; an unknown name raises NasappError listing the known ones."""
    try:
        return _PREBUILT[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_PREBUILT))
        raise NasappError(f"unknown space {name!r}; prebuilt spaces: {known}") from None
