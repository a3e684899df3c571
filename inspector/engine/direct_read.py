"""Tensors read straight from a memory-mapped checkpoint, without ``torch.load``.

The static read gives each tensor's storage record, offset, shape, stride and dtype; the storage
layout gives where that record lies in the file. A tensor is then a strided view of the mapped
bytes: nothing is copied and nothing is executed, so one tensor of a 20 GB file is as cheap as
one of a small file. The map is read-only; never write into these tensors.

``TensorSource`` is the one interface every reader of tensor bytes (statistics, values, diff,
export) uses, whatever the layout; ``MappedCheckpoint`` is the source of one file, the sources of
shard sets and DCP folders build on it (``shard_sources``), and ``sources.open_source`` picks one.
Sources read with NumPy alone (``array``, a ``TensorArray`` that slices the mapped buffer); only
``tensor`` and ``read``, which give torch tensors of the same bytes, import torch.

A file truncated *while* it is mapped can still end the process with SIGBUS on first touch; each
read re-checks the file's size first to make that window small, and the worker process is where
this runs, so the window survives it.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from inspector.core.dtypes import ITEMSIZE
from inspector.core.errors import CheckpointError
from inspector.core.model import CheckpointIndex, Node, NodeKind, PathPart, TensorInfo
from inspector.core.peek import display_name, peek
from inspector.core.reading import ByteSource
from inspector.core.storage_layout import StorageLayout, storage_layout

from .tensor_array import TensorArray, storage_dtype

if TYPE_CHECKING:
    import torch


class RangeSource(ByteSource, Protocol):
    """A file's bytes read by ranges (a remote file): the reader's seek/read, plus its length and
    slices for the tensor records."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice, /) -> bytes: ...

    def close(self) -> None: ...

    #: a read failed (the file changed, the server broke off): the source is opened again
    failed: bool


#: torch counts elements and bytes in signed 64-bit integers.
_INT64_MAX = (1 << 63) - 1


class TensorSource:
    """The tensors of one checkpoint, found by key or container path and read one at a time.

    ``read_array`` returns an array that may view mapped file pages: treat it as read-only.
    """

    def __init__(self, path: str, index: CheckpointIndex, identity_path: str | None = None) -> None:
        self.path = path
        self.name = display_name(path)
        self.index = index
        #: the file whose inode, size and mtime say whether the checkpoint changed since it was read
        self.identity_path = identity_path or path
        self.identity = file_identity(self.identity_path)
        self._by_path: dict[tuple[PathPart, ...], Node] | None = None
        self._by_key: dict[str, Node] | None = None

    def is_current(self) -> bool:
        return file_identity(self.identity_path) == self.identity

    def tensor_nodes(self) -> list[Node]:
        return self.index.tensor_nodes()

    def find(self, key: str | None = None, path: Sequence[PathPart] | None = None) -> Node:
        """The tensor node with this container ``path`` (exact) or this joined ``key``."""
        if self._by_path is None or self._by_key is None:
            self._by_path, self._by_key = {}, {}
            for node in self.index.root.tensors():
                self._by_path[node.path] = node
                self._by_key.setdefault(node.key, node)
        found = self._by_path.get(tuple(path)) if path is not None else None
        if found is None and key is not None:
            found = self._by_key.get(key)
        if found is None:
            what = key if key is not None else ".".join(str(p) for p in path or ())
            raise CheckpointError(f"{self.name} has no tensor named {what or '(the bare tensor)'}.")
        return found

    def array(self, node: Node) -> TensorArray:
        """The elements of ``node`` (a view of mapped bytes wherever the layout allows)."""
        info = node.tensor
        if node.kind is not NodeKind.TENSOR or info is None:
            raise CheckpointError(f"{node.key or 'this item'} in {self.name} is not a tensor.")
        return self.read_array(info, node.key or "the tensor")

    def tensor(self, node: Node) -> torch.Tensor:
        """``array(node)`` as a torch tensor of the same bytes (imports torch)."""
        return self.array(node).tensor()

    def read_array(self, info: TensorInfo, label: str = "the tensor") -> TensorArray:
        raise NotImplementedError

    def read(self, info: TensorInfo, label: str = "the tensor") -> torch.Tensor:
        """``read_array`` as a torch tensor of the same bytes (imports torch)."""
        return self.read_array(info, label).tensor()

    def file_range(self, info: TensorInfo) -> tuple[str, int] | None:
        """(file, byte) where the bytes of ``info``'s storage start, when they lie in a file as is."""
        return None

    def tensors(self) -> Iterator[tuple[Node, torch.Tensor]]:
        """Every tensor node with its tensor, in tree order (errors raised as they come)."""
        for node in self.index.root.tensors():
            yield node, self.tensor(node)

    def release(self, node: Node) -> None:
        """Let the kernel drop the pages this tensor's read touched (they stay in the page cache)."""

    def close(self) -> None:
        """Drop maps and files (a map goes once no tensor made from it is alive)."""

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def file_identity(path: str) -> tuple[int, ...]:
    """(inode, size, mtime) of ``path``; empty when it cannot be inspected."""
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def check_dtype(info: TensorInfo, label: str, name: str) -> None:
    """Refuse a dtype whose elements this reader does not know how to hold."""
    try:
        known = storage_dtype(info.dtype).itemsize == ITEMSIZE[info.dtype] == info.itemsize
    except (CheckpointError, KeyError):
        known = False
    if not known:
        raise CheckpointError(
            f"{label} in {name} has dtype {info.dtype}, whose values this reader cannot read."
        )


