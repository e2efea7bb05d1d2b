"""The one exception type for mistakes a user can make, and the trial-failure signal."""

from __future__ import annotations


class NasappError(Exception):
    """A problem the user can fix (bad job file, missing data, unknown strategy, bad architecture).

    The message says what to change. The CLI prints it without a traceback and exits non-zero.
    """


class SpaceError(NasappError):
    """An architecture or a space definition is invalid; the message names the path."""


class TrialFailed(Exception):
    """Raised by a trainer to fail a trial with a known reason (``nan``, ``oom``, ``error``)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason
