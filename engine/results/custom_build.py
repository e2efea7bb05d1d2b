"""Rebuilding a custom space's model in PyTorch: the trainer module's optional ``build_model`` hook.

A ``trainer.ref`` trainer's module may define ``build_model(arch, input_shape, num_classes) -> nn.Module``
(``input_shape`` without the batch, e.g. ``(1, 8, 8)``). With it, and the weights ``ctx.save_model`` saved,
``nasapp export`` checks ONNX Runtime against the rebuilt PyTorch model and ``nasapp.load_model`` returns it.
Command trainers have no module nasapp can import, so their exports are checked by ONNX Runtime alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasapp.engine.errors import NasappError

BUILDER_NAME = "build_model"


@dataclass(frozen=True)
class Builder:
    """The hook's reference (``ref``), or why there is none (``missing``)."""

    ref: str | None
    missing: str | None = None


def find_builder(trainer: Any) -> Builder:
    """The ``build_model`` beside the job's trainer (its ``[trainer]`` options), if the module defines one."""
    from nasapp.engine.jobs.refs import load_ref

    if not trainer.ref:
        kind = "a trainer.command" if trainer.command else "a prebuilt trainer"
        return Builder(None, f"its trainer is {kind}, so there is no Python module to take {BUILDER_NAME} from")
    module = trainer.ref.rpartition(":")[0]
    ref = f"{module}:{BUILDER_NAME}"
    try:
        found = load_ref(ref)
    except Exception:  # noqa: BLE001 - no such function, or the module no longer imports: the same answer
        found = None
    if not callable(found):
        return Builder(None, f"the trainer's module {module} defines no {BUILDER_NAME}(arch, input_shape,"
                             " num_classes)")
    return Builder(ref)


def build_custom(ref: str, arch: Any, input_shape: Sequence[int], num_classes: int, weights: Path) -> Any:
    """The model ``ref`` builds for ``arch``, with the state dict in ``weights`` loaded, in eval mode."""
    import torch

    from nasapp.engine.jobs.refs import load_ref

    try:
        model = load_ref(ref)(arch, tuple(int(d) for d in input_shape), int(num_classes))
    except Exception as error:  # noqa: BLE001 - the user's code: any failure is reported on one line
        raise NasappError(f"{ref} failed: {type(error).__name__}: {str(error).strip()[:200]}") from None
    if not isinstance(model, torch.nn.Module):
        raise NasappError(f"{ref} returned a {type(model).__name__}, not a torch.nn.Module")
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:  # noqa: BLE001 - unreadable file or weights that do not fit: one line either way
        first = (str(error).strip() or type(error).__name__).splitlines()[0][:200]
        raise NasappError(f"the weights {weights.name} do not fit the model {ref} builds ({first})") from None
    return model.float().eval()