def check_view(info: TensorInfo, label: str, name: str) -> None:
    """Refuse a view torch cannot address: too many elements, or strides past any storage."""
    numel = math.prod(info.shape)
    if numel > _INT64_MAX or numel * max(1, info.itemsize) > _INT64_MAX:
        shape = ", ".join(f"{s:,}" for s in info.shape)
        raise CheckpointError(
            f"{label} in {name} declares {numel:,} elements (shape [{shape}]), more than torch can "
            "address; its values are not read."
        )
    if not numel:
        return
    if info.storage_offset < 0 or any(st < 0 for st in info.stride):
        raise CheckpointError(
            f"{label} in {name} has a negative stride or offset, which torch cannot address; its values "
            "are not read."
        )
    extent = info.storage_offset + sum((s - 1) * st for s, st in zip(info.shape, info.stride, strict=True))
    if (extent + 1) * info.itemsize > max(info.storage_nbytes, 0) or extent > _INT64_MAX:
        worst = max(info.stride, default=0)
        raise CheckpointError(
            f"{label} in {name} has strides (largest {worst:,}) or an offset that reach past the end of "
            f"its {info.storage_nbytes:,}-byte storage; its values are not read."
        )


def mapped_view(
    buffer: Any, start: int, available: int, info: TensorInfo, label: str, name: str
) -> TensorArray:
    """``info``'s tensor as a strided view of ``available`` bytes of ``buffer`` from ``start``."""
    check_dtype(info, label, name)
    check_view(info, label, name)
    shape, stride = tuple(info.shape), tuple(info.stride)
    if info.numel == 0:
        return TensorArray(info.dtype, np.empty(0, dtype=np.uint8), shape, stride)
    extent = info.storage_offset + sum((s - 1) * st for s, st in zip(shape, stride, strict=True)) + 1
    need = extent * info.itemsize
    if need > available:
        raise CheckpointError(
            f"{name} is truncated or damaged: {label} needs {need:,} bytes of its storage "
            f"record but the file holds {available:,}."
        )
    record = np.frombuffer(buffer, dtype=np.uint8, count=need, offset=start)
    return TensorArray(info.dtype, record, shape, stride, info.storage_offset)


