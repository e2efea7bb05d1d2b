"""Resolving a trainer or space reference (`module:name` or `/abs/path/file.py:name`) to a Python object."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError


def load_ref(ref: str) -> Any:
    module_name, _, attr = ref.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        name = f"nasapp_user_{path.stem}_{abs(hash(str(path))) % 10**8}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise NasappError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            sys.path.insert(0, str(path.parent))  # let the file import its neighbours
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise NasappError(f"{ref}: '{module_name}' has no attribute '{attr}'") from None


def load_space_ref(ref: str) -> Any:
    """A user's search space (a Space or a template) by ``module:name`` or ``path/to/file.py:name``, compiled.
    Every way it can fail (no name, no file, a module that fails to import, no such attribute, not a space) is
    one NasappError line."""
    from nasapp.engine.spaces import space

    module_name, colon, attr = ref.rpartition(":")
    if not colon or not module_name or not attr:
        raise NasappError(f"{ref!r}: give a custom space as path/to/file.py:name or module:name")
    if module_name.endswith(".py") and not Path(module_name).is_file():
        raise NasappError(f"{ref}: no file {module_name}")
    try:
        found = load_ref(ref)
    except NasappError:
        raise
    except Exception as error:  # noqa: BLE001 - the user's module failed to import: say how, on one line
        raise NasappError(f"{ref}: importing it failed: {type(error).__name__}: {error}") from None
    try:
        return space(found)
    except NasappError as error:
        raise NasappError(f"{ref}: {error}") from None
