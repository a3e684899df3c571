"""The window with the real engine worker, and a start-up that never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.tree_model import Column, ItemRole
from tests import checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 120_000  # the worker imports torch first

pytestmark = pytest.mark.slow


def _loaded_on(tab: CheckpointTab, key: str) -> str:
    assert tab.model is not None
    node = next(n for n in tab.model.root.walk() if n.key == key)
    return tab.model.loaded_device(node) or ""


def test_real_engine_loads_cpu_then_meta(
    qtbot: Any, make_window: Any, real_engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_training(tmp_path).path
    window = make_window(real_engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    assert _loaded_on(tab, "model.embed.weight") == "cpu"
    assert _loaded_on(tab, "optimizer.state.3.exp_avg_sq") == "cpu"
    assert real_engine.devices[:2] == ["cpu", "meta"]

    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        window.options_bar.set_map_location("meta")
    assert _loaded_on(tab, "model.embed.weight") == "meta"
    top = tab.proxy.index(0, Column.LOADED_ON)
    assert top.siblingAtColumn(0).data(ItemRole.KeyRole) == "model"
    assert top.data() == "meta"


def test_real_engine_cuda_tagged_opens_and_strict_as_saved_offers_cpu(
    qtbot: Any, make_window: Any, real_engine: EngineBridge, tmp_path: Path
) -> None:
    path = checkpoints.build_cuda_tagged(tmp_path).path
    window = make_window(real_engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):  # as saved where possible, else cpu
        pass
    lacking = [d for d in ("cuda:0", "cuda:1") if d not in real_engine.devices]
    for device in lacking:
        assert device in tab.load_label.text()
    assert _loaded_on(tab, "encoder.weight") == ("cpu" if "cuda:0" in lacking else "cuda:0")

    strict = tab.load_failed if lacking else tab.load_finished
    with qtbot.waitSignal(strict, timeout=WAIT_MS):
        window.options_bar.set_map_location(None)
    if not lacking:
        return  # this machine has both devices: strictly as saved loads too
    assert "cuda" in tab.error_panel.message_label.text().lower()
    button = tab.error_panel.button("Load on cpu")
    assert button is not None
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        button.click()
    assert _loaded_on(tab, "encoder.weight") == "cpu"


_PROBE = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from inspector.app import run_gui
from inspector.gui.main_window import MainWindow

facts = {}

def check():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    tab = windows[0].current_tab() if windows else None
    if tab is None or not tab.is_tree_shown or tab.is_loading:
        QTimer.singleShot(50, check)
        return
    facts["title"] = windows[0].windowTitle()
    facts["loaded"] = tab.load_label.text()
    facts["torch"] = "torch" in sys.modules
    QApplication.instance().quit()

QTimer.singleShot(0, check)
status = run_gui([sys.argv[1]], ["probe"])
facts["status"] = status
facts["torch_at_exit"] = "torch" in sys.modules
print(json.dumps(facts))
"""


def test_gui_never_imports_torch(tmp_path: Path) -> None:
    path = checkpoints.build_training(tmp_path).path
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # keep the user's QSettings out of it
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    proc = subprocess.run(
        [sys.executable, str(probe), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["title"] == f"{path.name} — Checkpoint Inspector"
    assert facts["loaded"].startswith("Loaded with torch")
    assert facts["torch"] is False and facts["torch_at_exit"] is False
    assert facts["status"] == 0


def _users_instance_name() -> str:
    """The name the user's own running app listens on (what ``server_name`` gives without the
    test run's override)."""
    from inspector.gui import single_instance

    saved = os.environ.pop("CHECKPOINT_INSPECTOR_INSTANCE", None)
    try:
        return single_instance.server_name()
    finally:
        if saved is not None:
            os.environ["CHECKPOINT_INSPECTOR_INSTANCE"] = saved


def test_an_app_started_by_the_tests_leaves_the_users_running_app_alone(qtbot: Any, tmp_path: Path) -> None:
    """A window started by the suite listens under the run's own name and hands nothing to a window
    the user has open: the user's app (here a stand-in on the user's name) sees no connection."""
    from PySide6.QtCore import QProcess, QProcessEnvironment
    from PySide6.QtNetwork import QLocalServer

    from inspector.gui.single_instance import send_request, server_name

    users = _users_instance_name()
    assert server_name() != users  # the run's override is in force for every test
    stand_in = QLocalServer()
    connections: list[int] = []
    stand_in.newConnection.connect(lambda: connections.append(1))
    listening = stand_in.listen(users)
    before = None if listening else send_request({"command": "status"}, name=users)

    path = checkpoints.build_training(tmp_path).path
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE)
    env = QProcessEnvironment.systemEnvironment()
    env.insert("QT_QPA_PLATFORM", "offscreen")
    env.insert("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    child = QProcess()
    child.setProcessEnvironment(env)
    with qtbot.waitSignal(child.finished, timeout=180_000):
        child.start(sys.executable, [str(probe), str(path)])
    output = bytes(child.readAllStandardOutput().data()).decode()
    facts = json.loads(output.strip().splitlines()[-1])
    assert facts["title"] == f"{path.name} — Checkpoint Inspector"  # it opened its own window
    if listening:
        assert connections == []
        stand_in.close()
    else:  # the user's real app holds the name: its open files are what they were
        assert send_request({"command": "status"}, name=users) == before
