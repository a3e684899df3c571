"""A handle per engine job: it ends exactly once, cancels whether queued or running, and a job whose
widget is gone is cancelled and tells no one."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import shiboken6
import torch
from PySide6.QtCore import QCoreApplication, QObject
from PySide6.QtWidgets import QWidget

from inspector.engine.client import EngineClient
from inspector.engine.protocol import (
    Cancelled,
    ErrorKind,
    Failure,
    LoadRequest,
    Progress,
    Result,
    StatsAllReply,
    StatsAllRequest,
    StatsReply,
    StatsRequest,
)
from inspector.engine.worker import answer
from inspector.gui import engine_bridge
from inspector.gui.engine_bridge import EngineBridge, EngineClientLike, EngineJob, JobState

WAIT_MS = 20_000


class Ends:
    """Everything a job said about how it ended, in order."""

    def __init__(self, job: EngineJob) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.progress: list[Progress] = []
        job.finished.connect(lambda reply: self.seen.append(("finished", reply)))
        job.failed.connect(lambda failure: self.seen.append(("failed", failure)))
        job.cancelled.connect(lambda: self.seen.append(("cancelled", None)))
        job.progress.connect(self.progress.append)


def _settle(engine: EngineBridge) -> None:
    """Deliver every event already handed to the GUI thread (an extra answer would show now)."""
    QCoreApplication.sendPostedEvents(engine)
    QCoreApplication.processEvents()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "w.pth"
    torch.save({"w": torch.arange(6.0), "b": torch.ones(2)}, path)
    return path


def test_a_job_finishes_once_with_its_typed_reply(qtbot: Any, engine: EngineBridge, weights: Path) -> None:
    job = engine.submit(StatsRequest(str(weights), key="w"))
    ends = Ends(job)
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    _settle(engine)
    assert [what for what, _ in ends.seen] == ["finished"]
    reply = ends.seen[0][1]
    assert isinstance(reply, StatsReply) and (reply.key, reply.stats["max"]) == ("w", 5.0)
    assert job.state is JobState.FINISHED and not job.running
    assert engine.running_jobs == []  # the bridge let go of it


def test_a_job_fails_once_with_a_typed_failure(qtbot: Any, engine: EngineBridge, weights: Path) -> None:
    job = engine.submit(StatsRequest(str(weights), key="nope"))
    ends = Ends(job)
    with qtbot.waitSignal(job.failed, timeout=WAIT_MS):
        pass
    _settle(engine)
    assert [what for what, _ in ends.seen] == ["failed"]
    failure = ends.seen[0][1]
    assert isinstance(failure, Failure) and failure.kind is ErrorKind.UNREADABLE
    assert "no tensor named nope" in failure.message
    assert job.state is JobState.FAILED


def test_cancelling_a_queued_job_ends_it_once_and_it_never_runs(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    fake_client["hold"] = True
    job = engine.submit(LoadRequest(str(weights)))
    ends = Ends(job)
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS):
        job.cancel()
    job.cancel()  # a second cancel of an ended job does nothing
    engine.client.release()  # type: ignore[attr-defined]
    engine.client.close()  # the held thread has finished (it found the job ended)
    _settle(engine)
    assert ends.seen == [("cancelled", None)]
    assert engine.client.cancelled == [job.id]  # type: ignore[attr-defined]
    assert job.state is JobState.CANCELLED


def test_cancelling_a_running_job_that_checks_stops_it_at_its_next_check(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    checked: list[bool] = []

    def runs_until_cancelled(request: Any, control: Any) -> Any:
        control.progress(1, 8, "w")
        control.cancelled.wait(WAIT_MS / 1000)
        checked.append(control.cancelled())
        return answer(request, control)  # the worker's own handler sees the cancel and stops

    fake_client["responder"] = runs_until_cancelled
    job = engine.submit(StatsAllRequest(str(weights)))
    ends = Ends(job)
    with qtbot.waitSignal(job.progress, timeout=WAIT_MS):
        pass
    assert job.running and ends.progress == [Progress(job.id, 1, 8, "w")]
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS):
        job.cancel()
    _settle(engine)
    assert checked == [True] and ends.seen == [("cancelled", None)]


def test_cancelling_a_running_job_that_cannot_check_ends_it_at_once_and_drops_its_answer(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    """A load cannot stop half-way: the client ends the worker, and the answer never comes."""
    started, go_on = threading.Event(), threading.Event()

    def slow_load(request: Any, control: Any) -> Any:
        started.set()
        go_on.wait(WAIT_MS / 1000)
        return answer(request, control)

    fake_client["responder"] = slow_load
    job = engine.submit(LoadRequest(str(weights)))
    ends = Ends(job)
    assert started.wait(WAIT_MS / 1000)
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS):
        job.cancel()
    go_on.set()
    engine.client.close()  # the load's thread has answered by now
    _settle(engine)
    assert ends.seen == [("cancelled", None)]


def test_an_answer_comes_to_its_own_job_only_and_a_second_answer_is_dropped(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    fake_client["hold"] = True
    first, second = engine.submit(StatsAllRequest(str(weights))), engine.submit(StatsAllRequest(str(weights)))
    ends_first, ends_second = Ends(first), Ends(second)
    data = {"path": str(weights), "tensors": [], "flagged": [], "bytes": 0, "seconds": 0.0}
    engine._on_event(Progress(second.id, 3, 4))  # as the client's reader thread calls it
    engine._on_event(Result(second.id, data))
    engine._on_event(Result(second.id, data))
    engine._on_event(Cancelled(second.id))
    with qtbot.waitSignal(second.finished, timeout=WAIT_MS):
        pass
    _settle(engine)
    assert [what for what, _ in ends_second.seen] == ["finished"]
    assert isinstance(ends_second.seen[0][1], StatsAllReply)
    assert ends_second.progress == [Progress(second.id, 3, 4)]
    assert ends_first.seen == [] and ends_first.progress == [] and first.running


def test_an_answer_that_is_not_its_reply_is_a_failure(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    fake_client["hold"] = True  # only the answer below comes
    job = engine.submit(StatsAllRequest(str(weights)))
    ends = Ends(job)
    engine._on_event(Result(job.id, {"tensors": [{"path": "not a path", "stats": {}}]}))
    with qtbot.waitSignal(job.failed, timeout=WAIT_MS):
        pass
    failure = ends.seen[0][1]
    assert failure.kind is ErrorKind.OTHER and "answer could not be read" in failure.message


def test_a_job_whose_widget_is_destroyed_is_cancelled_and_tells_no_one(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    fake_client["hold"] = True
    owner = QWidget()
    job = engine.submit(LoadRequest(str(weights)), owner=owner)
    ends = Ends(job)
    shiboken6.delete(owner)
    assert engine.client.cancelled == [job.id]  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: not job.running, timeout=WAIT_MS)
    engine.client.release()  # type: ignore[attr-defined]
    engine.client.close()
    _settle(engine)
    assert job.state is JobState.CANCELLED and ends.seen == []


def test_a_job_that_ended_lets_its_widget_go(qtbot: Any, engine: EngineBridge, weights: Path) -> None:
    owner = QObject()
    job = engine.submit(StatsRequest(str(weights), key="b"), owner=owner)
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    shiboken6.delete(owner)  # no cancel for a job that already ended
    assert engine.client.cancelled == []  # type: ignore[attr-defined]


def test_a_discarded_job_is_cancelled_and_tells_no_one(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    fake_client["hold"] = True
    job = engine.submit(LoadRequest(str(weights)))
    ends = Ends(job)
    job.discard()
    qtbot.waitUntil(lambda: not job.running, timeout=WAIT_MS)
    assert ends.seen == [] and engine.client.cancelled == [job.id]  # type: ignore[attr-defined]


def _public(cls: type) -> dict[str, Callable[..., Any] | property]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def test_the_window_asks_of_the_client_exactly_what_it_offers() -> None:
    offered, asked = _public(EngineClient), _public(EngineClientLike)
    assert set(offered) == set(asked)
    for name, member in asked.items():
        if isinstance(member, property):
            assert isinstance(offered[name], property), name
        else:
            assert inspect.signature(offered[name]) == inspect.signature(member), name


def _load_held_until(gate: threading.Event) -> Callable[[Any, Any], Any]:
    """A responder whose loads wait for ``gate`` (a long load); every other job answers at once."""

    def respond(request: Any, control: Any) -> Any:
        if isinstance(request, LoadRequest):
            gate.wait(WAIT_MS / 1000)
        return answer(request, control)

    return respond


@pytest.fixture
def move_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request about a tensor's values moves to the second worker as soon as it waits."""
    monkeypatch.setattr(engine_bridge, "MOVE_AFTER_MS", 0)


