"""A TorchScript tab offers its code files, shown read-only from the zip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase

from inspector.gui.code_files_dialog import CodeFilesDialog
from inspector.gui.main_window import MainWindow
from tests.layouts import write_torchscript

WAIT_MS = 30_000
MakeWindow = Callable[..., MainWindow]


def test_torchscript_tab_shows_its_code_files_read_only(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    path = write_torchscript(tmp_path / "scripted.pt")
    window = make_window()
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert tab.code_files_button.isVisibleTo(tab)
    tab.code_files_button.click()
    dialog = tab.code_files
    assert isinstance(dialog, CodeFilesDialog)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.text_shown, timeout=WAIT_MS):  # the first file, selected on listing
        pass
    items = [dialog.file_list.item(row) for row in range(dialog.file_list.count())]
    names = [item.data(Qt.ItemDataRole.UserRole) for item in items]
    wanted = "code/__torch__/tests/layouts.py"  # the scripted class lives in tests/layouts.py
    assert wanted in names and "code/__torch__/torch/nn/modules/linear.py" in names
    assert all(name.endswith(".py") for name in names)
    if dialog.file_list.currentRow() != names.index(wanted):
        with qtbot.waitSignal(dialog.text_shown, timeout=WAIT_MS) as blocker:
            dialog.file_list.setCurrentRow(names.index(wanted))
        assert blocker.args == [wanted]
    text = dialog.text_view.toPlainText()
    assert "def forward(" in text and "2.5" in text
    assert dialog.text_view.isReadOnly()
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    assert dialog.text_view.font().family() == fixed.family()


def test_plain_checkpoint_tab_has_no_code_files_button(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(2)}, path)
    window = make_window()
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert not tab.code_files_button.isVisibleTo(tab)
    assert tab.show_code_files() is None
