"""The ``nb201`` prebuilt: the NAS-Bench-201 cell space (15,625 cells).

An architecture names the operation on each of the cell's six edges, keyed ``"<to><-<from>"`` in the
benchmark's edge order (0->1), (0->2), (1->2), (0->3), (1->3), (2->3)::

    {"1<-0": "nor_conv_3x3", "2<-0": "nor_conv_3x3", "2<-1": "avg_pool_3x3",
     "3<-0": "skip_connect", "3<-1": "nor_conv_3x3", "3<-2": "skip_connect"}

:func:`to_nb201_string` / :func:`from_nb201_string` convert to and from the benchmark's own string form
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``, which
is how tabular benchmark files (``nb201_cifar10.csv``) name cells. Torch-free: the model code is in
:mod:`nasapp.engine.spaces.nb201_model`, imported only by :func:`build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasapp.engine.errors import NasappError
from nasapp.engine.spaces.core import choice, space
from nasapp.engine.spaces.scale import (
    check_image_shape,
    check_num_classes,
    image_size,
    normalize_scale,
    scale_channels,
    scale_count,
)

NAME = "nb201"
DESCRIPTION = ("NAS-Bench-201 cell: 6 edges x {none, skip, conv1x1, conv3x3, avgpool3x3} "
               "(images, 15,625 cells)")

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), benchmark order
EDGE_KEYS = tuple(f"{dst}<-{src}" for dst, src in EDGES)

BASE_CHANNELS = 16
BASE_CELLS = 5

SPACE = space({key: choice(OPS) for key in EDGE_KEYS})


def arch_ops(arch: Mapping[str, Any]) -> list[str]:
    """The six edge operations in benchmark order."""
    arch = SPACE.canonical(arch)
    return [arch[key] for key in EDGE_KEYS]


def to_nb201_string(arch: Mapping[str, Any]) -> str:
    """The benchmark's string for ``arch``, e.g. ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
    ops = arch_ops(arch)
    nodes = []
    for node in (1, 2, 3):
        edges = [f"{op}~{src}" for (dst, src), op in zip(EDGES, ops, strict=True) if dst == node]
        nodes.append("|" + "|".join(edges) + "|")
    return "+".join(nodes)


def from_nb201_string(text: str) -> dict[str, str]:
    """Parse the benchmark's string form into an architecture; a malformed string raises NasappError."""
    if not isinstance(text, str):
        raise NasappError(f"NAS-Bench-201 string must be a string; got {text!r}")
    s = text.strip()
    nodes = s.split("+")
    if len(nodes) != 3:
        raise NasappError(f"bad NAS-Bench-201 string {text!r}: expected 3 nodes separated by '+', "
                          f"found {len(nodes)}")
    arch: dict[str, str] = {}
    for node, part in enumerate(nodes, start=1):
        if len(part) < 2 or not part.startswith("|") or not part.endswith("|"):
            raise NasappError(f"bad NAS-Bench-201 string {text!r}: node {node} {part!r} must look like "
                              "'|op~input|...|'")
        edges = part[1:-1].split("|")
        if len(edges) != node:
            raise NasappError(f"bad NAS-Bench-201 string {text!r}: node {node} must have {node} incoming "
                              f"edge(s), found {len(edges)}")
        for expected_src, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep:
                raise NasappError(f"bad NAS-Bench-201 string {text!r}: edge {edge!r} must be 'op~input'")
            if op not in OPS:
                raise NasappError(f"bad NAS-Bench-201 string {text!r}: unknown operation {op!r}; "
                                  f"operations are {', '.join(OPS)}")
            if src != str(expected_src):
                raise NasappError(f"bad NAS-Bench-201 string {text!r}: edge {edge!r} of node {node} must "
                                  f"come from node {expected_src}")
            arch[f"{node}<-{expected_src}"] = op
    return {key: arch[key] for key in EDGE_KEYS}


def build(arch: Any, input_shape: Any, num_classes: int, scale: Mapping[str, Any] | None = None):
    """Build the benchmark's network for ``arch``: C = 16 x width channels, N = 5 x depth cells per stage."""
    ops = arch_ops(arch)
    shape = check_image_shape(input_shape, NAME)
    num_classes = check_num_classes(num_classes)
    scale = normalize_scale(scale)
    from nasapp.engine.spaces.nb201_model import NB201Network

    return NB201Network(ops, shape[0], scale_channels(BASE_CHANNELS, scale["width"]),
                        scale_count(BASE_CELLS, scale["depth"]), num_classes, image_size(shape, scale),
                        scale["resolution"])


# Named reference architectures (``[search] baseline``, ``nasapp latency --baseline``): the benchmark's best
# cell on CIFAR-10 (94.37% test accuracy in ../shared/benchmarks; 1,073,466 parameters with 10 classes).
BASELINES: dict[str, Any] = {
    "nb201-best-cifar10": from_nb201_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
}
