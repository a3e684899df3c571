"""Where each storage's bytes lie inside a checkpoint file, so one tensor can be read on its own.

The static read (``peek``) says which storage record a tensor views; this module says at which byte
of the file that record starts and how many bytes the file really holds for it: the member's data
in a torch zip, the record after the pickles in a legacy file, ``data_offsets`` in safetensors.
Standard library only; nothing is executed and no tensor data is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from .errors import CheckpointError
from .model import CheckpointIndex
from .sniff import FileKind, sniff
from .ziparchive import ZipArchive


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
        if self._file is not None:
            self._file.close()
            self._file = None
            self._zip = None

    def __enter__(self) -> StorageLayout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def storage_layout(path: str | os.PathLike[str], index: CheckpointIndex | None = None) -> StorageLayout:
    """Locate the storage records of the checkpoint at ``path`` (torch zip, legacy or safetensors).

    Legacy and safetensors records are where the static read found them (``index``, read now
    when not given); zip records are looked up in the archive's directory on demand. Raises
    ``CheckpointError`` for other formats and for files too damaged to locate anything in.
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
        if kind not in (FileKind.LEGACY_TORCH, FileKind.SAFETENSORS):
            what = what or "not a torch zip, legacy or safetensors file"
            raise CheckpointError(f"{name} holds no tensor data that can be read directly ({what}).")
    except BaseException:
        f.close()
        raise
    f.close()
    if index is None:
        from .peek import peek

        index = peek(p, whole_set=False)
    layout.format = index.format
    layout.byteorder = index.byteorder
    for key, (start, nbytes) in index.storage_spans.items():
        # a file that shrank since it was read holds less than its record declares
        layout._spans[key] = StorageSpan(start, max(0, min(nbytes, size - start)))
    return layout


def _locate_zip(layout: StorageLayout, f: BinaryIO) -> None:
    """Records are found as torch finds them: in the first record's folder, names matched as its
    zip reader matches them."""
    archive = ZipArchive(f, layout.file_size, layout.name)
    if not archive.folder or archive.locate(archive.folder + b"/data.pkl") is None:
        raise CheckpointError(f"{layout.name} is a zip archive but not a PyTorch checkpoint.")
    layout.format = "torch-zip"
    layout._zip, layout._file = archive, f
    order = archive.locate(archive.folder + b"/byteorder")
    if order is not None:
        text = archive.read(order, 16).decode("ascii", "replace").strip()
        layout.byteorder = "big" if text == "big" else "little"
