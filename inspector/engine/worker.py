"""The engine process: ``python -m inspector.engine.worker``.

Speaks ``inspector.engine.protocol`` on the stdin and stdout it was started with; plain data only,
never pickles. Everything else that writes to stdout (torch, user code in trusted files) ends up on
stderr, so it cannot corrupt a frame. A reader thread takes frames off stdin while a job runs, so
a ``Cancel`` reaches the job at its next check between tensors.
"""

from __future__ import annotations

import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from inspector.core.errors import CheckpointError

from .protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Cancelled,
    DiffRequest,
    ErrorKind,
    ExportRequest,
    Failure,
    JobEvent,
    LoadRequest,
    Message,
    Progress,
    ProtocolError,
    Ready,
    Request,
    Result,
    SliceRequest,
    StatsAllRequest,
    StatsRequest,
    Submit,
    encode,
    read_message,
)

#: Progress goes out at most this often (and always at the last step).
PROGRESS_EVERY_S = 0.1

Send = Callable[[JobEvent], None]


class JobControl:
    """What a running job may ask of the worker: report progress, and whether to stop now."""

    def __init__(
        self,
        job: int,
        send: Send,
        cancelled: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self._send = send
        self.cancelled = cancelled
        self._clock = clock
        self._last: float | None = None

    def progress(self, done: int, total: int, key: str | None = None) -> None:
        now = self._clock()
        if done >= total or self._last is None or now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._send(Progress(self.job, done, total, key))

    def export_progress(self, done: int, total: int) -> None:
        self.progress(done, total)


def ready() -> Ready:
    """What the worker says once it can take jobs; all it imports at start-up (no job's modules)."""
    import torch

    from inspector.engine.devices import device_memory, loadable_devices
    from inspector.engine.loader import available_pickle_modules

    return Ready(
        version=PROTOCOL_VERSION,
        devices=tuple(loadable_devices()),
        torch_version=str(torch.__version__),
        pickle_modules=tuple(available_pickle_modules()),
        pid=os.getpid(),
        memory=tuple(device_memory()),
    )


def _run_load(request: LoadRequest, _control: JobControl) -> dict[str, Any]:
    from inspector.engine.loader import load_checkpoint

    return load_checkpoint(request.path, request.options).to_json()


def _run_export(request: ExportRequest, control: JobControl) -> dict[str, Any]:
    from inspector.engine.export import export_checkpoint

    return export_checkpoint(request.plan, control.export_progress, control.cancelled).to_json()


def _run_inspect(request: Any, control: JobControl) -> dict[str, Any]:
    from inspector.engine import inspect_jobs

    return inspect_jobs.answer(request, control.progress, control.cancelled)


Handler = Callable[[Any, JobControl], dict[str, Any]]
HANDLERS: dict[type[Request], Handler] = {
    LoadRequest: _run_load,
    ExportRequest: _run_export,
    StatsRequest: _run_inspect,
    SliceRequest: _run_inspect,
    StatsAllRequest: _run_inspect,
    DiffRequest: _run_inspect,
}


def answer(request: Request, control: JobControl) -> JobEvent:
    """The event that ends one job: its result, its failure, or that it was cancelled; never raises."""
    from inspector.engine.export_results import ExportCancelled, ExportError
    from inspector.engine.loader import LoadError
    from inspector.engine.stats import StatsCancelled

    job = control.job
    try:
        data = HANDLERS[type(request)](request, control)
    except (ExportCancelled, StatsCancelled):
        return Cancelled(job)
    except (LoadError, ExportError) as exc:
        extra = dict(exc.extra) if isinstance(exc, LoadError) else {}
        return Failure(job, ErrorKind.of(exc.kind), exc.message, exc.details, extra)
    except CheckpointError as exc:
        return Failure(job, ErrorKind.UNREADABLE, exc.message, exc.details)
    except Exception as exc:  # a bug or an unexpected torch failure: still an answer, not a crash
        return Failure(
            job, ErrorKind.OTHER, f"The loader failed unexpectedly: {type(exc).__name__}: {exc}", repr(exc)
        )
    return Result(job, data)


def answer_frame(request: Request, control: JobControl) -> bytes:
    """The frame that ends one job: its answer, or a failure when that answer cannot be encoded."""
    event = answer(request, control)
    try:
        return encode(event)
    except (TypeError, ValueError, RecursionError) as exc:
        message = f"The loader's answer could not be sent: {type(exc).__name__}: {exc}"
        return encode(Failure(control.job, ErrorKind.OTHER, message))


class _Inbox:
    """Frames from the window, read on a thread of their own: jobs queue up, cancels mark them."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.jobs: queue.Queue[Submit | Failure | int] = queue.Queue()  # an int: stop with this status
        self._lock = threading.Lock()
        self._open: set[int] = set()  # jobs read and not yet answered
        self._cancelled: set[int] = set()

    def cancelled(self, job: int) -> bool:
        with self._lock:
            return job in self._cancelled

    def done(self, job: int) -> None:
        with self._lock:
            self._open.discard(job)
            self._cancelled.discard(job)

    def read(self) -> None:
        while True:
            try:
                message: Message | None = read_message(self._stream)
            except ProtocolError as exc:
                if exc.job is None:
                    print(f"inspector engine: unreadable request, stopping: {exc}", file=sys.stderr)
                    self.jobs.put(2)
                    return
                why = str(exc)
                self.jobs.put(Failure(exc.job, ErrorKind.BAD_REQUEST, f"{why[:1].upper()}{why[1:]}."))
                continue
            except (OSError, ValueError, EOFError) as exc:
                print(f"inspector engine: unreadable request, stopping: {exc}", file=sys.stderr)
                self.jobs.put(2)
                return
            if message is None:
                self.jobs.put(0)
                return
            if isinstance(message, Submit):
                with self._lock:
                    self._open.add(message.job)
                self.jobs.put(message)
            elif isinstance(message, Cancel):
                with self._lock:
                    if message.job in self._open:
                        self._cancelled.add(message.job)
            # anything else is not the window's to say; it is ignored


def main() -> int:
    # Keep the protocol on private descriptors; stray prints go to stderr, stray reads get EOF.
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=0)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    out_lock = threading.Lock()

    def send(message: Message) -> None:
        frame = encode(message)
        with out_lock:
            protocol_out.write(frame)

    send(ready())
    inbox = _Inbox(protocol_in)
    threading.Thread(target=inbox.read, name="engine-inbox", daemon=True).start()
    while True:
        item = inbox.jobs.get()
        if isinstance(item, int):
            return item
        if isinstance(item, Failure):
            send(item)
            continue
        job = item.job
        control = JobControl(job, send, functools.partial(inbox.cancelled, job))
        frame = answer_frame(item.request, control)
        with out_lock:
            protocol_out.write(frame)
        inbox.done(job)


if __name__ == "__main__":
    sys.exit(main())
