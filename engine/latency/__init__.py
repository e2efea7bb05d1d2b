"""Latency, memory and FLOPs of candidate models: ONNX export, ONNX Runtime timing on CPU, a user's command for
other devices, the runner's measuring service and a latency predictor. See docs/latency.md.

Importing this package does not import torch (only export, profiling and graph features do).
"""

from nasapp.engine.latency.onnx_export import export_onnx
from nasapp.engine.latency.predictor import LatencyPredictor, within
from nasapp.engine.latency.profile import model_profile
from nasapp.engine.latency.service import LatencyService
from nasapp.engine.latency.timing import measure_command, measure_onnx

__all__ = [
    "LatencyPredictor",
    "LatencyService",
    "export_onnx",
    "measure_command",
    "measure_onnx",
    "model_profile",
    "within",
]
