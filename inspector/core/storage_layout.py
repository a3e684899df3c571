"""Where each storage's bytes lie inside a checkpoint file, so one tensor can be read on its own.

The static read (``peek``) says which storage record a tensor views; this module says at which byte
of the file that record starts and how many bytes the file really holds for it: the member's data
in a torch zip, the record after the pickles in a legacy file, ``data_offsets`` in safetensors.
Standard library only; nothing is executed and no tensor data is read.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import CheckpointError
from .safetensors_header import MAX_HEADER
from .sniff import LEGACY_MAGIC, FileKind, sniff
from .torch_pickle import TorchPickleReader
from .unpickler import Limits, NeedMoreData, PickleError, SafeUnpickler
from .ziparchive import ZipArchive

_MAX_PICKLES = 1 << 30


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
        self._zip_prefix = ""
        self._file: BinaryIO | None = None

    def span(self, key: str) -> StorageSpan:
        """The bytes of storage ``key``; raises ``CheckpointError`` when the file has no such record."""
        found = self._spans.get(key)
        if found is not None:
            return found
        if self._zip is None:
            raise CheckpointError(f"{self.name} has no data for storage {key}.")
        member = self._zip.by_name.get(f"{self._zip_prefix}data/{key}")
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
        if self._file is not None:
            self._file.close()
            self._file = None
            self._zip = None

    def __enter__(self) -> StorageLayout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def storage_layout(path: str | os.PathLike[str]) -> StorageLayout:
    """Locate the storage records of the checkpoint at ``path`` (torch zip, legacy or safetensors).

    Raises ``CheckpointError`` for other formats and for files too damaged to locate anything in.
    """
    p = os.fspath(path)
    name = f"“{os.path.basename(os.path.normpath(p)) or p}”"
    try:
        f = open(p, "rb")  # noqa: SIM115 (a zip layout keeps it open until close())
    except OSError as exc:
        raise CheckpointError(f"{name} cannot be read: {exc.strerror or exc}.") from None
    try:
        size = os.fstat(f.fileno()).st_size
        layout = StorageLayout(p, size, name)
        kind, what = sniff(f.read(4096), size)
        if kind is FileKind.ZIP:
            _locate_zip(layout, f)
            return layout
        if kind is FileKind.LEGACY_TORCH:
            layout.format = "torch-legacy"
            _locate_legacy(layout, f)
        elif kind is FileKind.SAFETENSORS:
            layout.format = "safetensors"
            _locate_safetensors(layout, f)
        else:
            what = what or "not a torch zip, legacy or safetensors file"
            raise CheckpointError(f"{name} holds no tensor data that can be read directly ({what}).")
    except BaseException:
        f.close()
        raise
    f.close()
    return layout


def _locate_zip(layout: StorageLayout, f: BinaryIO) -> None:
    archive = ZipArchive(f, layout.file_size, layout.name)
    pickles = [m.name for m in archive.members if m.name.rsplit("/", 1)[-1] == "data.pkl"
               and m.name.count("/") <= 1]  # fmt: skip
    if not pickles:
        raise CheckpointError(f"{layout.name} is a zip archive but not a PyTorch checkpoint.")
    prefix = pickles[0][: -len("data.pkl")]
    layout.format = "torch-zip"
    layout._zip, layout._zip_prefix, layout._file = archive, prefix, f
    order = archive.by_name.get(f"{prefix}byteorder")
    if order is not None:
        text = archive.read(order, 16).decode("ascii", "replace").strip()
        layout.byteorder = "big" if text == "big" else "little"


def _locate_legacy(layout: StorageLayout, f: BinaryIO) -> None:
    """Re-walk the five pickles to find where the storage records start, then step over each."""
    want = min(layout.file_size, 16 << 20)
    while True:
        f.seek(0)
        data = f.read(want)
        try:
            keys, storages, pos, little = _legacy_pickles(data, layout.name)
            break
        except NeedMoreData:
            if want >= layout.file_size or want >= _MAX_PICKLES:
                raise CheckpointError(
                    f"{layout.name} is truncated: it stops in the middle of a pickle."
                ) from None
            want = min(layout.file_size, want * 4, _MAX_PICKLES)
    layout.byteorder = "little" if little else "big"
    for key in keys:
        f.seek(pos)
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{layout.name} is truncated: the data of storage {key} is missing.")
        (numel,) = struct.unpack("<q", raw)
        if numel < 0:
            raise CheckpointError(f"{layout.name} is damaged: storage {key} has a negative size.")
        ref = storages.get(key)
        itemsize = ref.nbytes // ref.numel if ref is not None and ref.numel else 1
        start = pos + 8
        nbytes = numel * itemsize
        layout._spans[key] = StorageSpan(start, max(0, min(nbytes, layout.file_size - start)))
        pos = start + nbytes


def _legacy_pickles(data: bytes, name: str) -> tuple[list[str], dict[str, Any], int, bool]:
    torch = TorchPickleReader()
    small = Limits(max_opcodes=10_000)

    def load(start: int, which: str, limits: Limits | None = None, hooks: bool = False) -> tuple[Any, int]:
        up = SafeUnpickler(
            data, start, name=which, limits=limits,
            reduce_hook=torch.reduce_hook if hooks else None,
            persistent_load=torch.persistent_load if hooks else None,
        )  # fmt: skip
        try:
            return up.load()
        except PickleError as exc:
            raise CheckpointError(f"{name} cannot be read: {exc.message}", exc.details) from None

    magic, pos = load(0, "magic number pickle", small)
    if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{name} has an invalid legacy magic number.")
    _proto, pos = load(pos, "protocol pickle", small)
    sys_info, pos = load(pos, "sys-info pickle", small)
    _top, pos = load(pos, "object pickle", hooks=True)
    keys, pos = load(pos, "storage-keys pickle")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{name} is damaged: its list of storage keys is not a list of names.")
    little = True
    items = getattr(sys_info, "items", None)
    if isinstance(items, list):
        little = all(v is not False for k, v in items if k == "little_endian")
    return keys, torch.storages, pos, little


def _locate_safetensors(layout: StorageLayout, f: BinaryIO) -> None:
    f.seek(0)
    head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{layout.name} is truncated: its safetensors header is missing.")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER or 8 + n > layout.file_size:
        raise CheckpointError(f"{layout.name} has a safetensors header that runs past the end of the file.")
    try:
        header = json.loads(f.read(n))
    except ValueError as exc:
        raise CheckpointError(
            f"{layout.name} has a safetensors header that is not valid JSON.", str(exc)
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{layout.name} has a safetensors header that is not a JSON object.")
    base = 8 + n
    for key, spec in header.items():
        if key == "__metadata__" or not isinstance(spec, dict):
            continue
        offs = spec.get("data_offsets")
        if isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and o >= 0 for o in offs):
            begin, end = offs
            start = base + begin
            layout._spans[key] = StorageSpan(start, max(0, min(end - begin, layout.file_size - start)))
