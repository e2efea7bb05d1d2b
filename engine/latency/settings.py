"""The latency settings (the job's ``[latency]`` table) as the measuring service reads them.

The service takes a :class:`~nasapp.engine.jobs.spec.LatencySpec` or its ``model_dump()`` dict; both become a
plain dict (it travels to the measuring process as JSON). A key the dict lacks takes ``LatencySpec``'s own
default, so no default is restated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_settings(spec: Any) -> dict[str, Any]:
    """A plain dict of the settings: ``spec.model_dump()`` for a pydantic model, a copy of a mapping."""
    if hasattr(spec, "model_dump"):
        return dict(spec.model_dump())
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"latency settings must be a LatencySpec or a dict, not {type(spec).__name__}")


def setting(spec: Mapping[str, Any], name: str) -> Any:
    """The setting ``name``: the spec's value, or ``LatencySpec``'s default when the spec lacks the key."""
    if name in spec:
        return spec[name]
    # imported here: the runner always sends a full spec, so the measuring process never pays for pydantic
    from nasapp.engine.latency.devices import LatencySpec

    return LatencySpec.model_fields[name].default
