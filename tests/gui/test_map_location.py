"""Where tensors are loaded: a default that opens every file, and the box showing the current tab's choice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QModelIndex

from inspector.core.load_options import AS_SAVED_ELSE_CPU, format_map_location
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.load_options_bar import AS_SAVED, CustomMapLocationDialog
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import Column, ItemRole
from tests import checkpoints

WAIT_MS = 30_000
DEFAULT = format_map_location(AS_SAVED_ELSE_CPU)

MakeWindow = Callable[..., MainWindow]


def _loaded_on(tab: CheckpointTab, key: str) -> str:
    proxy = tab.proxy
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            if index.data(ItemRole.KeyRole) == key:
                return str(index.siblingAtColumn(Column.LOADED_ON).data())
            stack.append(index)
    raise AssertionError(key)


@pytest.fixture
def cuda_tagged(tmp_path: Path) -> Path:
    return checkpoints.build_cuda_tagged(tmp_path).path


def test_a_cuda_file_opens_by_default_and_the_tab_says_what_moved(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, cuda_tagged: Path
) -> None:
    window = make_window(engine)
    assert window.options_bar.map_combo.currentData() == DEFAULT
    assert window.options_bar.options().map_location == AS_SAVED_ELSE_CPU
    tab = window.open_path(str(cuda_tagged))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    assert not tab.has_error
    assert _loaded_on(tab, "encoder.weight") == "cpu" and _loaded_on(tab, "decoder.bias") == "cpu"
    said = tab.load_label.text()
    assert "cuda:0" in said and "cuda:1" in said and "cpu" in said
    assert "As saved where possible, else cpu" in said


def test_strict_as_saved_is_not_carried_into_the_next_start(make_window: MakeWindow, settings: Any) -> None:
    window = make_window()
    window.options_bar.set_map_location(None)
    assert window.options_bar.map_combo.currentData() == AS_SAVED
    window.close()
    settings.sync()
    again = make_window()
    assert again.options_bar.map_combo.currentData() == DEFAULT


def test_the_box_shows_the_current_tabs_choice(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    first = checkpoints.build_training(tmp_path).path
    second = checkpoints.build_cuda_tagged(tmp_path).path
    window = make_window(engine)
    bar = window.options_bar
    tab_a = window.open_path(str(first))
    with qtbot.waitSignal(tab_a.load_finished, timeout=WAIT_MS):
        pass
    tab_b = window.open_path(str(second))
    with qtbot.waitSignal(tab_b.load_finished, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(tab_b.load_finished, timeout=WAIT_MS):
        bar.set_map_location("meta")
    assert tab_b.options.map_location == "meta" and tab_a.options.map_location == AS_SAVED_ELSE_CPU
    submitted = len(engine.client.submitted)  # type: ignore[attr-defined]

    window.tabs.setCurrentWidget(tab_a)
    assert bar.map_combo.currentData() == DEFAULT
    window.tabs.setCurrentWidget(tab_b)
    assert bar.map_combo.currentData() == "meta"
    assert len(engine.client.submitted) == submitted  # type: ignore[attr-defined]  # showing is not loading


def test_custom_dialog_says_arrows_work_and_shows_the_whole_message(qtbot: Any) -> None:
    dialog = CustomMapLocationDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert "->" in dialog.prompt.text()
    dialog.edit.setText("cuda:1 to cuda:0, and the rest somewhere else entirely")
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    message = dialog.message
    assert "not a device name" in message.text()
    assert message.height() >= message.heightForWidth(message.width())  # every line is shown
    assert message.geometry().bottom() < dialog.buttons.geometry().top()
    assert message.geometry().right() <= dialog.width()
