"""Tensor sources of checkpoints saved in pieces: Hugging Face shard sets and DCP folders.

An HF set reads each tensor from its shard's mapping (the shard's own ``MappedCheckpoint``). A
torch.distributed.checkpoint folder reads each chunk directly too: a chunk is a small
``torch.save`` archive inside a ``.distcp`` file, whose pickle core reads statically and whose
bytes are then a view of the mapped data file, as for any other file. A tensor of one chunk is
that view; a tensor of several is assembled from them, which allocates only what the chunks' data
really holds. Pickled non-tensor items of a DCP folder are never read. Data files are opened only
when they are regular files (a pipe would block the read forever).

A set read where it lives is the same source given ``open_piece``: each shard or data file is then
a remote file read by ranges, so one tensor costs its own record (and its chunks' small headers),
never a whole file.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import stat
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from inspector.core.errors import CheckpointError
from inspector.core.layout import DCP_METADATA, Layout, LayoutKind, shard_path
from inspector.core.load_options import LoadOptions
from inspector.core.model import CheckpointIndex, ChunkInfo, Node, PathPart, TensorInfo
from inspector.core.peek import display_name, peek, peek_source
from inspector.core.storage_layout import ChunkRecord, chunk_record

from .direct_read import MappedCheckpoint, RangeSource, TensorSource, check_dtype, check_view, mapped_view
from .tensor_array import TensorArray, contiguous_strides

#: Files of a set kept mapped at once (the least recently read one is closed first).
MAX_OPEN_FILES = 16
#: Chunks of one tensor checked pairwise for overlaps at most; more are refused.
MAX_CHUNKS_PER_TENSOR = 8192

#: Opens a piece of a set (a shard, a data file) by its name inside the set, read by ranges.
OpenPiece = Callable[[str], RangeSource]


class ShardSet(TensorSource):
    """An HF shard set: each tensor read from the mapping (or the ranges) of the shard that holds it."""

    def __init__(self, layout: Layout, index: CheckpointIndex, open_piece: OpenPiece | None = None) -> None:
        super().__init__(layout.path, index)
        self.folder = layout.folder
        self._open_piece = open_piece
        self._shards: OrderedDict[str, MappedCheckpoint] = OrderedDict()
        self._by_shard: dict[str, list[Node]] | None = None

    def _open_shard(self, shard: str) -> MappedCheckpoint:
        """The shard's source; refused when its tensors are no longer those the set's tree shows."""
        if self._open_piece is None:
            full = shard_path(self.folder, shard, self.name)
            sub = MappedCheckpoint(full, peek(full, whole_set=False))
        else:
            buffer = self._open_piece(shard)
            try:
                full = f"{self.folder}/{shard}"
                sub = MappedCheckpoint(full, peek_source(buffer, full, len(buffer)), buffer)
            except BaseException:
                buffer.close()
                raise
        if self._by_shard is None:
            self._by_shard = {}
            for node in self.index.tensor_nodes():
                if node.tensor is not None and node.tensor.shard:
                    self._by_shard.setdefault(node.tensor.shard, []).append(node)
        for node in self._by_shard.get(shard, []):
            info = node.tensor
            assert info is not None
            inner = replace(info, storage_key=info.storage_key[len(shard) + 1 :] if info.storage_key else "",
                            shard="")  # fmt: skip
            try:
                same = sub.find(node.key).tensor == inner
            except CheckpointError:
                same = False
            if not same:
                sub.close()
                raise CheckpointError(
                    f"{self.name}: its shard {shard} changed since the set was read (it no longer holds "
                    f"{node.key} as the tree shows it); open the set again."
                )
        return sub

    def is_current(self) -> bool:
        return super().is_current() and all(sub.is_current() for sub in self._shards.values())

    def _shard_of(self, info: TensorInfo, label: str) -> tuple[MappedCheckpoint, TensorInfo]:
        """The shard holding ``info`` and the tensor's facts as that shard names them."""
        if not info.shard:
            raise CheckpointError(f"{label} in {self.name} lies in a missing shard.")
        sub = self._shards.get(info.shard)
        if sub is None:
            sub = self._open_shard(info.shard)
            self._shards[info.shard] = sub
            while len(self._shards) > MAX_OPEN_FILES:
                self._shards.popitem(last=False)[1].close()
        else:
            self._shards.move_to_end(info.shard)
        key = info.storage_key[len(info.shard) + 1 :] if info.storage_key else ""
        return sub, replace(info, storage_key=key, shard="")

    def read_array(self, info: TensorInfo, label: str = "the tensor") -> TensorArray:
        sub, inner = self._shard_of(info, label)
        return sub.read_array(inner, label)

    def file_range(self, info: TensorInfo) -> tuple[str, int] | None:
        try:
            sub, inner = self._shard_of(info, "the tensor")
        except CheckpointError:
            return None
        return sub.file_range(inner)

    def release(self, node: Node) -> None:
        info = node.tensor
        if info is not None and info.shard in self._shards:
            sub, inner = self._shard_of(info, node.key)
            sub.release(Node(node.name, node.kind, node.key, node.path, tensor=inner))

    def close(self) -> None:
        while self._shards:
            self._shards.popitem()[1].close()


