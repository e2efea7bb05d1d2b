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
