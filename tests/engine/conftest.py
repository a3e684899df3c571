"""Fixtures for the engine: storages tagged with devices this machine lacks, and engine clients.

Helpers are handed out as fixtures (test modules never import this file).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from torch import serialization

from inspector.core.load_options import LoadOptions
from inspector.engine.client import EngineClient
from inspector.engine.protocol import Cancelled, Event, Failure, LoadRequest, Progress, Ready, Request, Result

EVENT_TIMEOUT_S = 30.0
#: What ends a job: exactly one of these per job.
JobEnd = Result | Failure | Cancelled


class EventLog:
    """Collects the events a client reports (from any thread) and waits for the one a test needs."""

    def __init__(self) -> None:
        self._incoming: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self._incoming.put(event)

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = EVENT_TIMEOUT_S) -> Event:
        """The next unconsumed event that matches; the ones skipped on the way stay in ``seen``."""
        while True:
            try:
                event = self._incoming.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no matching event in {timeout} s; saw {self.seen}") from None
            self.seen.append(event)
            if predicate(event):
                return event

    def wait_job(self, job: int) -> JobEnd:
        """The event that ends job ``job`` (its progress on the way stays in ``seen``)."""
        event = self.wait_for(lambda e: isinstance(e, JobEnd) and e.job == job)
        assert isinstance(event, JobEnd)
        return event

    def progress_of(self, job: int) -> list[Progress]:
        return [e for e in self.seen if isinstance(e, Progress) and e.job == job]

    def ends_of(self, job: int) -> list[JobEnd]:
        """Every end reported so far for ``job`` (a job ends exactly once)."""
        self.seen.extend(self.pending())
        return [e for e in self.seen if isinstance(e, JobEnd) and e.job == job]

    def wait_ready(self, pid: int | None) -> Ready:
        """The ``Ready`` event of worker ``pid``, seen already or still to come."""

        def is_ready(event: Event) -> bool:
            return isinstance(event, Ready) and event.pid == pid

        earlier = [e for e in self.seen if is_ready(e)]
        ready = earlier[0] if earlier else self.wait_for(is_ready)
        assert isinstance(ready, Ready)
        return ready

    def pending(self) -> list[Event]:
        """Events that arrived but were not waited for yet (without blocking)."""
        events = []
        while True:
            try:
                events.append(self._incoming.get_nowait())
            except queue.Empty:
                return events


@dataclass
class Engine:
    client: EngineClient
    events: EventLog

    def ready(self) -> None:
        """Wait until the current worker process has announced itself."""
        self.events.wait_ready(self.client.pid)

    def run(self, request: Request) -> JobEnd:
        """Run one request on a ready worker and wait for its end."""
        self.ready()
        return self.events.wait_job(self.client.submit(request))

    def load(self, path: object, **options: Any) -> JobEnd:
        """Load ``path`` with options given as their JSON fields (``map_location="meta"`` …)."""
        return self.run(LoadRequest(str(path), LoadOptions.from_json(options)))


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("engine-")]


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """One worker per test module (starting one imports torch, which takes seconds)."""
    events = EventLog()
    client = EngineClient(events)
    client.start()
    try:
        yield Engine(client, events)
    finally:
        client.close()
    assert engine_threads() == []


def assert_reaped(pid: int) -> None:
    """The client's threads for worker ``pid`` finish (they reap it) and the process is gone."""
    for thread in engine_threads():
        if thread.name.endswith(f"-{pid}"):
            thread.join(timeout=EVENT_TIMEOUT_S)
            assert not thread.is_alive()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError(f"engine process {pid} is still alive")


@pytest.fixture
def reaped() -> Callable[[int], None]:
    return assert_reaped


@pytest.fixture
def threads_of() -> Callable[[int], list[threading.Thread]]:
    """The client threads still running for worker ``pid``."""

    def running(pid: int) -> list[threading.Thread]:
        return [t for t in engine_threads() if t.name.endswith(f"-{pid}")]

    return running


@pytest.fixture
def saved_on() -> Iterator[Callable[[str], contextlib.AbstractContextManager[None]]]:
    """``with saved_on("cuda:1"): torch.save(...)`` tags every CPU storage as saved on cuda:1.

    Uses torch's own extension point (``register_package``); its registry is restored afterwards.
    """
    registry = serialization._package_registry
    original = list(registry)

    @contextlib.contextmanager
    def tagged(location: str) -> Iterator[None]:
        def tag(storage: Any) -> str | None:
            return location if storage.device.type == "cpu" else None

        def restore(storage: Any, saved: str) -> None:
            return None  # leave loading to torch's own deserializers

        serialization.register_package(1, tag, restore)
        try:
            yield
        finally:
            registry[:] = original

    try:
        yield tagged
    finally:
        registry[:] = original
