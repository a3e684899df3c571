"""Tensors read straight from a memory-mapped checkpoint, without ``torch.load``.

The static read gives each tensor's storage record, offset, shape, stride and dtype; the storage
layout gives where that record lies in the file. A tensor is then a strided view of the mapped
bytes: nothing is copied and nothing is executed, so one tensor of a 20 GB file is as cheap as
one of a small file. The map is read-only; never write into these tensors.

A file truncated *while* it is mapped can still end the process with SIGBUS on first touch; each
read re-checks the file's size first to make that window small, and the worker process is where
this runs, so the window survives it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from inspector.core.errors import CheckpointError
from inspector.core.model import CheckpointIndex, Node, NodeKind, PathPart, TensorInfo
from inspector.core.peek import display_name, peek
from inspector.core.storage_layout import StorageLayout, storage_layout

#: Formats whose tensors can be read directly.
DIRECT_FORMATS = frozenset({"torch-zip", "torch-legacy", "torchscript", "safetensors", "hf-sharded"})


class MappedCheckpoint:
    """One checkpoint file mapped read-only, with its static index; tensors are views of the map.

    The map stays valid as long as any tensor made from it is alive, even after ``close``.
    """

    def __init__(self, path: str | os.PathLike[str], index: CheckpointIndex | None = None) -> None:
        self.path = os.fspath(path)
        self.name = display_name(self.path)
        self.index = index if index is not None else peek(self.path)
        if self.index.format not in DIRECT_FORMATS:
            raise CheckpointError(
                f"{self.name} is a {self.index.format} file; its values cannot be read without loading it."
            )
        self._shards: dict[str, MappedCheckpoint] | None = None
        if self.index.format == "hf-sharded":
            # Each shard is mapped on its own when one of its tensors is first read.
            self._shards = {}
            self._by_path: dict[tuple[PathPart, ...], Node] | None = None
            self._by_key: dict[str, Node] | None = None
            st = os.stat(self.path)
            self.file_size = st.st_size
            self.identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            return
        self._layout: StorageLayout = storage_layout(self.path, self.index)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 (kept open for the map's lifetime)
            st = os.fstat(self._file.fileno())
            self.file_size = st.st_size
            self.identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._map: mmap.mmap | None = (
                mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if self.file_size else None
            )
        except OSError as exc:
            self._layout.close()
            raise CheckpointError(f"{self.name} cannot be mapped: {exc.strerror or exc}.") from None
        self._by_path = None
        self._by_key = None

    # -- finding tensors ------------------------------------------------------------------------

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

    # -- reading --------------------------------------------------------------------------------

    def tensor(self, node: Node) -> torch.Tensor:
        """The tensor of ``node`` as a view of the mapped file (zero-copy)."""
        info = node.tensor
        if node.kind is not NodeKind.TENSOR or info is None:
            raise CheckpointError(f"{node.key or 'this item'} in {self.name} is not a tensor.")
        label = node.key or "the tensor"
        return self.read(info, label)

    def _shard_of(self, info: TensorInfo) -> tuple[MappedCheckpoint, TensorInfo]:
        """The mapped shard holding ``info`` and the tensor's facts as that shard names them."""
        assert self._shards is not None
        from dataclasses import replace

        from inspector.core.layout import shard_path

        sub = self._shards.get(info.shard)
        if sub is None:
            full = shard_path(os.path.dirname(self.path), info.shard, self.name)
            sub = MappedCheckpoint(full, peek(full, whole_set=False))
            self._shards[info.shard] = sub
        key = info.storage_key[len(info.shard) + 1 :] if info.storage_key else ""
        return sub, replace(info, storage_key=key, shard="")

    def read(self, info: TensorInfo, label: str = "the tensor") -> torch.Tensor:
        if self._shards is not None:
            if not info.shard:
                raise CheckpointError(f"{label} in {self.name} lies in a missing shard.")
            sub, inner = self._shard_of(info)
            return sub.read(inner, label)
        dtype = torch_dtype(info.dtype)
        if dtype is None:
            raise CheckpointError(f"{label} in {self.name} has dtype {info.dtype}, which torch here lacks.")
        if info.layout != "strided" or not info.storage_key:
            raise CheckpointError(
                f"{label} in {self.name} is a {info.layout} tensor without plain data in the file."
            )
        if self._layout.byteorder != "little":
            raise CheckpointError(f"{self.name} was saved on a big-endian machine; its values are not read.")
        shape, stride = info.shape, info.stride
        if info.numel == 0:
            return torch.empty_strided(shape, stride, dtype=dtype)
        span = self._layout.span(info.storage_key)
        itemsize = info.itemsize
        extent = info.storage_offset + sum((s - 1) * st for s, st in zip(shape, stride, strict=True)) + 1
        need = extent * itemsize
        if need > span.nbytes:
            raise CheckpointError(
                f"{self.name} is truncated or damaged: {label} needs {need:,} bytes of its storage "
                f"record but the file holds {span.nbytes:,}."
            )
        self._check_size()
        assert self._map is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the given buffer is not writable"
            raw = torch.from_numpy(np.frombuffer(self._map, dtype=np.uint8, count=need, offset=span.offset))
        flat = raw.view(dtype)
        return flat.as_strided(shape, stride, info.storage_offset)

    def tensors(self) -> Iterator[tuple[Node, torch.Tensor]]:
        """Every tensor node with its tensor, in tree order (errors raised as they come)."""
        for node in self.index.root.tensors():
            yield node, self.tensor(node)

    def release(self, node: Node) -> None:
        """Let the kernel drop this tensor's pages from the process (they stay in the page cache).

        Reading many tensors one after another would otherwise keep every page touched resident,
        so the process's RSS would grow to the file's size; tensors still alive just fault back in.
        """
        info = node.tensor
        if self._shards is not None and info is not None and info.shard in self._shards:
            sub, inner = self._shard_of(info)
            sub.release(Node(node.name, node.kind, node.key, node.path, tensor=inner))
            return
        if self._shards is not None or self._map is None or info is None or not info.storage_key:
            return
        if info.numel == 0:
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

    def _check_size(self) -> None:
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
        """Drop the map (it is unmapped once no tensor made from it is alive) and the file."""
        if self._shards is not None:
            for sub in self._shards.values():
                sub.close()
            self._shards.clear()
            return
        if self._map is not None:
            with contextlib.suppress(BufferError):  # tensors still view it: it goes when they do
                self._map.close()
            self._map = None
        self._layout.close()
        self._file.close()

    def __enter__(self) -> MappedCheckpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def torch_dtype(name: str) -> torch.dtype | None:
    dtype = getattr(torch, name, None)
    return dtype if isinstance(dtype, torch.dtype) else None


class MappedCheckpointCache:
    """The last few mapped files, reopened when a file changed on disk (inode, size or mtime)."""

    def __init__(self, max_open: int = 4) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, MappedCheckpoint] = OrderedDict()

    def get(self, path: str) -> MappedCheckpoint:
        full = os.path.abspath(path)
        found = self._open.get(full)
        if found is not None:
            try:
                st = os.stat(full)
                same = (st.st_ino, st.st_size, st.st_mtime_ns) == found.identity
            except OSError:
                same = False
            if same:
                self._open.move_to_end(full)
                return found
            del self._open[full]
            found.close()
        opened = MappedCheckpoint(full)
        self._open[full] = opened
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            old.close()
        return opened

    def clear(self) -> None:
        while self._open:
            _, old = self._open.popitem()
            old.close()


def tensor_ref(payload: dict[str, Any]) -> tuple[str | None, list[PathPart] | None]:
    """The ``key`` / ``tensor_path`` a job payload names a tensor by."""
    key = payload.get("key")
    path = payload.get("tensor_path")
    return (
        key if isinstance(key, str) else None,
        [p for p in path if isinstance(p, (str, int))] if isinstance(path, list) else None,
    )
