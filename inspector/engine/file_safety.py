"""Writing files without ever losing one: which targets may be written, where the temporary file
goes, writing all of the bytes, fsync, the rename into place, free space, removing what a failed
write left, and a full disk or a refused write as a sentence.

The temporary path is the plan's (``ExportPlan.temp_path``, core's one rule: hidden, unique, beside
the target); a file and a folder export use it alike, and the engine after a failure and the caller
after a kill clean up with the same ``discard_partial``, so both find what was left by that name.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, BinaryIO

from inspector.core.export_plan import discard_partial as discard_partial
from inspector.core.export_plan import replaced_path
from inspector.core.formatting import format_bytes
from inspector.remote.locations import is_url

from .export_results import ExportError

_RENAME_EXCHANGE = 2  # Linux renameat2 flag: swap two paths atomically
_AT_FDCWD = -100
_SYNC_FILE_RANGE_WRITE = 2  # Linux sync_file_range flag: start writing dirty pages, wait for none


def check_target(source: str, target: str, *, force: bool, folder: bool) -> None:
    """Refuse, before anything is written, a target that is the source itself, one of the other kind
    (a folder for a file, a file or link for a folder), one that exists unless ``force`` lets it be
    replaced, or one whose folder does not exist."""
    name = os.path.basename(os.path.abspath(target)) or target
    try:
        src = None if is_url(source) else os.stat(source)  # a remote source is never the local target
    except OSError as exc:
        raise ExportError(
            f"“{os.path.basename(source)}” cannot be read: {exc.strerror}.", str(exc), "refused"
        ) from None
    try:
        dst = os.lstat(target) if folder else os.stat(target)
    except FileNotFoundError:
        dst = None
    except OSError as exc:
        raise ExportError(f"“{name}” cannot be checked: {exc.strerror}.", str(exc), "refused") from None
    if dst is not None:
        if src is not None and (dst.st_dev, dst.st_ino) == (src.st_dev, src.st_ino):
            raise ExportError(
                f"“{name}” is the source file itself (the same file under another name or link); "
                "an export never writes over its source.",
                None,
                "refused",
            )
        if folder and not stat.S_ISDIR(dst.st_mode):
            raise ExportError(f"“{name}” exists and is not a folder; choose a folder name.", None, "refused")
        if not folder and stat.S_ISDIR(dst.st_mode):
            raise ExportError(f"“{name}” is a folder; choose a file name.", None, "refused")
        if not force:
            raise ExportError(
                f"“{name}” already exists; choose another name or allow replacing it (--force).",
                None,
                "refused",
            )
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise ExportError(f"The folder “{parent}” does not exist.", None, "refused")


def temp_beside(temp: str, target: str) -> str:
    """``temp``, after checking it lies in the target's folder (so the final rename is atomic)."""
    if os.path.dirname(os.path.abspath(temp)) != os.path.dirname(os.path.abspath(target)):
        raise ExportError("The temporary file must lie beside the target.", temp, "refused")
    return temp


def write_all(f: BinaryIO, data: Any) -> None:
    """All of ``data`` (bytes or a buffer) into ``f``: an unbuffered file may take a large write in parts."""
    view = memoryview(data).cast("B")
    while view:
        written = f.write(view)
        view = view[written if written is not None else len(view) :]


def copy_range(out_fd: int, in_fd: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes of the file ``in_fd`` from ``offset`` to the output's position, in the
    kernel (as ``shutil.copyfile`` does)."""
    while count > 0:
        sent = os.sendfile(out_fd, in_fd, offset, count)
        if sent == 0:
            raise OSError(errno.EIO, "the source file ended early")
        offset += sent
        count -= sent


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackgroundSync:
    """A file handed to the disk on a thread while it is still being written (Linux
    ``sync_file_range``; elsewhere only the fsync), then fsynced there: the disk works during the
    copy, so the final fsync, which alone makes the file durable, has little left to wait for."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync")
        self._fd: int | None = None
        self._queued: Future[None] | None = None
        self._start = _sync_file_range()

    def written(self) -> None:
        """More of the file is written: start writing it to the disk (once per request queued)."""
        if self._start is None:
            return
        queued = self._queued
        if queued is not None and not queued.running() and not queued.done():
            return  # the queued request reaches these pages too
        self._queued = self._pool.submit(self._write_back)

    def fsync(self) -> Future[None]:
        """The fsync of the whole file, after what was started before it."""
        return self._pool.submit(fsync_path, self._path)

    def _write_back(self) -> None:
        with contextlib.suppress(OSError):  # only a head start: the fsync reports what fails
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDONLY)
            assert self._start is not None
            self._start(self._fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # 0, 0: the whole file

    def __enter__(self) -> BackgroundSync:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sync_file_range() -> Any:
    """libc's ``sync_file_range``, or None where this system has none."""
    if sys.platform != "linux":
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def fsync_dir(folder: str) -> None:
    """Make a rename inside ``folder`` durable (where the file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_into_place(temp: str, target: str) -> None:
    """Rename the written ``temp`` (a file or a folder) to ``target`` and make it durable.

    A folder replaces an existing one by an atomic exchange where Linux offers it: at every
    instant the target is either the old folder or the new one, and the old one ends up under the
    temporary name, which is then removed. Elsewhere the old folder is moved aside first (to
    ``replaced_path``, where ``discard_partial`` finds it after a kill) and back if the new one
    cannot be moved in.
    """
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(temp) and os.path.isdir(target) and not os.path.islink(target):
        if not _exchange(temp, target):
            old = replaced_path(temp)
            os.rename(target, old)
            try:
                os.rename(temp, target)
            except BaseException:
                os.rename(old, target)
                raise
            temp = old
        fsync_dir(folder)
        shutil.rmtree(temp, ignore_errors=True)
        return
    os.replace(temp, target)
    fsync_dir(folder)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def check_free_space(target: str, estimate: int) -> None:
    """Refuse before writing when the target's disk has less free space than ``estimate`` bytes."""
    folder = os.path.dirname(os.path.abspath(target))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if estimate > free:
        raise disk_full(target, estimate, f"free: {free} bytes")


def disk_full(target: str, estimate: int | None, details: str | None) -> ExportError:
    """The sentence for a disk too full to hold ``target`` (about ``estimate`` bytes, when known)."""
    folder = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    if estimate is None:
        return ExportError(
            f"The disk holding “{folder}” is full, so “{name}” could not be written. Nothing was "
            "changed; free some space or choose another folder.",
            details,
            "disk-full",
        )
    return ExportError(
        f"The disk holding “{folder}” is full: “{name}” needs about {format_bytes(estimate)}. "
        "Nothing was written; free some space or choose another folder.",
        details,
        "disk-full",
    )


def write_error(target: str, exc: OSError) -> ExportError:
    """What the system said when writing ``target`` failed, as a sentence."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(target, None, str(exc))
    name = os.path.basename(target)
    if isinstance(exc, PermissionError):
        return ExportError(f"“{name}” cannot be written: permission denied.", str(exc), "failed")
    return ExportError(f"Writing “{name}” failed: {exc.strerror or exc}.", str(exc), "failed")


def looks_like_disk_full(target: str, exc: RuntimeError) -> bool:
    """torch's writers report a full disk as a RuntimeError; tell it from other failures."""
    text = str(exc)
    if "No space left" in text:
        return True
    if "write failed" in text or "file write" in text:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(os.path.dirname(os.path.abspath(target))).free < (64 << 20)
    return False
