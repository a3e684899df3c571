"""A remote read the user can stop: each blocking call to the file-system library is waited for
on behalf of a ``ReadCancel``, and ``cancel()`` wakes the reader at once.

The window runs a remote read inside ``reading(cancel)``; the call the server keeps waiting (until
its timeout) is left behind on a daemon thread, and the read ends now with ``ReadCancelled``. Without
an active ``ReadCancel`` (the command line, where Ctrl+C stops a read) a call runs on the caller's
thread as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from inspector.core.errors import CheckpointError

T = TypeVar("T")


class ReadCancelled(CheckpointError):
    """The user stopped a remote read."""


class ReadCancel:
    """Stops the remote reads done inside ``reading(self)``; thread-safe, once and for good."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._waiting: set[threading.Event] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            waiting = list(self._waiting)
        for wake in waiting:
            wake.set()

    def check(self) -> None:
        """Raise ``ReadCancelled`` once cancelled (between two calls of a long read)."""
        if self._cancelled:
            raise ReadCancelled("The read was cancelled.")

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, run on a daemon thread and waited for until it ends or the read is cancelled."""
        wake = threading.Event()
        outcome: list[tuple[bool, object]] = []

        def run() -> None:
            try:
                outcome.append((True, fn()))
            except BaseException as exc:  # handed to the waiting reader, which raises it
                outcome.append((False, exc))
            finally:
                wake.set()

        with self._lock:
            self.check()
            self._waiting.add(wake)
        try:
            threading.Thread(target=run, name="remote-read", daemon=True).start()
            wake.wait()
        finally:
            with self._lock:
                self._waiting.discard(wake)
        self.check()
        ok, value = outcome[0]
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value  # type: ignore[return-value]


_active: ContextVar[ReadCancel | None] = ContextVar("remote_read_cancel", default=None)


@contextmanager
def reading(cancel: ReadCancel) -> Iterator[ReadCancel]:
    """Remote reads inside this block (on this thread) stop when ``cancel`` is cancelled."""
    token = _active.set(cancel)
    try:
        yield cancel
    finally:
        _active.reset(token)


def blocking(fn: Callable[[], T]) -> T:
    """``fn()`` (a call that waits on a server), stoppable by the active ``ReadCancel`` if any."""
    cancel = _active.get()
    return fn() if cancel is None else cancel.call(fn)


def check_cancelled() -> None:
    """Raise ``ReadCancelled`` if the active read was cancelled."""
    cancel = _active.get()
    if cancel is not None:
        cancel.check()