class _DataFile:
    """One ``.distcp`` file, opened only when it is a regular file, and mapped read-only."""

    file: Any  # what a chunk's archive is read from (seek and read)
    size: int
    map: mmap.mmap | None

    def __init__(self, path: str, owner: str) -> None:
        self.name = display_name(path)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise CheckpointError(f"{owner}: its data file {self.name} is missing.") from None
            raise CheckpointError(
                f"{owner}: its data file {self.name} cannot be read: {exc.strerror}."
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CheckpointError(
                    f"{owner}: its data file {self.name} is not a regular file (a pipe or a device), "
                    "so it is not read."
                )
            os.set_blocking(fd, True)
            self.file = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        self.size = st.st_size
        self.map: mmap.mmap | None = (
            mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        )

    @property
    def failed(self) -> bool:
        """Whether a read of it failed, so the folder is opened again (a local file never does)."""
        return False

    def record_bytes(self, start: int, nbytes: int) -> tuple[Any, int]:
        """A buffer holding bytes [start, start + nbytes) of the file, and where they start in it."""
        assert self.map is not None
        return self.map, start

    def close(self) -> None:
        if self.map is not None:
            with contextlib.suppress(BufferError):  # tensors still view it: it goes when they do
                self.map.close()
            self.map = None
        self.file.close()


class _RangedDataFile(_DataFile):
    """A data file read by ranges where it lives: each chunk's record fetched when it is read."""

    def __init__(self, buffer: RangeSource) -> None:
        self.file, self.size, self.map = buffer, len(buffer), None

    @property
    def failed(self) -> bool:
        return bool(self.file.failed)

    def record_bytes(self, start: int, nbytes: int) -> tuple[Any, int]:
        return self.file[start : start + nbytes], 0


class DcpFolder(TensorSource):
    """A torch.distributed.checkpoint folder: each tensor from its chunks, read directly."""

    def __init__(self, layout: Layout, index: CheckpointIndex, open_piece: OpenPiece | None = None) -> None:
        super().__init__(layout.path, index, os.path.join(layout.folder, DCP_METADATA))
        self.folder = layout.folder
        self._open_piece = open_piece
        self._files: OrderedDict[str, _DataFile] = OrderedDict()
        self._records: dict[tuple[str, int, int], ChunkRecord] = {}

    def is_current(self) -> bool:
        return super().is_current() and not any(f.failed for f in self._files.values())

    def _file(self, rel: str) -> _DataFile:
        found = self._files.get(rel)
        if found is not None:
            self._files.move_to_end(rel)
            return found
        if self._open_piece is None:
            opened = _DataFile(shard_path(self.folder, rel, self.name), self.name)
        else:
            opened = _RangedDataFile(self._open_piece(rel))
        self._files[rel] = opened
        while len(self._files) > MAX_OPEN_FILES:
            self._files.popitem(last=False)[1].close()
        return opened

    def _chunk(self, info: TensorInfo, chunk: ChunkInfo, label: str) -> TensorArray:
        """One chunk's tensor as a view of its mapped data file."""
        what = f"a chunk of {label} in {chunk.file}"
        data = self._file(chunk.file)
        end = chunk.byte_offset + chunk.byte_length
        if chunk.byte_offset < 0 or chunk.byte_length < 0 or end > data.size:
            raise CheckpointError(f"{self.name} is truncated: {what} lies beyond the end of its data file.")
        key = (chunk.file, chunk.byte_offset, chunk.byte_length)
        record = self._records.get(key)
        if record is None:
            record = chunk_record(data.file, chunk.byte_offset, chunk.byte_length, what)
            self._records[key] = record
        if record.dtype != info.dtype or record.shape != chunk.sizes:
            raise CheckpointError(
                f"{self.name}: {what} holds {record.dtype}{list(record.shape)}, not the "
                f"{info.dtype}{list(chunk.sizes)} its {DCP_METADATA} says."
            )
        view = TensorInfo(
            shape=record.shape, dtype=record.dtype, saved_device="cpu", storage_key="chunk",
            storage_offset=record.storage_offset, stride=record.stride,
            storage_nbytes=record.storage_nbytes, itemsize=record.itemsize,
        )  # fmt: skip
        buffer, start = data.record_bytes(record.data.offset, record.data.nbytes)
        available = min(record.data.nbytes, len(buffer) - start)
        return mapped_view(buffer, start, available, view, what, self.name)

    def read_array(self, info: TensorInfo, label: str = "the tensor") -> TensorArray:
        check_dtype(info, label, self.name)
        check_view(info, label, self.name)
        shape = tuple(info.shape)
        if info.numel == 0:
            return TensorArray(info.dtype, np.empty(0, dtype=np.uint8), shape, contiguous_strides(shape))
        chunks = [c for c in info.chunks if all(c.sizes)]
        _check_cover(info, chunks, label, self.name)
        if len(chunks) == 1:
            return self._chunk(info, chunks[0], label)
        parts = [(c, self._chunk(info, c, label)) for c in chunks]
        # bounded: the chunks cover it once, from real data
        out = TensorArray(info.dtype, np.empty(info.numel * info.itemsize, dtype=np.uint8), shape,
                          contiguous_strides(shape))  # fmt: skip
        whole = out.bits()
        for chunk, part in parts:
            whole[tuple(slice(o, o + s) for o, s in zip(chunk.offsets, chunk.sizes, strict=True))] = (
                part.bits()
            )
        return out

    def file_range(self, info: TensorInfo) -> tuple[str, int] | None:
        chunks = [c for c in info.chunks if all(c.sizes)]
        if len(chunks) != 1 or self._open_piece is not None:  # a remote folder's bytes lie in no local file
            return None
        c = chunks[0]
        record = self._records.get((c.file, c.byte_offset, c.byte_length))
        return (os.path.join(self.folder, c.file), record.data.offset) if record is not None else None

    def load_chunk(
        self, chunk: ChunkInfo, options: LoadOptions, classify: Classify, map_location: Any
    ) -> str:
        """``torch.load`` one chunk (weights only, ``map_location`` as the loader made it from the
        user's); the device it lands on. The one method of this module that imports torch."""
        import torch

        data = self._file(chunk.file)
        end = chunk.byte_offset + chunk.byte_length
        if chunk.byte_offset < 0 or chunk.byte_length < 0 or end > data.size or data.map is None:
            raise CheckpointError(f"{self.name} is truncated: a chunk lies beyond the end of {chunk.file}.")
        raw = data.map[chunk.byte_offset : end]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                part: Any = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
        except Exception as exc:
            raise classify(os.path.join(self.folder, chunk.file), options, exc, raw[:16]) from None
        if not isinstance(part, torch.Tensor):
            raise CheckpointError(f"{self.name}: a chunk in {chunk.file} does not hold a tensor.")
        return str(part.device)

    def release(self, node: Node) -> None:
        advice = getattr(mmap, "MADV_DONTNEED", None)
        info = node.tensor
        if advice is None or info is None:
            return
        for chunk in info.chunks:
            data = self._files.get(chunk.file)
            if data is None or data.map is None:
                continue
            start = chunk.byte_offset - chunk.byte_offset % mmap.PAGESIZE
            end = min(chunk.byte_offset + chunk.byte_length, data.size)
            if end > start:
                with contextlib.suppress(OSError, ValueError):
                    data.map.madvise(advice, start, end - start)

    def close(self) -> None:
        while self._files:
            self._files.popitem()[1].close()


def _check_cover(info: TensorInfo, chunks: list[ChunkInfo], label: str, name: str) -> None:
    """The chunks must cover the tensor exactly once: as many elements, no two overlapping."""
    if not chunks:
        raise CheckpointError(f"{label} in {name} has no chunk of data, so its values cannot be read.")
    if len(chunks) > MAX_CHUNKS_PER_TENSOR:
        raise CheckpointError(
            f"{label} in {name} is split into {len(chunks):,} chunks, more than the "
            f"{MAX_CHUNKS_PER_TENSOR:,} this reader assembles."
        )
    total = 0
    for c in chunks:
        n = 1
        for s in c.sizes:
            n *= s
        total += n
    if total != info.numel:
        raise CheckpointError(
            f"{name}: the chunks of {label} hold {total:,} elements for a tensor of {info.numel:,}, "
            "so its values are not read."
        )
    if len(chunks) > 1:
        lo = np.array([c.offsets for c in chunks], dtype=np.int64)
        hi = lo + np.array([c.sizes for c in chunks], dtype=np.int64)
        for i in range(len(chunks) - 1):
            overlap = (np.maximum(lo[i], lo[i + 1 :]) < np.minimum(hi[i], hi[i + 1 :])).all(axis=1)
            if bool(overlap.any()):
                raise CheckpointError(f"{name}: two chunks of {label} overlap, so its values are not read.")


# -- loading with torch (``info --load``) ---------------------------------------------------------------


class _Loaded(Protocol):
    devices: list[tuple[tuple[PathPart, ...], str]]
    seconds: float
    warnings: list[str]


#: What ``torch.load`` raised, as the loader's sentence: (file, options, exception, first bytes).
Classify = Callable[[str, LoadOptions, BaseException, bytes], Exception]


def load_pieces(
    layout: Layout,
    options: LoadOptions,
    load_file: Callable[[str, LoadOptions], _Loaded],
    classify: Classify,
    chunk_location: Any,
) -> tuple[list[tuple[tuple[PathPart, ...], str]], float, list[str]]:
    """Load every piece of a set with torch as the loader loads a file: (devices, seconds, notes).

    An HF set loads each of its shards (each with the file's own rules) and merges what they hold.
    A DCP folder loads each chunk with ``torch.load(weights_only=True)`` and the user's map location,
    as torch's own DCP reader does for chunks, but its ``.metadata`` is never unpickled (torch's
    reader uses plain ``pickle.load`` there, which would run whatever it names): the chunks are
    found from the static read.
    """
    devices: list[tuple[tuple[PathPart, ...], str]] = []
    notes: list[str] = []
    if layout.kind is LayoutKind.HF_SHARD_SET:
        seconds = 0.0
        for shard, full in layout.shard_files():
            if not os.path.isfile(full):
                notes.append(f"the shard {shard} is missing, so its tensors were not loaded")
                continue
            loaded = load_file(full, options)
            devices.extend(loaded.devices)
            seconds += loaded.seconds
            notes.extend(w for w in loaded.warnings if w not in notes)
        return devices, seconds, notes
    started = time.perf_counter()
    with DcpFolder(layout, peek(layout.path)) as folder:
        assert isinstance(folder, DcpFolder)
        for node in folder.tensor_nodes():
            info = node.tensor
            assert info is not None
            device = ""
            for chunk in info.chunks:
                device = folder.load_chunk(chunk, options, classify, chunk_location)
            if device:
                devices.append((node.path, device))
    return devices, time.perf_counter() - started, notes
