"""GUI fixtures: offscreen Qt, isolated settings, an in-process stand-in for the engine client."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from inspector.core.model import Node, NodeKind, TensorInfo
from inspector.engine.protocol import PROTOCOL_VERSION, Cancelled, Event, JobEvent, Progress, Ready, Request
from inspector.engine.worker import JobControl
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.tasks import TaskRunner

Responder = Callable[[Request, JobControl], JobEvent]


class CancelFlag(threading.Event):
    """A job's cancel check (``control.cancelled()``) that a test's responder may also wait on."""

    def __call__(self) -> bool:
        return self.is_set()


class FakeEngineClient:
    """The ``EngineClient`` interface without a process: the worker's own handlers answer on a
    thread of this process, one job at a time, in the same protocol objects.

    ``config`` (read when used, so a test may change it after the fixture made the client):
    ``devices``; ``memory`` (the devices' ``DeviceMemory``); ``hold`` (jobs wait until
    ``release()``, so a test can cancel one first);
    ``responder`` (``(request, control) -> event``, in place of the worker's handlers).
    A cancel stops a job that checks between tensors at its next check, as the worker does; any
    other job ends ``Cancelled`` at once, as when the client ends the worker.
    """

    def __init__(self, on_event: Callable[[Event], None], config: dict[str, Any] | None = None) -> None:
        self._on_event = on_event
        self._config = config if config is not None else {}
        self._release = threading.Event()
        self._serial = threading.Lock()  # one job at a time, as in the worker
        self._state = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._next_id = 1
        self._flags: dict[int, CancelFlag] = {}
        self._running: set[int] = set()
        self._ended: set[int] = set()
        self.submitted: list[tuple[int, Request]] = []
        self.cancelled: list[int] = []
        self.withdrawn: list[int] = []
        self.ready = False
        self.devices: list[str] = []
        self.torch_version: str | None = None
        self.pickle_modules: list[str] = ["pickle"]
        self.pid: int | None = None
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True
        self.pid = os.getpid()
        self._spawn(self._announce)

    def submit(self, request: Request) -> int:
        job = self._next_id
        self._next_id += 1
        self.submitted.append((job, request))
        self._flags[job] = CancelFlag()
        self._spawn(lambda: self._answer(job, request))
        return job

    def withdraw(self, job_id: int) -> bool:
        with self._state:
            if job_id in self._running or job_id in self._ended or job_id not in self._flags:
                return False
            self._ended.add(job_id)  # its thread returns without a word
        self.withdrawn.append(job_id)
        return True

    def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)
        flag = self._flags.get(job_id)
        with self._state:
            if flag is None or job_id in self._ended:
                return
            flag.set()
            if job_id in self._running and type(self._request(job_id)).checks_for_cancel:
                return  # it stops at its next check and answers itself
            self._ended.add(job_id)
        self._on_event(Cancelled(job_id))

    def release(self) -> None:
        self._release.set()

    def progress(self, job_id: int, done: int, total: int) -> None:
        """Report progress of a job as the worker would (for tests of what shows it)."""
        self._on_event(Progress(job_id, done, total))

    def close(self) -> None:
        self.closed = True
        self._release.set()
        for flag in self._flags.values():
            flag.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def _request(self, job_id: int) -> Request:
        return next(request for job, request in self.submitted if job == job_id)

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _announce(self) -> None:
        self.ready = True
        self.devices = list(self._config.get("devices", ("cpu", "meta")))
        self.torch_version = "fake"
        memory = tuple(self._config.get("memory", ()))
        self._on_event(
            Ready(PROTOCOL_VERSION, tuple(self.devices), "fake", tuple(self.pickle_modules), 0, memory)
        )

    def _answer(self, job: int, request: Request) -> None:
        from inspector.engine.worker import answer

        if self._config.get("hold"):
            self._release.wait()
        with self._serial:
            with self._state:
                if job in self._ended or self.closed:
                    return
                self._running.add(job)
            control = JobControl(job, self._on_event, self._flags[job])
            responder: Responder | None = self._config.get("responder")
            event = responder(request, control) if responder is not None else answer(request, control)
            with self._state:
                self._running.discard(job)
                if job in self._ended:
                    return
                self._ended.add(job)
        self._on_event(event)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """Settings in a file of this test's own, never the user's."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def runner(qapp: Any) -> Iterator[TaskRunner]:
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()
    task_runner.deleteLater()


@pytest.fixture
def fake_client() -> dict[str, Any]:
    """The fake client's settings: ``devices``, ``responder``, ``hold`` (read when used).

    Without a ``responder`` every job is answered by the engine's own code in this process."""
    return {}


@pytest.fixture
def engine(qapp: Any, fake_client: dict[str, Any]) -> Iterator[EngineBridge]:
    """A bridge over a ``FakeEngineClient``; the client is ``engine.client``."""
    bridge = EngineBridge(lambda on_event: FakeEngineClient(on_event, fake_client))
    yield bridge
    bridge.close()
    bridge.deleteLater()
    jobs = sys.modules.get("inspector.engine.inspect_jobs")
    if jobs is not None:
        jobs.close_mapped_files()  # the files the in-process jobs mapped


@pytest.fixture
def real_engine(qapp: Any) -> Iterator[EngineBridge]:
    """A bridge over the real engine client (a torch worker process)."""
    from inspector.engine.client import EngineClient

    bridge = EngineBridge(EngineClient)
    bridge.start()
    yield bridge
    bridge.close()
    bridge.deleteLater()


@pytest.fixture
def make_window(qtbot: Any, settings: QSettings, runner: TaskRunner) -> Callable[..., MainWindow]:
    """Build main windows that share this test's settings and task runner."""

    def make(engine: EngineBridge | None = None, **kwargs: Any) -> MainWindow:
        window = MainWindow(settings, engine, runner, **kwargs)
        qtbot.addWidget(window)
        return window

    return make


# -- a hand-built tree with every kind of node ----------------------------------------------


def _tensor(name: str, key: str, shape: tuple[int, ...], dtype: str = "float32") -> Node:
    itemsize = {"float32": 4, "int64": 8, "bfloat16": 2}[dtype]
    numel = 1
    for s in shape:
        numel *= s
    info = TensorInfo(
        shape=shape,
        dtype=dtype,
        saved_device="cpu",
        storage_key=key,
        storage_offset=0,
        stride=(),
        storage_nbytes=numel * itemsize,
        itemsize=itemsize,
    )
    return Node(name, NodeKind.TENSOR, key, tuple(key.split(".", 1)), tensor=info)


def _aggregate(node: Node) -> None:
    for child in node.children:
        _aggregate(child)
        if child.tensor is not None:
            node.params += child.tensor.numel
            node.nbytes += child.tensor.nbytes
        else:
            node.params += child.params
            node.nbytes += child.nbytes


def build_sample_tree() -> Node:
    """model ▸ layers ▸ 0/1/2/10 ▸ weight…, optimizer with int keys, values, an object, a ref."""
    root = Node("", NodeKind.DICT, "", ())
    model = root.add(Node("model", NodeKind.DICT, "model", ("model",)))
    layers = model.add(Node("layers", NodeKind.GROUP, "model.layers", ("model",)))
    for index, width in ((0, 3), (1, 9), (2, 10), (10, 2)):
        layer = layers.add(Node(str(index), NodeKind.GROUP, f"model.layers.{index}", ("model",)))
        layer.add(_tensor("weight", f"model.layers.{index}.weight", (width, 1)))
        layer.add(_tensor("bias", f"model.layers.{index}.bias", (width,)))
    model.add(_tensor("head.weight", "model.head.weight", (4, 4), "bfloat16"))
    optimizer = root.add(Node("optimizer", NodeKind.DICT, "optimizer", ("optimizer",)))
    state = optimizer.add(Node("state", NodeKind.DICT, "optimizer.state", ("optimizer", "state")))
    slot = state.add(Node("0", NodeKind.DICT, "optimizer.state.0", ("optimizer", "state", 0)))
    step = _tensor("step", "optimizer.state.0.step", (), "int64")
    step.path = ("optimizer", "state", 0, "step")
    slot.add(step)
    slot.add(Node("empty", NodeKind.DICT, "optimizer.state.0.empty", ("optimizer", "state", 0)))
    root.add(Node("epoch", NodeKind.VALUE, "epoch", ("epoch",), value="7"))
    args = root.add(Node("args", NodeKind.OBJECT, "args", ("args",), value="argparse.Namespace"))
    args.add(Node("lr", NodeKind.VALUE, "args.lr", ("args", "lr"), value="0.001"))
    root.add(Node("tied", NodeKind.REF, "tied", ("tied",), value="model"))
    _aggregate(root)
    return root


@pytest.fixture
def sample_tree() -> Node:
    return build_sample_tree()
