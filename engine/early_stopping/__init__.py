"""Early-stopping rules: the registry. Adding one = a module with its options, rule and ENTRY + one line here."""

from __future__ import annotations

from nasapp.engine.early_stopping import asha, median, none
from nasapp.engine.early_stopping.base import EarlyStoppingEntry, EarlyStoppingOptions, EarlyStoppingRule
from nasapp.engine.registry import Registry

EARLY_STOPPING: Registry[EarlyStoppingEntry] = Registry("early-stopping rule", "early_stopping.rule",
                                                        default="none")
EARLY_STOPPING.register(none.ENTRY)
EARLY_STOPPING.register(median.ENTRY)
EARLY_STOPPING.register(asha.ENTRY)

__all__ = ["EARLY_STOPPING", "EarlyStoppingEntry", "EarlyStoppingOptions", "EarlyStoppingRule", "make_rule"]


def make_rule(options: EarlyStoppingOptions) -> EarlyStoppingRule | None:
    return EARLY_STOPPING.get(options.rule).make(options)