class MappedCheckpoint(TensorSource):
    """One checkpoint file mapped read-only, with its static index; tensors are views of the map.

    The map stays valid as long as any tensor made from it is alive, even after ``close``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        index: CheckpointIndex | None = None,
        buffer: RangeSource | None = None,
    ) -> None:
        p = os.fspath(path)
        super().__init__(p, index if index is not None else peek(p, whole_set=False))
        if not self.index.format.direct_reads:
            raise CheckpointError(
                f"{self.name} is a {self.index.format} file; its values cannot be read without loading it."
            )
        self._buffer = buffer
        if buffer is not None:  # a remote file: each record is fetched when it is read
            self._layout: StorageLayout = storage_layout(self.path, self.index, (buffer, len(buffer)))
            self.file_size = len(buffer)
            self._file = None
            self._map: mmap.mmap | None = None
            return
        self._layout = storage_layout(self.path, self.index)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (kept open for the map's lifetime)
            st = os.fstat(self._file.fileno())
            self.file_size = st.st_size
            self.identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if self.file_size else None
        except OSError as exc:
            self._layout.close()
            raise CheckpointError(f"{self.name} cannot be mapped: {exc.strerror or exc}.") from None

    def is_current(self) -> bool:
        if self._buffer is not None:
            return not self._buffer.failed
        return super().is_current()

    def read_array(self, info: TensorInfo, label: str = "the tensor") -> TensorArray:
        check_dtype(info, label, self.name)
        if info.layout != "strided" or not info.storage_key:
            raise CheckpointError(
                f"{label} in {self.name} is a {info.layout} tensor without plain data in the file."
            )
        if self._layout.byteorder != "little":
            raise CheckpointError(f"{self.name} was saved on a big-endian machine; its values are not read.")
        check_view(info, label, self.name)
        if info.numel == 0:
            return mapped_view(b"", 0, 0, info, label, self.name)
        span = self._layout.span(info.storage_key)
        if self._buffer is not None:
            record = self._buffer[span.offset : span.offset + span.nbytes]  # read-only, as the map is
            return mapped_view(record, 0, len(record), info, label, self.name)
        self._check_size()
        assert self._map is not None
        return mapped_view(self._map, span.offset, span.nbytes, info, label, self.name)

    def release(self, node: Node) -> None:
        """Reading many tensors one after another would otherwise keep every page touched resident,
        so the process's RSS would grow to the file's size; tensors still alive just fault back in."""
        info = node.tensor
        if self._map is None or info is None or not info.storage_key or info.numel == 0:
            return
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None:
            return
        try:
            span = self._layout.span(info.storage_key)
        except CheckpointError:
            return
        start = span.offset - span.offset % mmap.PAGESIZE
        end = min(span.offset + span.nbytes, self.file_size)
        if end > start:
            with contextlib.suppress(OSError, ValueError):
                self._map.madvise(advice, start, end - start)

    def file_range(self, info: TensorInfo) -> tuple[str, int] | None:
        if self._buffer is not None:  # a remote file's bytes lie in no local file
            return None
        if not info.storage_key or info.layout != "strided" or self._layout.byteorder != "little":
            return None
        try:
            return self.path, self._layout.span(info.storage_key).offset
        except CheckpointError:
            return None

    def _check_size(self) -> None:
        if self._file is None:
            return
        try:
            size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            raise CheckpointError(f"{self.name} cannot be read: {exc.strerror or exc}.") from None
        if size < self.file_size:
            raise CheckpointError(
                f"{self.name} shrank from {self.file_size:,} to {size:,} bytes while it was open; "
                "open it again once it is written completely."
            )

    def close(self) -> None:
        if self._map is not None:
            with contextlib.suppress(BufferError):  # tensors still view it: it goes when they do
                self._map.close()
            self._map = None
        self._layout.close()
        if self._file is not None:
            self._file.close()
        if self._buffer is not None:
            self._buffer.close()
