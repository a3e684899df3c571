"""The tensor source for a path, whatever its layout: the one way tensor bytes are read.

``open_source`` resolves the path's layout (core's ``resolve_layout``) and returns the source
for it: a mapped file, an HF shard set or a DCP folder (for a URL, the same sources over ranged
reads). Statistics, value pages, diff and export all read through it. ``SourceCache`` keeps the
last few open between the worker's jobs.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from inspector.core.layout import Layout, LayoutKind, resolve_layout
from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek
from inspector.remote.locations import is_url

from .direct_read import MappedCheckpoint, RangeSource, TensorSource
from .shard_sources import DcpFolder, ShardSet

#: Bytes one open remote source may fetch: every tensor of the largest checkpoints, once or twice.
DATA_BUDGET = 1 << 42


def open_source(path: str | os.PathLike[str], index: CheckpointIndex | None = None) -> TensorSource:
    """The source of the checkpoint at ``path`` (a file, a shard, an index or a folder).

    ``index`` is the static read of that checkpoint when the caller has it already.
    Raises ``CheckpointError`` with a sentence about the file.
    """
    p = os.fspath(path)
    if is_url(p):
        return _remote_source(p, index)
    layout = resolve_layout(p)
    if layout.kind is LayoutKind.FILE:
        return MappedCheckpoint(p, index if index is not None else peek(p, whole_set=False))
    read = index if index is not None else peek(layout.path)
    if layout.kind is LayoutKind.DCP_FOLDER:
        return DcpFolder(layout, read)
    return ShardSet(layout, read)


def _remote_source(url: str, index: CheckpointIndex | None) -> TensorSource:
    """A remote file or set: its tree read by ranges, each tensor's record fetched when it is read.

    A file's tree is read again through the buffer the records come from (a few requests), so
    records are never located with the tree of another version of the file; a set's shard is
    checked against the set's tree when it is opened (``ShardSet``), a DCP chunk against its
    ``.metadata``.
    """
    from inspector.core.peek import peek_source
    from inspector.remote.set_pieces import locate, remote_set
    from inspector.remote.static_read import changed_since, open_remote, peek_url

    location, _ = locate(url)
    pieces = remote_set(location)
    if pieces is not None:
        read = index if index is not None else peek_url(url)[0]
        layout = Layout(pieces.kind, read.path, pieces.folder, url, remote=True)

        def open_piece(name: str) -> RangeSource:
            return pieces.open_piece(name, DATA_BUDGET)

        if pieces.kind is LayoutKind.DCP_FOLDER:
            return DcpFolder(layout, read, open_piece)
        return ShardSet(layout, read, open_piece)
    buffer = open_remote(url, budget=DATA_BUDGET)
    try:
        read = peek_source(buffer, index.path if index is not None else location.shown, len(buffer))
        if index is not None and _differs(index, read):
            raise changed_since(url)
        return MappedCheckpoint(read.path, read, buffer)
    except BaseException:
        buffer.close()
        raise


def _differs(a: CheckpointIndex, b: CheckpointIndex) -> bool:
    return (a.format, a.file_size, a.total_bytes, a.storage_spans, [n.key for n in a.tensor_nodes()]) != (
        b.format, b.file_size, b.total_bytes, b.storage_spans, [n.key for n in b.tensor_nodes()]
    )  # fmt: skip


class SourceCache:
    """The last few open sources, reopened when the checkpoint changed on disk."""

    def __init__(self, max_open: int = 4) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, TensorSource] = OrderedDict()

    def get(self, path: str) -> TensorSource:
        full = path if is_url(path) else os.path.abspath(path)
        found = self._open.get(full)
        if found is not None:
            if found.is_current():
                self._open.move_to_end(full)
                return found
            del self._open[full]
            found.close()
        opened = open_source(full)
        self._open[full] = opened
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return opened

    def clear(self) -> None:
        while self._open:
            _, old = self._open.popitem()
            old.close()
