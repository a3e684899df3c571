"""Start-up: opening a tab costs the same rows whatever the file holds, the torch worker starts
before Qt is imported, and a second launch hands its file over without Qt or a worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QEvent, QObject, Qt

from inspector.gui.first_paint import after_paint
from inspector.gui.instance_channel import listen_address
from inspector.gui.single_instance import InstanceServer
from inspector.gui.tasks import TaskRunner
from inspector.gui.tree_model import CheckpointTreeModel

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 30_000


def _many_tensors(path: Path, count: int) -> Path:
    """``count`` small tensors two levels deep: every row of them is open when the tab opens."""
    torch.save({f"layers.{i}.weight_with_a_long_name": torch.zeros(2) for i in range(count)}, path)
    return path


def _shown_window(qtbot: Any, make_window: Any) -> Any:
    """A window without an engine, on screen."""
    window = make_window(None)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    return window


def _display_reads(qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, path: Path) -> int:
    """How many texts the model is asked for while a tab opens ``path`` and paints its tree."""
    reads = {"n": 0}
    data = CheckpointTreeModel.data

    def counted(self: CheckpointTreeModel, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            reads["n"] += 1
        return data(self, index, role)

    monkeypatch.setattr(CheckpointTreeModel, "data", counted)
    window = _shown_window(qtbot, make_window)
    tab = window.open_path(str(path))
    # Up to the tree's first paint, laid out: what arrives later (the card moves the tree down when
    # it comes) would make the count depend on timing.
    painted: list[int] = []
    after_paint(
        tab.tree.viewport(),
        lambda: painted.append(reads["n"]),
        ready=lambda: tab.is_tree_shown,
        latest_ms=WAIT_MS,
    )
    qtbot.waitUntil(lambda: bool(painted), timeout=WAIT_MS)
    monkeypatch.setattr(CheckpointTreeModel, "data", data)
    window.close()
    return painted[0]


def test_opening_a_tab_reads_no_more_rows_for_twenty_times_the_tensors(
    qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    small = _display_reads(qtbot, make_window, monkeypatch, _many_tensors(tmp_path / "small.pth", 200))
    large = _display_reads(qtbot, make_window, monkeypatch, _many_tensors(tmp_path / "large.pth", 4000))
    assert small > 0  # the painted rows were read
    # Sizing the columns or laying the tree out through its texts would read 20 times as many.
    assert large <= small * 1.2 + 20, (small, large)


def test_the_tree_is_painted_before_the_tab_starts_its_work_over_it(
    qtbot: Any, make_window: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card, the filter's key index and the optimizer notes pass over every row: they start once
    the tree is on screen, and still arrive."""
    example = ROOT / "resources" / "examples" / "tiny_transformer_training.pth"
    events: list[str] = []
    start = TaskRunner.start

    def recorded(self: TaskRunner, fn: Any, on_finished: Any, on_failed: Any) -> Any:
        events.append("task")
        return start(self, fn, on_finished, on_failed)

    monkeypatch.setattr(TaskRunner, "start", recorded)
    window = _shown_window(qtbot, make_window)
    tab = window.open_path(str(example))
    assert events == ["task"]  # the static read

    class Paints(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and tab.is_tree_shown:
                events.append("paint")
            return False

    paints = Paints(tab)
    tab.tree.viewport().installEventFilter(paints)
    qtbot.waitUntil(lambda: tab.model_card.card is not None and tab.proxy._keys is not None, timeout=WAIT_MS)
    assert events[:2] == ["task", "paint"] and events.count("task") == 4, events
    assert tab.model_card.isVisible()


_PROBE = r"""
import json, os, sys
from inspector.app import run_gui
from inspector.gui import instance_channel
from inspector.engine.protocol import EngineFailed

facts = {"started": False, "shown_with_worker": None}
#: What the window needs only once a plot, a dialog or a load asks for it.
LATER = ("torch", "numpy", "pyqtgraph", "inspector.gui.export_dialog", "inspector.gui.diff_window",
         "inspector.gui.code_files_dialog", "inspector.core.export_plan", "inspector.core.model_card")

class RecordingClient:
    ready, devices, torch_version, pickle_modules, pid = False, [], None, ["pickle"], None

    def __init__(self, on_event):
        self.on_event = on_event

    def start(self):  # as the real client's: once started, later calls do nothing
        if facts["started"]:
            return
        facts["started"] = True
        facts["qt_imported_at_start"] = any(m.startswith("PySide6") for m in sys.modules)
        # said before any window exists: the window must still hear it
        self.on_event(EngineFailed("The probe's loader is not there."))

    def submit(self, request):
        return 1

    def cancel(self, job_id):
        pass

    def close(self):
        facts["closed"] = True

def on_window(window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    facts["shown_with_worker"] = facts["started"] and window.isVisible()

    def on_tab(_index):
        tab = window.current_tab()
        if tab is not None and not facts.get("watching"):
            facts["watching"] = True
            tab.tree_shown.connect(
                lambda: facts.setdefault("network_at_tree", "PySide6.QtNetwork" in sys.modules)
            )
            tab.tree_shown.connect(
                lambda: facts.setdefault("imported", sorted(m for m in LATER if m in sys.modules))
            )
    window.tabs.currentChanged.connect(on_tab)
    def check():
        facts["status_line"] = window.statusBar().currentMessage()
        tab = window.current_tab()
        if facts["status_line"] and (tab is None or tab.is_tree_shown):
            facts["title"] = window.windowTitle()
            QApplication.instance().quit()
    timer = QTimer(window)
    timer.timeout.connect(check)
    timer.start(10)
    QTimer.singleShot(20_000, QApplication.instance().quit)

if os.environ.get("PROBE_QT_ONLY"):  # as on Windows: the channel is a named pipe only Qt opens
    instance_channel.unix_sockets = lambda: False
facts["status"] = run_gui(sys.argv[1:], ["probe"], client_factory=RecordingClient, on_window=on_window)
facts["qt_imported"] = any(m.startswith("PySide6") for m in sys.modules)
print(json.dumps(facts))
"""


def _probe(tmp_path: Path, name: str, *paths: str, qt_only: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, CHECKPOINT_INSPECTOR_INSTANCE=name, XDG_CONFIG_HOME=str(tmp_path / "config"))
    if qt_only:
        env["PROBE_QT_ONLY"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    return subprocess.Popen([sys.executable, str(probe), *paths], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _facts(qtbot: Any, proc: subprocess.Popen[str]) -> dict[str, Any]:
    qtbot.waitUntil(
        lambda: proc.poll() is not None, timeout=60_000
    )  # the test's own server answers meanwhile
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    facts: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return facts


def test_the_worker_starts_before_qt_and_the_window_hears_what_it_said_meanwhile(
    qtbot: Any, tmp_path: Path
) -> None:
    example = ROOT / "resources" / "examples" / "tiny_transformer_training.pth"
    proc = _probe(tmp_path, f"ci-startup-a-{os.getpid()}", str(example))
    facts = _facts(qtbot, proc)
    assert facts["started"] is True and facts["qt_imported_at_start"] is False
    assert facts["shown_with_worker"] is True
    assert facts["status_line"] == "The probe's loader is not there."  # held until the bridge existed
    assert facts["status"] == 0 and facts["closed"] is True
    # The tree is up without what only a plot, a dialog or a load needs.
    assert facts["title"].startswith(example.name) and facts["imported"] == []
    # Later launches are taken once the tree is up: the socket and its module cost it nothing.
    assert facts["network_at_tree"] is False


@pytest.mark.parametrize("qt_only", [False, True], ids=["socket file", "only Qt can tell"])
def test_a_second_launch_hands_its_file_over_without_a_worker(
    qapp: Any, qtbot: Any, tmp_path: Path, qt_only: bool
) -> None:
    name = f"ci-startup-b-{os.getpid()}-{int(qt_only)}"
    received: list[list[str]] = []
    server = InstanceServer(lambda: [], qapp)
    server.files_received.connect(received.append)
    assert server.listen(name) and os.path.exists(listen_address(name))
    try:
        wanted = tmp_path / "second.pth"
        facts = _facts(qtbot, _probe(tmp_path, name, str(wanted), qt_only=qt_only))
    finally:
        server.close()
    assert received == [[str(wanted)]]
    assert facts["status"] == 0
    assert facts["started"] is False  # no worker for a window this launch never shows
    # Nor Qt, where the channel is a socket file: the hand-over is one line of JSON.
    assert facts["qt_imported"] is qt_only
