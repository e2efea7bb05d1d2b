"""The search-space language (torch-free) and the prebuilt spaces.

``space(template)`` compiles nested dicts/lists of JSON constants and dimensions (``choice``, ``integer``,
``floating``, ``boolean``, ``repeat``) into a :class:`Space`; an architecture is a plain JSON value.
"""

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.core import (
    SENTINEL,
    DimInfo,
    Slot,
    Space,
    boolean,
    choice,
    floating,
    integer,
    repeat,
    space,
)

__all__ = [
    "SENTINEL",
    "DimInfo",
    "Slot",
    "Space",
    "SpaceError",
    "boolean",
    "choice",
    "floating",
    "integer",
    "repeat",
    "space",
]
