"""Latency, memory and FLOPs of candidate models: ONNX export, ONNX Runtime timing on CPU, a user's command for
other devices, the runner's measuring service and a latency predictor. See docs/latency.md.

Importing this package imports nothing else: its names load on first use, so a module such as ``devices`` or
``accuracy`` (which `nasapp ls` needs) comes without numpy, and none of it imports torch until a model is
exported, profiled or featurised.
"""

import importlib

_LAZY = {
    "export_onnx": "onnx_export", "LatencyPredictor": "predictor", "within": "accuracy",
    "model_profile": "profile", "LatencyService": "service", "measure_command": "timing", "measure_onnx": "timing",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
