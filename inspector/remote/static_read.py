"""The static read of a remote file: the same readers as a local file, over a ``RangeBuffer``.

``peek_location`` is where a location the user gave is told apart: a URL is read here, a path by
core's ``peek``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek, peek_source
from inspector.core.reading import MAX_ARCHIVE_PICKLE_BYTES

from .locations import is_url, parse_location

if TYPE_CHECKING:  # the remote readers are imported when a URL is read: a local path needs none
    from inspector.core.errors import CheckpointError

    from .range_buffer import RangeBuffer, Transfer

#: ``torch.load`` needs a local file, and is never handed a URL.
LOAD_NEEDS_FILE = (
    "Loading with torch needs the whole file on this machine, and torch is never handed a URL; download "
    "the file and run `checkpoint-inspector info --load` on the local copy (the tree, the safety scan "
    "and statistics work from the URL)."
)

#: What ``info --load URL`` says: the option that downloads the file and loads the copy.
LOAD_NEEDS_DOWNLOAD = (
    "Loading with torch needs the whole file on this machine, and torch is never handed a URL; add "
    "--download to download it into the cache folder and load that copy (the tree, the safety scan "
    "and statistics work from the URL without it)."
)

#: The tree of any file the readers accept costs less than this; a read past it is stopped.
TREE_BUDGET = MAX_ARCHIVE_PICKLE_BYTES + (64 << 20)


def open_remote(url: str, budget: int = TREE_BUDGET) -> RangeBuffer:
    """The file at ``url`` as a buffer the readers read; a sentence when it cannot be opened."""
    from .opening import open_buffer
    from .set_pieces import locate

    return open_buffer(locate(url)[0], budget)


def peek_url(url: str) -> tuple[CheckpointIndex, Transfer]:
    """The static read of the file at ``url`` and what it cost (requests, bytes)."""
    from .dcp_folders import is_dcp_folder, peek_dcp_folder
    from .opening import open_buffer
    from .set_pieces import locate
    from .shard_sets import is_index, peek_shard_set

    location, probes = locate(url)
    if is_index(location):
        index, transfer = peek_shard_set(location, TREE_BUDGET)
    elif is_dcp_folder(location):
        index, transfer = peek_dcp_folder(location)
    else:
        with open_buffer(location, TREE_BUDGET) as buffer:
            index = peek_source(buffer, location.shown, buffer.size)
        transfer = buffer.transfer
    transfer.requests += probes
    index.remote_read = (transfer.requests, transfer.fetched, transfer.size)
    index.remote_version = transfer.etag
    return index, transfer


def changed_since(url: str) -> CheckpointError:
    """The sentence for a remote file whose tree is not the one read before."""
    from .opening import changed

    return changed(parse_location(url).shown, "its tree is not the one read first")


def peek_location(text: str) -> tuple[CheckpointIndex, Transfer | None]:
    """The static read of a local path or a URL, and for a URL what it cost."""
    if is_url(text):
        return peek_url(text)
    return peek(text), None


def remote_json(transfer: Transfer) -> dict[str, int]:
    """What a remote read cost, as the JSON reports give it."""
    return {"requests": transfer.requests, "bytes_fetched": transfer.fetched, "file_size": transfer.size}
