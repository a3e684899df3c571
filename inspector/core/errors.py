"""The one error type the static reader raises: a sentence about the user's file."""

from __future__ import annotations


class CheckpointError(Exception):
    """A problem with a checkpoint, told as one sentence a user can act on.

    ``details`` may carry the raw low-level message (offered under "Details", never shown alone).
    """

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
