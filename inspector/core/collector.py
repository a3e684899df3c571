"""The cyclic garbage collector around the passes that make millions of objects that all stay alive
(the static read, a report of its tensors)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector meanwhile: collecting objects that all stay alive, again and again,
    would double the time on large files. What was made then goes to the oldest generation at once
    (``freeze`` then ``unfreeze`` moves every tracked object there without walking it): left young,
    the collector would walk all of it three times as it ages, 6 s at 10^6 tensors. Garbage among
    it is still collected by the next full pass."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if was_enabled:
            gc.enable()
