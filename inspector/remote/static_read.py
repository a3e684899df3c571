"""The static read of a remote file: the same readers as a local file, over a ``RangeBuffer``."""

from __future__ import annotations

from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek_source
from inspector.core.reading import MAX_ARCHIVE_PICKLE_BYTES

from .locations import parse_location
from .opening import open_buffer
from .range_buffer import RangeBuffer, Transfer

#: The tree of any file the readers accept costs less than this; a read past it is stopped.
TREE_BUDGET = MAX_ARCHIVE_PICKLE_BYTES + (64 << 20)


def open_remote(url: str, budget: int = TREE_BUDGET) -> RangeBuffer:
    """The file at ``url`` as a buffer the readers read; a sentence when it cannot be opened."""
    return open_buffer(parse_location(url), budget)


def peek_url(url: str) -> tuple[CheckpointIndex, Transfer]:
    """The static read of the file at ``url`` and what it cost (requests, bytes)."""
    location = parse_location(url)
    with open_buffer(location, TREE_BUDGET) as buffer:
        index = peek_source(buffer, location.shown, buffer.size)
    return index, buffer.transfer
