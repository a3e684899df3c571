"""Reads of several remote files started at once, their results taken in the caller's order.

A far-away server costs a round trip per request, so the pieces of a set (each shard's head, each
file's size) are fetched ``PARALLEL_READS`` at a time. The caller asks for each result in its own
order and gets what the work returned or raised, so sentences and trees are those of reading the
pieces one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from typing import Generic, TypeVar

#: Pieces fetched at once.
PARALLEL_READS = 8

T = TypeVar("T")


class ConcurrentReads(Generic[T]):
    """``work(name)`` started for every name; ``reads(name)`` waits for that one's result."""

    def __init__(self, names: Iterable[str], work: Callable[[str], T]) -> None:
        unique = list(dict.fromkeys(names))
        pool = ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_READS, len(unique))))
        # Each piece runs in the caller's context, so the caller's Cancel (``cancelling``) stops it too.
        self._futures: dict[str, Future[T]] = {n: pool.submit(copy_context().run, work, n) for n in unique}
        pool.shutdown(wait=False)  # the threads end when the last work does

    def __call__(self, name: str) -> T:
        return self._futures[name].result()

    def close(self) -> None:
        """Drop the work not yet started (what runs finishes within the remote timeout)."""
        for future in self._futures.values():
            future.cancel()

    def __enter__(self) -> ConcurrentReads[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
