"""Where each storage's bytes lie inside a checkpoint file, so one tensor can be read on its own.

The static read (``peek``) says which storage record a tensor views, in which format, and where
legacy and safetensors records lie; this module says at which byte of the file a zip record
starts and how many bytes the file really holds for it (zip members are looked up in the archive's
directory on demand). A torch.distributed.checkpoint chunk is a small ``torch.save`` archive inside
a data file: ``chunk_record`` reads its pickle with the safe interpreter and locates its bytes.
Standard library only; nothing is executed and no tensor data is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from .dtypes import ITEMSIZE
from .errors import CheckpointError
from .formatting import display_name
from .globals_policy import classify
from .model import CheckpointIndex, GlobalClass
from .torch_pickle import TensorRef, TorchPickleReader
from .unpickler import Global, Limits, NeedMoreData, PickleError, SafeUnpickler
from .ziparchive import SeekableFile, ZipArchive

#: A chunk's pickle describes one tensor: a few hundred bytes.
MAX_CHUNK_PICKLE = 1 << 16


@dataclass(frozen=True, slots=True)
class StorageSpan:
    """One storage record: its first byte in the file and how many bytes the file holds for it."""

    offset: int
    nbytes: int


class StorageLayout:
    """The storage records of one file, located on demand (zip) or all at once (legacy, safetensors).

    ``byteorder`` is ``"little"`` or ``"big"`` as the file declares it (torch zips and legacy files
    say so; safetensors is always little-endian).
    """

    def __init__(self, path: str, file_size: int, name: str) -> None:
        self.path = path
        self.file_size = file_size
        self.name = name
        self.format = ""
        self.byteorder = "little"
        self._spans: dict[str, StorageSpan] = {}
        self._zip: ZipArchive | None = None
        self._file: BinaryIO | None = None

    def span(self, key: str) -> StorageSpan:
        """The bytes of storage ``key``; raises ``CheckpointError`` when the file has no such record."""
        found = self._spans.get(key)
        if found is not None:
            return found
        if self._zip is None:
            raise CheckpointError(f"{self.name} has no data for storage {key}.")
        member = self._zip.locate(self._zip.folder + b"/data/" + key.encode("utf-8", "surrogatepass"))
        if member is None:
            raise CheckpointError(f"{self.name} is damaged: the storage record data/{key} is missing.")
        if member.encrypted or member.method != 0:
            raise CheckpointError(
                f"{self.name}: the storage record data/{key} is compressed or encrypted; torch never "
                "writes that, so its values are not read."
            )
        start = self._zip.data_offset(member)
        span = StorageSpan(start, max(0, min(member.size, self.file_size - start)))
        self._spans[key] = span
        return span

    def close(self) -> None:
        self._zip = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> StorageLayout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def storage_layout(
    path: str | os.PathLike[str], index: CheckpointIndex, opened: tuple[SeekableFile, int] | None = None
) -> StorageLayout:
    """Locate the storage records of the file at ``path`` that the static read ``index`` describes.

    The format and the archive folder are the static read's (nothing is sniffed again); legacy and
    safetensors records are where it found them. ``opened`` is the file's bytes and size when they
    come from elsewhere than the path (a remote file); the caller keeps it open. Raises
    ``CheckpointError`` for other formats.
    """
    p = os.fspath(path)
    name = display_name(p)
    if not index.format.direct_reads:
        raise CheckpointError(f"{name} holds no tensor data that can be read directly ({index.format}).")
    if opened is not None:
        layout = StorageLayout(p, opened[1], name)
        layout.format = index.format
        if index.format.zip_records:
            _locate_zip(layout, opened[0])  # the caller's file, not the layout's, to close
            return layout
        return _listed_spans(layout, index)
    try:
        f = open(p, "rb")  # noqa: SIM115 (a zip layout keeps it open until close())
    except OSError as exc:
        raise CheckpointError(f"{name} cannot be read: {exc.strerror or exc}.") from None
    try:
        size = os.fstat(f.fileno()).st_size
        layout = StorageLayout(p, size, name)
        layout.format = index.format
        if index.format.zip_records:
            _locate_zip(layout, f)
            layout._file = f
            return layout
    except BaseException:
        f.close()
        raise
    f.close()
    return _listed_spans(layout, index)


def _listed_spans(layout: StorageLayout, index: CheckpointIndex) -> StorageLayout:
    layout.byteorder = index.byteorder
    for key, (start, nbytes) in index.storage_spans.items():
        # a file that shrank since it was read holds less than its record declares
        layout._spans[key] = StorageSpan(start, max(0, min(nbytes, layout.file_size - start)))
    return layout


def _locate_zip(layout: StorageLayout, f: SeekableFile) -> None:
    """Records are found as torch finds them: in the first record's folder, names matched as its
    zip reader matches them."""
    archive = ZipArchive(f, layout.file_size, layout.name)
    if not archive.folder or archive.locate(archive.folder + b"/data.pkl") is None:
        raise CheckpointError(f"{layout.name} is a zip archive but not a PyTorch checkpoint.")
    layout._zip = archive
    order = archive.locate(archive.folder + b"/byteorder")
    if order is not None:
        text = archive.read(order, 16).decode("ascii", "replace").strip()
        layout.byteorder = "big" if text == "big" else "little"


# -- torch.distributed.checkpoint chunks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """The tensor one DCP chunk holds and where its storage's bytes lie in the data file."""

    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_offset: int  # in elements
    storage_nbytes: int  # as the chunk's pickle declares it
    itemsize: int
    data: StorageSpan  # in the data file, clipped to the chunk's byte range


