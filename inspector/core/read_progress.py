"""How far a static read has come, told to whoever watches it (the window's busy bar), who may stop
it there.

The read reports its stage as it enters it, and while a pickle is interpreted the bytes done of its
bytes, every 16,384 opcodes; while the tree is laid out, the rows made, every 4 MB of rows (about
10,000). A watcher that no longer wants the read raises ``ReadStopped`` from its call and the read
ends at once. When nobody watches (the command line, the Python API) a report costs one
context-variable lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

START = "start"  # the file is opened and its layout read (a zip directory, a header)
PICKLE = "pickle"  # a pickle is interpreted: bytes done of its bytes
TREE = "tree"  # the rows of the tree are laid out

#: Called with (stage, done, total); ``total`` is 0 where the stage has no measure.
Watcher = Callable[[str, int, int], None]

_WATCHER: ContextVar[Watcher | None] = ContextVar("read_watcher", default=None)


class ReadStopped(Exception):
    """The read's watcher stopped it. Not a ``CheckpointError``: no step of the read takes it for
    the file's fault, notes it and goes on."""


@contextmanager
def watched(watcher: Watcher) -> Iterator[None]:
    """Static reads inside this block (on this thread) report to ``watcher``."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)


def report(stage: str, done: int = 0, total: int = 0) -> None:
    """Tell the watcher, if any, where the read is (it may raise ``ReadStopped``)."""
    watcher = _WATCHER.get()
    if watcher is not None:
        watcher(stage, done, total)
