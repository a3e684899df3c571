"""A remote file seen as a local one: seek/read and ``len``/slicing over ranged reads.

Bytes are fetched in aligned blocks, each missing run of blocks in one request. The first read of
the file, a read that continues the last one, and a read that ends at the file's end are widened to
a read-ahead window (backward at the end: a zip's directory lies just before its end record); a lone
read elsewhere (a legacy file's storage headers) fetches only its blocks. Fetched blocks are kept,
up to a cap; a read larger than the cache goes straight through, in requests of ``LARGE_READ``
bytes with the running job's check (``between_reads``) between them, so a Cancel stops a large
tensor's fetch. Every request and byte is counted, and all of them together stay within a byte
budget, so no file and no server can make a read fetch without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import overload

from inspector.core.errors import CheckpointError
from inspector.core.formatting import format_bytes

BLOCK = 16 << 10
READ_AHEAD = 256 << 10  # one request for the head of a file, one for its tail, in most checkpoints
FIRST_PICKLE_READ = READ_AHEAD  # a pickle stream is read from the head block at first, not 16 MiB
CACHE_BYTES = 64 << 20
LARGE_READ = 16 << 20  # one request of a read larger than the cache

#: What the running job checks between two requests of a large read (it raises to stop the read).
_BETWEEN_READS: ContextVar[Callable[[], None] | None] = ContextVar("between_reads", default=None)


@contextmanager
def between_reads(check: Callable[[], None]) -> Iterator[None]:
    """Large reads made inside the block call ``check()`` between their requests."""
    token = _BETWEEN_READS.set(check)
    try:
        yield
    finally:
        _BETWEEN_READS.reset(token)


@dataclass
class Transfer:
    """What reading a remote file cost: requests, bytes fetched, and the file's size."""

    requests: int = 0
    fetched: int = 0
    size: int = 0
    etag: str = ""  # the version the first request saw (HTTP ETag, S3 ETag), "" when none was said

    def line(self) -> str:
        """“read 412 KB of 20.1 GB in 3 requests”."""
        what = "request" if self.requests == 1 else "requests"
        return f"read {format_bytes(self.fetched)} of {format_bytes(self.size)} in {self.requests} {what}"


#: Fetches bytes [start, end) of the file; raises ``CheckpointError`` with a sentence.
Fetch = Callable[[int, int], bytes]


class RangeBuffer:
    """``size`` bytes of a remote file, fetched on demand through ``fetch``.

    ``budget`` bounds the bytes all fetches together may bring; ``transfer`` counts them (and is
    shared with the opening request that learned the size).
    """

    def __init__(self, fetch: Fetch, size: int, name: str, transfer: Transfer, budget: int) -> None:
        self._fetch = fetch
        self.size = size
        self.name = name
        self.transfer = transfer
        self.budget = budget
        self.first_read = FIRST_PICKLE_READ
        self.failed = False  # a fetch failed (the file changed, the server broke off): open it again
        self._pos = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._cached = 0

    # -- the file interface the readers use --------------------------------------------------------

    def seek(self, offset: int, whence: int = 0, /) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self.size + offset)
        self._pos = max(0, self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1, /) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        data = self.get(self._pos, end)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._blocks.clear()
        self._cached = 0

    def __enter__(self) -> RangeBuffer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the map interface: len() and slices -------------------------------------------------------

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...

    @overload
    def __getitem__(self, key: int, /) -> int: ...

    def __getitem__(self, key: slice | int, /) -> bytes | int:
        if isinstance(key, int):
            i = key + self.size if key < 0 else key
            if not 0 <= i < self.size:
                raise IndexError("index out of range")
            return self.get(i, i + 1)[0]
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("a remote file is sliced with step 1 only")
        return self.get(start, stop)

    # -- fetching ----------------------------------------------------------------------------------

    def read_through(self, start: int, end: int) -> bytes:
        """Bytes [start, end) in one request, not kept in the block cache (a download's chunk)."""
        start, end = max(0, start), min(end, self.size)
        return self._request(start, end) if end > start else b""

    def get(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file (fewer past its end)."""
        start, end = max(0, start), min(end, self.size)
        if end <= start:
            return b""
        if end - start > CACHE_BYTES:  # a tensor's record: straight through, not cached
            return self._large(start, end)
        first, last = start // BLOCK, (end - 1) // BLOCK
        missing = [b for b in range(first, last + 1) if b not in self._blocks]
        if missing:
            self._fill(missing[0], missing[-1])
        parts = []
        for b in range(first, last + 1):
            self._blocks.move_to_end(b)
            parts.append(self._blocks[b])
        data = b"".join(parts)
        offset = start - first * BLOCK
        return data[offset : offset + end - start]

    def _large(self, start: int, end: int) -> bytes:
        """Bytes [start, end) in requests of ``LARGE_READ``, the running job's check between them."""
        check = _BETWEEN_READS.get()
        parts: list[bytes] = []
        for at in range(start, end, LARGE_READ):
            if check is not None and parts:
                check()
            parts.append(self._request(at, min(end, at + LARGE_READ)))
        return b"".join(parts)

    def _fill(self, first: int, last: int) -> None:
        """Fetch blocks ``first``…``last`` in one request, widened to the read-ahead window."""
        nblocks = -(-self.size // BLOCK)
        want = max(1, READ_AHEAD // BLOCK)
        if last + 1 >= nblocks:  # a read that ends at the file's end: widen backward
            first = min(first, max(0, nblocks - want))
        elif first == 0 or first - 1 in self._blocks:  # the head, or a read that goes on
            last = max(last, min(nblocks - 1, first + want - 1))
        while first < last and first in self._blocks:
            first += 1
        while last > first and last in self._blocks:
            last -= 1
        start, end = first * BLOCK, min(self.size, (last + 1) * BLOCK)
        data = self._request(start, end)
        for i, b in enumerate(range(first, last + 1)):
            if b in self._blocks:
                continue
            block = data[i * BLOCK : (i + 1) * BLOCK]
            self._blocks[b] = block
            self._cached += len(block)
        while self._cached > CACHE_BYTES and len(self._blocks) > last - first + 1:
            _, old = self._blocks.popitem(last=False)
            self._cached -= len(old)

    def _request(self, start: int, end: int) -> bytes:
        if self.transfer.fetched + (end - start) > self.budget:
            raise CheckpointError(
                f"Reading {self.name} would fetch more than {format_bytes(self.budget)}, more than its "
                "tree ever needs; it is not read further."
            )
        try:
            data = self._fetch(start, end)
        except CheckpointError:
            self.failed = True
            raise
        self.transfer.requests += 1
        self.transfer.fetched += len(data)
        if len(data) != end - start:
            self.failed = True
            raise CheckpointError(
                f"{self.name}: the server sent {len(data):,} bytes for a range of {end - start:,}; "
                "the file is not read from it."
            )
        return data
