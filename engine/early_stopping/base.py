"""The interface of early-stopping rules: decide from intermediate reports whether a running trial stops.

The runner hands a rule every intermediate report of every trial as a *score* (the reward metric of the
report, higher is better) and, when the rule answers True, asks the trial to stop; the trial ends ``pruned`` at
that step. A rule is deterministic given the reports it has seen; on resume the runner replays the stored
reports of finished trials into a fresh rule with :meth:`EarlyStoppingRule.observe`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from nasapp.engine.registry import Options


class EarlyStoppingOptions(Options):
    """``[early_stopping]``: ``rule`` picks the registered rule; each rule's model adds its own keys."""

    rule: str = "none"


class EarlyStoppingRule(ABC):
    def __init__(self, options: EarlyStoppingOptions) -> None:
        self.options = options

    def observe(self, trial: int, step: int, score: float) -> None:  # noqa: B027 - rules that keep no history
        """Record a report without deciding (resume replays finished trials' reports through this)."""

    @abstractmethod
    def should_stop(self, trial: int, step: int, score: float) -> bool:
        """Record the report of ``trial`` at ``step`` and say whether the trial should stop now."""

    def finished(self, trial: int) -> None:  # noqa: B027
        """``trial`` ended (any state); a rule may drop what it kept for it."""


@dataclass(frozen=True)
class EarlyStoppingEntry:
    name: str
    description: str
    options: type[EarlyStoppingOptions]
    make: Callable[[EarlyStoppingOptions], EarlyStoppingRule | None]  # None: the rule never stops anything