class _Window:
    """A byte range of a file seen as a file of its own (what ``ZipArchive`` reads)."""

    def __init__(self, f: SeekableFile, start: int, length: int) -> None:
        self.f, self.start, self.length, self.pos = f, start, length, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.length + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.length - self.pos if n < 0 else max(0, min(n, self.length - self.pos))
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        self.pos += len(data)
        return data


def chunk_record(f: SeekableFile, start: int, length: int, what: str) -> ChunkRecord:
    """The tensor of the ``torch.save`` archive at ``start`` (``length`` bytes) of a DCP data file.

    Only what torch's DCP writer produces is accepted: one archive holding one ``data.pkl`` that
    rebuilds one tensor from one storage record, using globals torch's weights-only rules allow.
    ``what`` names the chunk in sentences ("a chunk of w in __0_0.distcp").
    """
    window = _Window(f, start, length)
    archive = ZipArchive(window, length, what)
    pickles = [m for m in archive.members if m.name.endswith("/data.pkl") and m.name.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError(f"{what} is not a torch.save archive of one tensor, so it is not read.")
    prefix = pickles[0].name[: -len("data.pkl")]
    data = archive.read(pickles[0], MAX_CHUNK_PICKLE)
    hooks = TorchPickleReader()
    refused: list[str] = []

    def on_global(g: Global) -> None:
        if classify(g.module, g.name) is not GlobalClass.ALLOWED:
            refused.append(g.qualname)

    up = SafeUnpickler(
        data, 0, name=what, on_global=on_global, reduce_hook=hooks.reduce_hook,
        hooked_calls=hooks.REDUCED_CALLS, persistent_load=hooks.persistent_load,
        limits=Limits(max_opcodes=10_000),
    )  # fmt: skip
    try:
        top, _ = up.load()
    except (PickleError, NeedMoreData):
        raise CheckpointError(f"{what} holds a damaged pickle, so it is not read.") from None
    if refused:
        raise CheckpointError(
            f"{what} names {refused[0][:200]}, which a tensor chunk never needs; it is not read."
        )
    if not isinstance(top, TensorRef) or top.storage is None or top.layout != "strided":
        raise CheckpointError(f"{what} does not hold a plain tensor, so it is not read.")
    order = archive.by_name.get(f"{prefix}byteorder")
    if order is not None and archive.read(order, 16).decode("ascii", "replace").strip() == "big":
        raise CheckpointError(f"{what} was saved on a big-endian machine; its values are not read.")
    member = archive.by_name.get(f"{prefix}data/{top.storage.key}")
    if member is None or member.encrypted or member.method != 0:
        raise CheckpointError(f"{what} lacks the record of its values (or it is compressed).")
    begin = archive.data_offset(member)
    available = max(0, min(member.size, length - begin))
    return ChunkRecord(
        dtype=top.dtype,
        shape=top.shape,
        stride=top.stride,
        storage_offset=top.offset,
        storage_nbytes=top.storage.nbytes,
        itemsize=ITEMSIZE[top.dtype],
        data=StorageSpan(start + begin, available),
    )
