"""The pieces of a remote checkpoint made of several files (an HF shard set, a DCP folder): where
each lives, each opened by ranges, and what an export records of them.

``locate`` is where a URL becomes the file or set it names (a Hub repository becomes its weights
file or index); ``remote_set`` says whether that is a set. A piece is always named inside its set
(``shard_location``, ``data_location``), so no index or ``.metadata`` can send a read elsewhere.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from inspector.core.layout import DCP_METADATA, LayoutKind
from inspector.core.model import CheckpointIndex

from .concurrent_reads import ConcurrentReads
from .dcp_folders import data_location, folder_location, is_dcp_folder
from .locations import RemoteLocation, parse_location
from .opening import open_buffer, remote_size
from .range_buffer import RangeBuffer
from .shard_sets import is_index, repo_weights, shard_location


def locate(url: str) -> tuple[RemoteLocation, int]:
    """The remote file, index or folder ``url`` names, and the requests it took to find it (a Hub
    repository's checkpoint is looked for by name)."""
    location = parse_location(url)
    return repo_weights(location) if location.repo else (location, 0)


@dataclass(frozen=True)
class RemoteSet:
    """A remote HF shard set (``location`` its index) or DCP folder (``location`` the folder)."""

    kind: LayoutKind
    location: RemoteLocation

    @property
    def folder(self) -> str:
        """The folder of the pieces, as sentences show it (without credentials)."""
        if self.kind is LayoutKind.DCP_FOLDER:
            return folder_location(self.location).shown
        return posixpath.dirname(self.location.shown)

    def piece(self, name: str) -> RemoteLocation:
        """Where the shard or data file ``name`` lives (refused when it would leave the set)."""
        if self.kind is LayoutKind.DCP_FOLDER:
            return data_location(self.location, name)
        return shard_location(self.location, name)

    def open_piece(self, name: str, budget: int) -> RangeBuffer:
        """The piece ``name`` read by ranges, at most ``budget`` bytes in all."""
        return open_buffer(self.piece(name), budget)

    def own_file(self) -> str:
        """The file that describes the set: the index, or the folder's ``.metadata``."""
        return DCP_METADATA if self.kind is LayoutKind.DCP_FOLDER else posixpath.basename(self.location.shown)


def remote_set(location: RemoteLocation) -> RemoteSet | None:
    """The set ``location`` is, or ``None`` for a single file."""
    if is_index(location):
        return RemoteSet(LayoutKind.HF_SHARD_SET, location)
    if is_dcp_folder(location):
        return RemoteSet(LayoutKind.DCP_FOLDER, location)
    return None


def set_facts(pieces: RemoteSet, index: CheckpointIndex) -> dict[str, Any]:
    """What an export records of a remote set: its URL (without credentials), and each file it is
    made of (the index or ``.metadata``, then every piece a tensor lies in) with its size."""
    names = sorted(
        {f for n in index.tensor_nodes() if n.tensor is not None for f in n.tensor.shard.split(", ") if f}
    )
    own = pieces.own_file()
    where = {own: pieces.piece(own), **{n: pieces.piece(n) for n in names}}
    with ConcurrentReads(where, lambda n: remote_size(where[n])) as sizes:
        files = [{"name": n, "url": loc.shown, "size": sizes(n)} for n, loc in where.items()]
    return {
        "name": posixpath.basename(
            pieces.folder if pieces.kind is LayoutKind.DCP_FOLDER else pieces.location.shown
        ),
        "url": pieces.location.shown,
        "size": sum(f["size"] for f in files),
        "files": files,
    }
