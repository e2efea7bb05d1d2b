"""No early stopping: every trial runs to its last step (the default)."""

from __future__ import annotations

from typing import Literal

from nasapp.engine.early_stopping.base import EarlyStoppingEntry, EarlyStoppingOptions


class NoOptions(EarlyStoppingOptions):
    rule: Literal["none"] = "none"


ENTRY = EarlyStoppingEntry("none", "every trial runs to its last step", NoOptions, lambda options: None)
