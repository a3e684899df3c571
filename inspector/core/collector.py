"""The cyclic garbage collector around the passes that make millions of objects that all stay alive
(the static read, a report of its tensors)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: Objects made by a pass past which it settles the collector with one full pass at its end.
MANY_OBJECTS = 200_000

#: Set by ``kept_frozen``: a large read's objects stay frozen until ``release_frozen``.
_KEEP: ContextVar[bool] = ContextVar("keep_frozen", default=False)
_kept = False  # objects are frozen for their owner to release
_lock = threading.RLock()  # the flag and the collector's generations change together (reads run on threads)


@contextmanager
def collector_paused(*, settle: bool = False) -> Iterator[None]:
    """Pause the collector meanwhile: collecting objects that all stay alive, again and again,
    would double the time on large files. Left young afterwards, they would be walked three times
    as they age (6 s at 10^6 tensors), so they go to the oldest generation at once (``freeze``
    then ``unfreeze`` moves them there without walking them). With ``settle``, a pass that made
    many objects walks them once now instead, with everything else: the full pass their number
    would otherwise start later, at a moment nobody chose (a keystroke in the window). Inside
    ``kept_frozen`` they are not walked at all: they stay frozen until ``release_frozen``."""
    global _kept
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        with _lock:
            many = gc.get_count()[0] > MANY_OBJECTS
            if settle and many and _KEEP.get():
                gc.freeze()
                _kept = True
            elif settle and many:
                gc.collect()
            elif _kept:  # what is frozen stays frozen until it is released; a few objects stay young
                if many:
                    gc.freeze()
            else:
                gc.freeze()
                gc.unfreeze()
        if was_enabled:
            gc.enable()


@contextmanager
def kept_frozen() -> Iterator[None]:
    """Reads inside leave a large tree frozen (in no generation the collector walks) instead of
    walking it once at their end: for an owner that calls ``release_frozen`` when it lets a tree
    go (the window, when a tab closes or its file is read again)."""
    token = _KEEP.set(True)
    try:
        yield
    finally:
        _KEEP.reset(token)


def release_frozen() -> None:
    """A kept tree was let go: everything goes back to the collector, which walks it once now, at
    the moment its owner chose, and frees what is no longer used (a tree's rows hold their parents,
    so only the collector frees them)."""
    global _kept
    with _lock:
        if _kept:
            _kept = False
            gc.unfreeze()
            gc.collect()
