"""The cyclic garbage collector around the passes that make millions of objects that all stay alive
(the static read, a report of its tensors)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Objects made by a pass past which it settles the collector with one full pass at its end.
MANY_OBJECTS = 200_000


@contextmanager
def collector_paused(*, settle: bool = False) -> Iterator[None]:
    """Pause the collector meanwhile: collecting objects that all stay alive, again and again,
    would double the time on large files. Left young afterwards, they would be walked three times
    as they age (6 s at 10^6 tensors), so they go to the oldest generation at once (``freeze``
    then ``unfreeze`` moves them there without walking them). With ``settle``, a pass that made
    many objects walks them once now instead, with everything else: the full pass their number
    would otherwise start later, at a moment nobody chose (a keystroke in the window)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if settle and gc.get_count()[0] > MANY_OBJECTS:
            gc.collect()
        else:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()
