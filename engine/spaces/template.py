"""Templates to nodes: the public dimension constructors, the template compiler and the JSON reader."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nasapp.engine.errors import SpaceError
from nasapp.engine.spaces.choice import Boolean, Choice
from nasapp.engine.spaces.composite import DictNode, ListNode, Repeat
from nasapp.engine.spaces.dims import Const, Floating, Integer, Node, item, join


def compile_template(template: Any, path: str = "") -> Node:
    """Nested dicts/lists of JSON constants and dimensions (or a Space) -> a node tree."""
    if isinstance(template, Node):
        return template
    root = getattr(template, "root", None)
    if isinstance(root, Node):  # a Space used as a sub-template
        return root
    if isinstance(template, dict):
        fields = {}
        for key, value in template.items():
            if not isinstance(key, str):
                raise SpaceError(f"{path or 'template'}: keys must be strings, got {key!r}")
            fields[key] = compile_template(value, join(path, key))
        return DictNode(fields)
    if isinstance(template, list | tuple):
        return ListNode([compile_template(v, item(path, i)) for i, v in enumerate(template)])
    if isinstance(template, np.bool_ | np.integer | np.floating):
        template = template.item()
    if template is None or isinstance(template, bool | int | str):
        return Const(template)
    if isinstance(template, float) and math.isfinite(template):
        return Const(template)
    raise SpaceError(
        f"{path or 'template'}: {template!r} is not a JSON constant or a dimension; use dicts, lists, "
        "numbers, strings, booleans, None, or choice()/integer()/floating()/boolean()/repeat()"
    )


def choice(options: list[Any] | tuple[Any, ...] | dict[str, Any]) -> Choice:
    """One of ``options``.

    Over a list the value is the chosen element (sub-templates are sampled further); over a dict the value is
    ``{key: value of that option}``, e.g. ``{"pool": {}}`` or ``{"mlp": {"width": 128}}``.
    """
    if isinstance(options, dict):
        for key in options:
            if not isinstance(key, str):
                raise SpaceError(f"choice(): option keys must be strings, got {key!r}")
        keys = list(options)
        return Choice([compile_template(v, f"choice{{{k}}}") for k, v in options.items()], keys)
    if isinstance(options, list | tuple):
        return Choice([compile_template(v, f"choice[{i}]") for i, v in enumerate(options)])
    raise SpaceError(f"choice() takes a list or a dict of options, got {options!r}")


def boolean() -> Boolean:
    """``False`` or ``True``; the same as ``choice([False, True])``."""
    return Boolean()


def integer(low: int, high: int) -> Integer:
    """An int in ``[low, high]``, both ends included."""
    return Integer(low, high)


def floating(low: float, high: float, log: bool = False) -> Floating:
    """A float in ``[low, high]``; ``log=True`` for a log scale (needs ``low > 0``)."""
    return Floating(low, high, log)


def repeat(
    template: Any, times: int | None = None, *, min: int | None = None, max: int | None = None
) -> Repeat:
    """A list of ``times`` copies of ``template``, or of ``min..max`` copies (``min`` defaults to 0).

    Each element is chosen independently.
    """
    if times is not None:
        if min is not None or max is not None:
            raise SpaceError("repeat(): give either times= or min=/max=, not both")
        low = high = times
    elif max is None:
        raise SpaceError("repeat() needs times=N, or max=N (with an optional min=)")
    else:
        low, high = (0 if min is None else min), max
    return Repeat(compile_template(template, "repeat"), low, high)


def node_from_json(data: Any, path: str = "root") -> Node:
    """The inverse of ``Node.to_json``; a malformed document raises SpaceError naming where."""
    if not isinstance(data, dict) or "kind" not in data:
        raise SpaceError(f"space JSON {path}: expected an object with a 'kind', got {data!r}")
    kind = data["kind"]
    try:
        if kind == "const":
            return compile_template(data["value"], path)
        if kind == "dict":
            keys, values = data["keys"], data["values"]
            if len(keys) != len(values):
                raise SpaceError(f"space JSON {path}: as many keys as values")
            return DictNode({k: node_from_json(v, join(path, k)) for k, v in zip(keys, values, strict=True)})
        if kind == "list":
            return ListNode([node_from_json(v, item(path, i)) for i, v in enumerate(data["items"])])
        if kind == "choice":
            options = [node_from_json(v, f"{path}{{{i}}}") for i, v in enumerate(data["options"])]
            keys = data.get("keys")
            return Choice(options, None if keys is None else list(keys))
        if kind == "boolean":
            return Boolean()
        if kind == "integer":
            return Integer(data["low"], data["high"])
        if kind == "floating":
            return Floating(data["low"], data["high"], bool(data.get("log", False)))
        if kind == "repeat":
            return Repeat(node_from_json(data["element"], item(path, "*")), data["min"], data["max"])
    except (KeyError, TypeError) as error:
        raise SpaceError(f"space JSON {path}: malformed {kind!r} node ({error!r})") from None
    raise SpaceError(f"space JSON {path}: unknown kind {kind!r}")
