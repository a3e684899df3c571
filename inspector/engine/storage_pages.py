"""The pages of file-mapped torch storages: mapped in one call before a read, handed back after.

An export reads a mapped source storage by storage; handing each one's pages back to the kernel
once it is written keeps the resident size near the largest tensor, not the whole file.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MADV_DONTNEED = 4
_MADV_POPULATE_READ = 22  # Linux 5.14+; older kernels answer EINVAL and pages fault in as usual


def populate(storage: torch.UntypedStorage) -> None:
    """Map a file-backed storage's pages in one call (MADV_POPULATE_READ) instead of one fault each."""
    nbytes = storage.nbytes()
    if nbytes < (1 << 20) or sys.platform != "linux":
        return
    start = storage.data_ptr() & ~(_PAGE - 1)
    end = (storage.data_ptr() + nbytes + _PAGE - 1) & ~(_PAGE - 1)
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_POPULATE_READ)


def drop_pages_range(storage: torch.UntypedStorage, offset: int, nbytes: int) -> None:
    """``drop_pages`` for a byte range of a file-mapped storage."""
    if nbytes < _PAGE or sys.platform != "linux":
        return
    start = (storage.data_ptr() + offset) & ~(_PAGE - 1)
    end = (storage.data_ptr() + offset + nbytes + _PAGE - 1) & ~(_PAGE - 1)
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


def drop_pages(storage: torch.UntypedStorage) -> None:
    """Give the pages of a storage that lives in a private read-only file mapping back to the kernel.

    Only for storages of an ``mmap=True`` load: unmodified private file pages are re-read from the
    file if touched again, so nothing is lost; never call it on heap memory.
    """
    drop_pages_range(storage, 0, storage.nbytes())


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return _LIBC