def _types(client: Any) -> list[type]:
    return [type(r) for _, r in client.submitted]


@pytest.mark.usefixtures("move_at_once")
def test_a_tensors_statistics_do_not_wait_behind_a_long_load(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    """While a load holds the worker, statistics waiting behind it are taken back and run in a
    second worker; the load is not disturbed and ends with its own answer. The next such request
    goes to the second worker at once."""
    gate = threading.Event()
    fake_client["responder"] = _load_held_until(gate)
    engine.start()
    qtbot.waitUntil(lambda: engine.is_ready, timeout=WAIT_MS)
    load = engine.submit(LoadRequest(str(weights)))
    stats = engine.submit(StatsRequest(str(weights), key="w"))
    ends = Ends(stats)
    with qtbot.waitSignal(stats.finished, timeout=WAIT_MS):
        pass
    assert load.running  # the load still holds the first worker
    assert ends.seen[0][1].stats["max"] == 5.0
    second = engine.second_client
    assert second is not None and _types(second) == [StatsRequest]
    assert _types(engine.client) == [LoadRequest, StatsRequest]
    assert engine.client.withdrawn == [2]  # type: ignore[attr-defined]
    again = engine.submit(StatsRequest(str(weights), key="b"))
    with qtbot.waitSignal(again.finished, timeout=WAIT_MS):
        pass
    assert _types(second) == [StatsRequest, StatsRequest] and len(engine.client.submitted) == 2  # type: ignore[attr-defined]
    with qtbot.waitSignal(load.finished, timeout=WAIT_MS):
        gate.set()
    assert engine.running_jobs == []


def test_a_request_that_waits_less_than_the_move_delay_stays_in_the_one_worker(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A short load ahead (here ended by hand long before the delay) costs no second process."""
    monkeypatch.setattr(engine_bridge, "MOVE_AFTER_MS", 600_000)
    gate = threading.Event()
    fake_client["responder"] = _load_held_until(gate)
    load = engine.submit(LoadRequest(str(weights)))
    stats = engine.submit(StatsRequest(str(weights), key="w"))
    gate.set()
    qtbot.waitUntil(lambda: not load.running and not stats.running, timeout=WAIT_MS)
    assert stats.state is JobState.FINISHED and engine.second_client is None
    assert _types(engine.client) == [LoadRequest, StatsRequest]


def test_without_a_long_job_every_job_runs_in_the_one_worker(
    qtbot: Any, engine: EngineBridge, weights: Path, move_at_once: None
) -> None:
    """No second worker is started while nothing long runs (it costs a process and torch's import)."""
    first = engine.submit(StatsRequest(str(weights), key="w"))
    with qtbot.waitSignal(first.finished, timeout=WAIT_MS):
        pass
    load = engine.submit(LoadRequest(str(weights)))
    with qtbot.waitSignal(load.finished, timeout=WAIT_MS):
        pass
    later = engine.submit(StatsRequest(str(weights), key="b"))
    with qtbot.waitSignal(later.finished, timeout=WAIT_MS):
        pass
    assert engine.second_client is None
    assert _types(engine.client) == [StatsRequest, LoadRequest, StatsRequest]


def test_a_request_waiting_for_the_worker_to_import_torch_is_not_moved(
    qtbot: Any, weights: Path, move_at_once: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the first worker still imports torch, a second one would have to as well: the request
    stays and runs there once it is ready."""
    from tests.gui.conftest import FakeEngineClient

    made: list[FakeEngineClient] = []
    starting = threading.Event()

    class Starting(FakeEngineClient):
        """A worker still importing torch: not ready, and running nothing yet."""

        def _announce(self) -> None:
            starting.wait(WAIT_MS / 1000)
            super()._announce()

        def _answer(self, job: int, request: Any) -> None:
            starting.wait(WAIT_MS / 1000)
            super()._answer(job, request)

    def factory(on_event: Any) -> FakeEngineClient:
        made.append(Starting(on_event) if not made else FakeEngineClient(on_event))
        return made[-1]

    asked: list[int] = []
    real_move = EngineBridge._move_if_waiting

    def move(self: EngineBridge, job: EngineJob) -> None:
        asked.append(job.id)
        real_move(self, job)

    monkeypatch.setattr(EngineBridge, "_move_if_waiting", move)
    bridge = EngineBridge(factory)
    try:
        bridge.submit(LoadRequest(str(weights)))
        stats = bridge.submit(StatsRequest(str(weights), key="w"))
        # the move is asked again and again while the worker is not ready, and never made
        qtbot.waitUntil(lambda: len(asked) >= 3, timeout=WAIT_MS)
        assert stats.running and stats.lane == 0 and bridge.second_client is None
        assert made[0].withdrawn == [] and len(made) == 1
        starting.set()
        with qtbot.waitSignal(stats.finished, timeout=WAIT_MS) as shown:
            pass
        assert shown.args[0].stats["max"] == 5.0
    finally:
        starting.set()
        bridge.close()
        import inspector.engine.inspect_jobs as jobs

        jobs.close_mapped_files()


@pytest.mark.usefixtures("move_at_once")
def test_a_job_beside_a_long_one_is_cancelled_in_its_own_worker(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    """Cancelling statistics asked for beside a load reaches the second worker, never the load."""
    gate = threading.Event()

    def respond(request: Any, control: Any) -> Any:
        if isinstance(request, LoadRequest):
            gate.wait(WAIT_MS / 1000)
        else:
            control.cancelled.wait(WAIT_MS / 1000)
        return answer(request, control)

    fake_client["responder"] = respond
    engine.start()
    qtbot.waitUntil(lambda: engine.is_ready, timeout=WAIT_MS)
    load = engine.submit(LoadRequest(str(weights)))
    stats = engine.submit(StatsRequest(str(weights), key="w"))
    qtbot.waitUntil(lambda: engine.second_client is not None and stats.lane == 1, timeout=WAIT_MS)
    second = engine.second_client
    assert second is not None
    with qtbot.waitSignal(stats.cancelled, timeout=WAIT_MS):
        stats.cancel()
    assert second.cancelled == [stats.id] and engine.client.cancelled == []  # type: ignore[attr-defined]
    assert load.running
    with qtbot.waitSignal(load.finished, timeout=WAIT_MS):
        gate.set()


def test_the_worker_started_before_the_window_is_the_first_and_the_second_has_its_own_client(
    qtbot: Any, weights: Path, move_at_once: None
) -> None:
    """The worker the app starts before Qt becomes the bridge's first; the second worker, beside a
    long load, is a client of its own made by the same factory."""
    from inspector.app import EarlyEngine
    from tests.gui.conftest import FakeEngineClient

    gate = threading.Event()
    config: dict[str, Any] = {"responder": _load_held_until(gate)}
    made: list[FakeEngineClient] = []

    def factory(on_event: Any) -> FakeEngineClient:
        made.append(FakeEngineClient(on_event, config))
        return made[-1]

    early = EarlyEngine(factory)
    bridge = early.bridge()
    try:
        assert bridge.client is early.client is made[0] and bridge.second_client is None
        bridge.start()
        qtbot.waitUntil(lambda: bridge.is_ready, timeout=WAIT_MS)
        load = bridge.submit(LoadRequest(str(weights)))
        stats = bridge.submit(StatsRequest(str(weights), key="w"))
        with qtbot.waitSignal(stats.finished, timeout=WAIT_MS):
            pass
        assert len(made) == 2 and bridge.second_client is made[1] and made[1].started
        assert load.running
        with qtbot.waitSignal(load.finished, timeout=WAIT_MS):
            gate.set()
    finally:
        gate.set()
        bridge.close()
        import inspector.engine.inspect_jobs as jobs

        jobs.close_mapped_files()  # the files the in-process jobs mapped
    assert made[0].closed and made[1].closed


@pytest.mark.usefixtures("move_at_once")
def test_the_second_worker_ends_once_nothing_long_is_left_and_a_new_one_starts_when_needed(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], weights: Path
) -> None:
    """What the second worker read is not kept after the long job that called for it; the next
    long job gets a fresh second worker, whose answers reach their own jobs (its ids start over)."""
    seconds: list[Any] = []
    for key in ("w", "b"):
        gate = threading.Event()
        fake_client["responder"] = _load_held_until(gate)
        engine.start()
        qtbot.waitUntil(lambda: engine.is_ready, timeout=WAIT_MS)
        load = engine.submit(LoadRequest(str(weights)))
        stats = engine.submit(StatsRequest(str(weights), key=key))
        with qtbot.waitSignal(stats.finished, timeout=WAIT_MS) as shown:
            pass
        assert shown.args[0].key == key and stats.id == 1  # the first job of its worker
        seconds.append(engine.second_client)
        assert seconds[-1] is not None and not seconds[-1].closed
        with qtbot.waitSignal(load.finished, timeout=WAIT_MS):
            gate.set()
        qtbot.waitUntil(lambda: engine.second_client is None and seconds[-1].closed, timeout=WAIT_MS)
    assert seconds[0] is not seconds[1]
