"""The static read ("peek"): a checkpoint's whole tree in milliseconds, importing and executing nothing.

A path is resolved to its layout (``core/layout.py``): a layout of several files goes to its
reader (an HF shard set, a DCP folder), a single file to the first reader of ``core/readers.py``
whose probe takes its first bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import BinaryIO, Protocol, cast

from .collector import collector_paused
from .dcp_folder import DcpFolderReader
from .errors import CheckpointError, DamagedCheckpointError, NotACheckpointError, ReaderOutOfMemory
from .formats import Format
from .formatting import display_name
from .hf_shard_set import HfShardSetReader
from .layout import Layout, LayoutKind, resolve_layout
from .model import CheckpointIndex
from .read_progress import START, report
from .readers import reader_for
from .reading import ByteSource, OpenedFile, ReadState

#: The static read, the readers of layouts, what it raises besides ``CheckpointError``, and the
#: name it gives files in sentences.
__all__ = [
    "LAYOUT_READERS",
    "DamagedCheckpointError",
    "LayoutReader",
    "ReaderOutOfMemory",
    "display_name",
    "peek",
    "peek_source",
]


class LayoutReader(Protocol):
    """The reader of a layout of several files; ``read_file`` reads one of them as a file."""

    @property
    def formats(self) -> tuple[Format, ...]: ...

    def read(self, layout: Layout, read_file: Callable[[str], CheckpointIndex]) -> CheckpointIndex: ...


LAYOUT_READERS: dict[LayoutKind, LayoutReader] = {
    LayoutKind.HF_SHARD_SET: HfShardSetReader(),
    LayoutKind.DCP_FOLDER: DcpFolderReader(),
}


def peek(path: str | os.PathLike[str], *, whole_set: bool = True) -> CheckpointIndex:
    """Read a checkpoint statically. Raises ``CheckpointError`` with a sentence about the file.

    A folder is read as a torch.distributed.checkpoint folder; a shard of a Hugging Face set (a file
    an ``*.index.json`` beside it names) is read as the whole set unless ``whole_set`` is False.

    The collector is paused meanwhile, and settled at the end (``collector_paused``).
    """
    with collector_paused(settle=True):
        return _peek(path, whole_set)


def _peek(path: str | os.PathLike[str], whole_set: bool = True) -> CheckpointIndex:
    p = os.fspath(path)
    layout = resolve_layout(p, whole_set=whole_set)
    several = LAYOUT_READERS.get(layout.kind)
    if several is not None:
        return several.read(layout, _peek_one_file)
    return _peek_file(p)


def _peek_one_file(path: str) -> CheckpointIndex:
    return _peek(path, whole_set=False)


def _peek_file(p: str) -> CheckpointIndex:
    """One file, read by the first reader whose probe takes it."""
    name = display_name(p)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _os_error(name, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{name} is not a regular file (a pipe or a device), so it is not read.")
    size = st.st_size
    if size == 0:
        raise NotACheckpointError(f"{name} is empty (0 bytes), not a checkpoint.")
    try:
        with open(p, "rb") as f:
            return read_source(f, p, size)
    except OSError as exc:
        raise _os_error(name, exc) from None


def peek_source(source: ByteSource, path: str, size: int) -> CheckpointIndex:
    """Read statically the file whose bytes ``source`` gives (``size`` of them); ``path`` names it.

    The same readers and the same refusals as for a local path: a remote file is judged exactly
    like a local one. Raises ``CheckpointError`` with a sentence about the file.
    """
    with collector_paused(settle=True):
        if size == 0:
            raise CheckpointError(f"{display_name(path)} is empty (0 bytes), not a checkpoint.")
        return read_source(source, path, size)


def read_source(source: ByteSource, p: str, size: int) -> CheckpointIndex:
    """One file's bytes, read by the first reader whose probe takes them."""
    name = display_name(p)
    report(START)
    try:
        f = cast(BinaryIO, source)  # the readers only seek and read (``ByteSource``)
        f.seek(0)
        head = f.read(4096)
        reader = reader_for(head, size)
        state = ReadState(name, size)
        try:
            index = reader.read(OpenedFile(f, p, size, head), state, [])
        except CheckpointError as exc:
            raise state.damaged(exc) from None
        if state.unread:
            raise DamagedCheckpointError(
                f"{name} could not be read in full, so it is not shown as safe: {state.unread[0]}.",
                None, list(state.globals), state.differentials,
            )  # fmt: skip
        return index
    except MemoryError:
        raise ReaderOutOfMemory(f"{name} needs more memory to read than this machine has.") from None


def _os_error(name: str, exc: OSError) -> CheckpointError:
    """The sentence for a file the system would not let us stat or read."""
    if isinstance(exc, FileNotFoundError):
        return CheckpointError(f"{name} does not exist.")
    if isinstance(exc, PermissionError):
        return CheckpointError(f"{name} cannot be read: permission denied.")
    if isinstance(exc, IsADirectoryError):
        return CheckpointError(f"{name} is a folder, not a checkpoint file.")
    return CheckpointError(f"{name} cannot be read: {exc.strerror or exc}.")
