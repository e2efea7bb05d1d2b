"""The built-in demo job: a small real search that `nasapp run` (no file) finishes in a few minutes on CPU."""

from __future__ import annotations

import tomllib
from typing import Any

DEMO_TOML = """\
# The built-in demo: MnasNet's space, scaled down, on scikit-learn's 8x8 digits, trained on CPU.
name = "demo-digits-mnasnet"
seed = 0

[space]
prebuilt = "mnasnet"
scale = { width = 0.25, depth = 0.5 }

[data]
kind = "digits"
val_fraction = 0.25

[trainer]
prebuilt = "classification"
steps = 120
batch_size = 64
optimizer = "adamw"
lr = 0.004
weight_decay = 0.01
eval_every = 50

[strategy]
name = "evolution"
population = 8
sample_size = 3

[search]
max_trials = 20
parallel = "auto"
devices = "auto"
trial_timeout_s = 120

[reward]
metric = "accuracy"
direction = "max"

[latency]
device = "cpu-ort"   # every candidate is exported to ONNX and timed with ONNX Runtime on the CPU
runs = 100
"""


def demo_job() -> dict[str, Any]:
    return tomllib.loads(DEMO_TOML)
