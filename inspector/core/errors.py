"""The errors the static reader raises: each a sentence about the user's file."""

from __future__ import annotations

from .model import GlobalRef


class CheckpointError(Exception):
    """A problem with a checkpoint, told as one sentence a user can act on.

    ``details`` may carry the raw low-level message (offered under "Details", never shown alone).
    """

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotACheckpointError(CheckpointError):
    """The file's content is some other kind of file (text, an image, bytes in no checkpoint format)."""


class DamagedCheckpointError(CheckpointError):
    """The file could not be read to the end, but its pickles referenced these globals before that.

    ``scan`` still reports them: a damaged file that names ``os.system`` is dangerous, not just unreadable.
    """

    def __init__(
        self,
        message: str,
        details: str | None,
        globals_: list[GlobalRef],
        differentials: list[str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.globals = globals_
        self.differentials = list(differentials or [])


class ReaderOutOfMemory(CheckpointError):
    """The read ran out of memory: the machine's, or the limit a confined reader runs under."""


class MissingFileError(CheckpointError):
    """The file does not exist (a shard a set names but lacks is a warning of the set, not an error)."""
