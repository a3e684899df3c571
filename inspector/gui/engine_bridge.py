"""The window's side of the engine: its clients, and a handle per job, routed by id in one place.

``EngineBridge.submit`` returns an ``EngineJob``; widgets connect to its signals and hold it, not
an id. A client reports from its reader thread; the bridge hands every event to the GUI thread
(a queued signal) and there, in ``_dispatch``, finds the job it belongs to. A job ends exactly once
— ``finished`` with its typed reply, ``failed`` with a ``Failure``, or ``cancelled`` — and a job
whose owner widget is destroyed is cancelled and tells no one.

Jobs run in one worker, one at a time, except a request about one tensor's values
(``beside_long_jobs``: statistics, a page of values) that would wait behind a load, export or
diff: one still waiting after ``MOVE_AFTER_MS`` in a worker that is ready (not still importing
torch, which a second worker would have to do too) is taken back and run in a second worker,
started for it then; while the first is busy, such requests go to the second at once, and once
nothing long is left the second worker ends (with what it read). The statistics of a tensor in
one tab never wait minutes behind a million-tensor load in another, and a short load never costs
a second process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol

import shiboken6
from PySide6.QtCore import QMetaObject, QObject, Qt, QTimer, Signal

from inspector.core.host_memory import DeviceMemory
from inspector.engine.protocol import (
    Cancelled,
    EngineFailed,
    ErrorKind,
    Event,
    EventCallback,
    Failure,
    Progress,
    ProtocolError,
    Ready,
    Request,
    Result,
)


class EngineClientLike(Protocol):
    """Exactly what ``inspector.engine.client.EngineClient`` offers (the test fake offers it too)."""

    @property
    def ready(self) -> bool: ...
    @property
    def devices(self) -> list[str]: ...
    @property
    def torch_version(self) -> str | None: ...
    @property
    def pickle_modules(self) -> list[str]: ...
    @property
    def pid(self) -> int | None: ...

    def start(self) -> None: ...
    def submit(self, request: Request) -> int: ...
    def withdraw(self, job_id: int) -> bool: ...
    def cancel(self, job_id: int) -> None: ...
    def close(self) -> None: ...


ClientFactory = Callable[[EventCallback], EngineClientLike]


#: How long a request about a tensor's values may wait behind another job before it moves to the
#: second worker (about what a short load takes; the second worker's own start takes seconds).
MOVE_AFTER_MS = 1000


class JobState(Enum):
    RUNNING = "running"  # queued or running in the engine
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EngineJob(QObject):
    """One request running in the engine; ends exactly once with one of its three end signals."""

    finished = Signal(object)  # the request's typed reply (``LoadReply``, ``StatsReply`` …)
    failed = Signal(object)  # a ``Failure``
    cancelled = Signal()
    progress = Signal(object)  # a ``Progress`` (bytes done and total may exceed 2**31)

    def __init__(self, bridge: EngineBridge, job_id: int, request: Request, lane: int = 0) -> None:
        super().__init__()  # no parent: the bridge holds it until it ends
        self.id = job_id  # the id its worker's client gave it
        self.lane = lane  # which worker runs it: 0 the first, above 0 a second one beside long jobs
        self.request = request
        self._bridge = bridge
        self.state = JobState.RUNNING
        self._silent = False
        self._owner_gone: QMetaObject.Connection | None = None
        self._owner: QObject | None = None

    @property
    def running(self) -> bool:
        return self.state is JobState.RUNNING

    def cancel(self) -> None:
        """Stop the job; it then ends with ``cancelled`` (or its answer, if that was on the way)."""
        if self.running:
            self._bridge._cancel(self)

    def discard(self) -> None:
        """Cancel the job and tell no one how it ends: its asker has moved on."""
        self._silent = True
        self.cancel()

    def _watch(self, owner: QObject) -> None:
        self._owner = owner
        self._owner_gone = owner.destroyed.connect(self.discard)

    def _end(self, event: Result | Failure | Cancelled) -> None:
        """Called once, by the bridge: the one end signal (unless discarded)."""
        if self._owner_gone is not None:
            if self._owner is not None and shiboken6.isValid(self._owner):
                QObject.disconnect(self._owner_gone)
            self._owner_gone, self._owner = None, None
        if isinstance(event, Result):
            try:
                reply: Any = self.request.reply(event.data)
            except (ProtocolError, KeyError, TypeError, ValueError) as exc:
                event = Failure(event.job, ErrorKind.OTHER, f"The loader's answer could not be read: {exc}.")
            else:
                self.state = JobState.FINISHED
                if not self._silent:
                    self.finished.emit(reply)
                return
        if isinstance(event, Failure):
            self.state = JobState.FAILED
            if not self._silent:
                self.failed.emit(event)
        else:
            self.state = JobState.CANCELLED
            if not self._silent:
                self.cancelled.emit()

    def _progress(self, event: Progress) -> None:
        if self.running and not self._silent:
            self.progress.emit(event)


class EngineBridge(QObject):
    """Owns the engine's clients and the jobs they run; emits only on the GUI thread."""

    engine_ready = Signal(list, str)  # devices, torch version
    engine_failed = Signal(str)  # a sentence: the worker could not start
    _delivered = Signal(object)  # (lane, event) from a client's thread, handed to the GUI thread

    def __init__(self, client_factory: ClientFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._delivered.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        self._factory = client_factory
        self._client = client_factory(self._on_event)
        self._beside: EngineClientLike | None = None  # the second worker's client, while needed
        self._beside_lane = 0  # its lane: each second worker started gets the next number
        self._retiring: list[threading.Thread] = []  # closing second workers that are done
        self._started = False
        self._closed = False
        #: running jobs by (lane, id): strong references until they end
        self._jobs: dict[tuple[int, int], EngineJob] = {}
        #: Each accelerator's free and total memory, as the worker said when it was ready.
        self.device_memory: tuple[DeviceMemory, ...] = ()

    @property
    def client(self) -> EngineClientLike:
        return self._client

    @property
    def second_client(self) -> EngineClientLike | None:
        """The client of the worker beside long jobs (None until a request needed it)."""
        return self._beside

    @property
    def devices(self) -> list[str]:
        return self._client.devices if self._client.ready else []

    @property
    def is_ready(self) -> bool:
        return self._client.ready

    @property
    def pickle_modules(self) -> list[str]:
        """The pickle modules a trusted load may use in the engine (``pickle``, ``dill`` if there)."""
        return self._client.pickle_modules

    @property
    def running_jobs(self) -> list[EngineJob]:
        return list(self._jobs.values())

    def start(self) -> None:
        """Spawn the worker (returns at once); later calls do nothing."""
        if not self._started and not self._closed:
            self._started = True
            self._client.start()

    def submit(self, request: Request, owner: QObject | None = None) -> EngineJob:
        """Run ``request`` in the engine; the job is cancelled if ``owner`` is destroyed first."""
        self.start()
        waits = request.beside_long_jobs and self._long_job_running()
        lane = self._beside_lane if waits and self._beside is not None else 0
        job = EngineJob(self, self._lane_client(lane).submit(request), request, lane)
        self._jobs[(lane, job.id)] = job
        if owner is not None:
            job._watch(owner)
        if waits and lane == 0:
            QTimer.singleShot(MOVE_AFTER_MS, self, lambda: self._move_if_waiting(job))
        return job

    def _move_if_waiting(self, job: EngineJob) -> None:
        """Run ``job`` in the second worker if the first has still not started it (asked again later
        while the first is still importing torch)."""
        if self._closed or not job.running or job.lane != 0 or (0, job.id) not in self._jobs:
            return
        if not self._client.ready:
            QTimer.singleShot(MOVE_AFTER_MS, self, lambda: self._move_if_waiting(job))
            return
        if not self._client.withdraw(job.id):
            return  # it runs there now
        del self._jobs[(0, job.id)]
        client = self._second_client()
        job.id, job.lane = client.submit(job.request), self._beside_lane
        self._jobs[(job.lane, job.id)] = job

    def _long_job_running(self) -> bool:
        """Whether the first worker runs or has queued a job other than one about a tensor's values."""
        return any(lane == 0 and not job.request.beside_long_jobs for (lane, _), job in self._jobs.items())

    def _lane_client(self, lane: int) -> EngineClientLike:
        if lane == 0:
            return self._client
        assert self._beside is not None and lane == self._beside_lane
        return self._beside

    def _second_client(self) -> EngineClientLike:
        """The second worker's client, started now if there is none."""
        if self._beside is None:
            self._beside_lane += 1
            lane = self._beside_lane
            self._beside = self._factory(lambda event: self._on_event(event, lane))
            self._beside.start()
        return self._beside

    def _retire_second_worker(self) -> None:
        """End the second worker once nothing runs in it and nothing long in the first: what it
        read (a large file's index, its maps) is not kept for a moment that may never come."""
        if self._beside is None or self._long_job_running():
            return
        if any(lane == self._beside_lane for lane, _ in self._jobs):
            return
        beside, self._beside = self._beside, None
        # idle, its worker ends on end of input; the wait for that is not the GUI thread's
        self._retiring = [t for t in self._retiring if t.is_alive()]
        self._retiring.append(threading.Thread(target=beside.close, name="second-worker-close", daemon=True))
        self._retiring[-1].start()

    def _cancel(self, job: EngineJob) -> None:
        if (job.lane, job.id) in self._jobs and not self._closed:
            self._lane_client(job.lane).cancel(job.id)

    def close(self) -> None:
        """Stop the workers and the reader threads; no signal is emitted afterwards."""
        if not self._closed:
            self._closed = True
            self._client.close()
            if self._beside is not None:
                self._beside.close()
            for closing in self._retiring:
                closing.join()
            self._jobs.clear()

    def _on_event(self, event: Event, lane: int = 0) -> None:
        # Runs on a client's thread (``lane``'s worker): only hand the event over, touch nothing else.
        if not self._closed:
            self._delivered.emit((lane, event))

    def _dispatch(self, delivered: tuple[int, Event]) -> None:
        """The one place events reach jobs and the window (on the GUI thread). The window hears
        of the first worker only: the second one's jobs say how each of them ends."""
        lane, event = delivered
        if self._closed:
            return
        if isinstance(event, Ready):
            if lane == 0:
                self.device_memory = event.memory
                self.engine_ready.emit(list(event.devices), event.torch_version)
        elif isinstance(event, EngineFailed):
            if lane == 0:
                self.engine_failed.emit(event.message or self.tr("The loader could not start."))
        elif isinstance(event, Progress):
            job = self._jobs.get((lane, event.job))
            if job is not None:
                job._progress(event)
        elif isinstance(event, (Result, Failure, Cancelled)):
            ended = self._jobs.pop((lane, event.job), None)
            if ended is not None:
                ended._end(event)
                self._retire_second_worker()
