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
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.tasks import TaskRunner

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def engine_load(payload: dict[str, Any]) -> dict[str, Any]:
    """Answer a load request the way the worker does, but in this process (tests may use torch)."""
    from inspector.core.load_options import LoadOptions
    from inspector.engine.loader import LoadError, load_checkpoint

    options = LoadOptions.from_json(payload["options"])
    try:
        result = load_checkpoint(payload["path"], options)
    except LoadError as exc:
        return {"event": "error", **exc.to_json()}
    return {"event": "result", "result": result.to_json()}


def engine_answer(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Answer any request as the worker would: loads, and the "look inside" jobs (stats, slice …)."""
    from inspector.engine.inspect_jobs import run_inspect_job
    from inspector.engine.loader import LoadError

    if kind == "load":
        return engine_load(payload)
    try:
        return {"event": "result", "result": run_inspect_job(kind, payload)}
    except LoadError as exc:
        return {"event": "error", **exc.to_json()}


class FakeEngineClient:
    """The ``EngineClient`` interface without a process: answers on a thread, like the real one.

    With ``hold=True`` jobs wait until ``release()``, so a test can cancel one while it runs.
    """

    def __init__(
        self, on_event: Callable[[dict[str, Any]], None], config: dict[str, Any] | None = None
    ) -> None:
        # ``config`` (devices, responder, hold) is read when used, so a test may change it
        # after the fixture made the client.
        self._on_event = on_event
        self._config = config if config is not None else {}
        self._release = threading.Event()
        self._serial = threading.Lock()  # one job at a time, as in the worker
        self._threads: list[threading.Thread] = []
        self._next_id = 1
        self._cancelled: set[int] = set()
        self.submitted: list[tuple[int, dict[str, Any]]] = []
        self.cancelled: list[int] = []
        self.kinds: dict[int, str] = {}
        self.ready = False
        self.devices: list[str] = []
        self.torch_version: str | None = None
        self.pickle_modules: list[str] = ["pickle"]
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True
        self._spawn(self._announce)

    def submit(self, kind: str, payload: dict[str, Any]) -> int:
        job = self._next_id
        self._next_id += 1
        self.submitted.append((job, payload))
        self.kinds[job] = kind
        self._spawn(lambda: self._answer(job, kind, payload))
        return job

    def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)
        self._cancelled.add(job_id)
        self._on_event({"event": "error", "job": job_id, "kind": "cancelled", "message": "Cancelled."})

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self.closed = True
        self._release.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _announce(self) -> None:
        self.ready = True
        self.devices = list(self._config.get("devices", ("cpu", "meta")))
        self.torch_version = "fake"
        self._on_event({"event": "ready", "devices": self.devices, "torch_version": "fake"})

    def _answer(self, job: int, kind: str, payload: dict[str, Any]) -> None:
        if self._config.get("hold"):
            self._release.wait()
        with self._serial:
            if job in self._cancelled or self.closed:
                return
            responder: Responder | None = self._config.get("responder")
            answer = responder(payload) if responder is not None else engine_answer(kind, payload)
        self._on_event({**answer, "job": job, "extra": answer.get("extra") or {}})


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
