"""File ▸ Open URL…: a tab over a checkpoint where it lives, with what reading it cost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox

from inspector.engine.protocol import LoadRequest
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.open_url_dialog import OpenUrlDialog
from inspector.gui.tasks import TaskRunner
from inspector.gui.tree_model import ItemRole
from tests.gui.conftest import FakeEngineClient
from tests.remote.servers import RangeServer
from tests.remote.test_http import _build

WAIT_MS = 20_000


@pytest.fixture
def window(qtbot: Any, tmp_path: Path) -> Iterator[tuple[MainWindow, FakeEngineClient]]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    runner = TaskRunner()
    clients: list[FakeEngineClient] = []

    def client(on_event: Any) -> FakeEngineClient:
        clients.append(FakeEngineClient(on_event, {}))
        return clients[0]

    engine = EngineBridge(client)
    main = MainWindow(settings, engine, runner)
    qtbot.addWidget(main)
    yield main, clients[0]
    runner.shutdown()
    engine.close()


def test_a_url_opens_a_tab_with_the_tree_and_what_reading_it_cost(
    qtbot: Any, http: RangeServer, tmp_path: Path, window: tuple[MainWindow, FakeEngineClient]
) -> None:
    main, client = window
    path = _build(tmp_path, "zip")
    http.add("m.pth", path.read_bytes())
    url = http.url("m.pth") + "?token=t0ken"
    tab = main.open_path(url)
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert tab.display_name == "m.pth"
    keys = {tab.model.index(r, 0).data(ItemRole.NodeRole).key for r in range(tab.model.rowCount())}
    assert keys == {f"layer{i}.weight" for i in range(8)}
    assert "read " in tab.summary_label.text() and "of 16.0 MiB in 3 requests" in tab.summary_label.text()
    qtbot.waitUntil(lambda: "needs the whole file" in tab.load_label.text(), timeout=WAIT_MS)
    assert not any(isinstance(r, LoadRequest) for _, r in client.submitted)  # torch never sees a URL
    assert main.recent.paths() == [http.url("m.pth")]  # without the token
    assert "t0ken" not in main.tabs.tabToolTip(0)


def test_the_dialog_offers_a_pasted_url_and_explains_one_it_cannot_read(qtbot: Any) -> None:
    QGuiApplication.clipboard().setText("https://example.org/models/m.safetensors")
    dialog = OpenUrlDialog()
    qtbot.addWidget(dialog)
    assert dialog.url() == "https://example.org/models/m.safetensors"
    dialog.url_edit.setText("file:///tmp/m.pth")
    buttons = dialog.findChild(QDialogButtonBox)
    buttons.button(QDialogButtonBox.StandardButton.Open).click()
    assert not dialog.isVisible() or dialog.result() != OpenUrlDialog.DialogCode.Accepted
    assert "open the local file by its path instead" in dialog.error_label.text()
    dialog.url_edit.setText("hf://org/repo/model.safetensors")
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
        buttons.button(QDialogButtonBox.StandardButton.Open).click()


def test_a_url_on_the_command_line_reaches_the_window_as_that_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``checkpoint-inspector https://…/m.pth`` opens the URL, not a local path made from it."""
    import inspector.app
    from inspector.cli import main

    opened: list[list[str]] = []
    monkeypatch.setattr(inspector.app, "run_gui", lambda files, *a, **k: opened.append(files) or 0)
    local = tmp_path / "m.pth"
    local.write_bytes(b"")
    url = "https://example.org/ckpt/m.pth?token=abc"
    assert main([url, str(local)]) == 0
    assert opened == [[url, str(local)]]
