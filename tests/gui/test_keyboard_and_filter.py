"""Driving the window as a user does: File ▸ Open, the keyboard, the filter box and what it says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu

from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.diff_window import DiffWindow
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.i18n import ENGLISH, SETTINGS_LANGUAGE, SIMPLIFIED_CHINESE, UiLanguage
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import ItemRole
from tests import checkpoints

WAIT_MS = 30_000

MakeWindow = Callable[..., MainWindow]


def _shown_keys(tab: CheckpointTab) -> set[str]:
    keys: set[str] = set()
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(tab.proxy.rowCount(parent)):
            index = tab.proxy.index(row, 0, parent)
            keys.add(index.data(ItemRole.KeyRole))
            stack.append(index)
    return keys


@pytest.fixture
def training(tmp_path: Path) -> Path:
    return checkpoints.build_training(tmp_path).path


def _open(qtbot: Any, window: MainWindow, path: Path) -> CheckpointTab:
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: tab.is_tree_shown, timeout=WAIT_MS)
    return tab


def test_open_lists_every_layout_and_starts_in_the_last_folder(
    make_window: MakeWindow, training: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []

    def fake_open(_parent: Any, _title: str, folder: str, file_filter: str) -> tuple[list[str], str]:
        asked.append((folder, file_filter))
        return [], ""

    def fake_folder(_parent: Any, _title: str, folder: str) -> str:
        asked.append((folder, ""))
        return ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake_open))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(fake_folder))
    window = make_window()
    window.open_dialog()
    patterns = asked[-1][1].split(";;")[0]
    for pattern in ("*.pth", "*.pt", "*.ckpt", "*.bin", "*.safetensors", "*.index.json", "*.jit"):
        assert pattern in patterns
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / training.name
    training.rename(moved)
    window.open_path(str(moved))
    window.open_dialog()
    assert asked[-1][0] == str(elsewhere)
    window.open_folder_dialog()
    assert asked[-1][0] == str(elsewhere)
    again = make_window()  # remembered for the next start
    again.open_dialog()
    assert asked[-1][0] == str(elsewhere)


def test_ctrl_f_puts_the_cursor_in_the_filter_box(
    qtbot: Any, make_window: MakeWindow, training: Path
) -> None:
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    tab = _open(qtbot, window, training)
    window.activateWindow()
    tab.tree.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tab.tree)
    QTest.keyClick(tab.tree, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is tab.filter_edit
    QTest.keyClicks(QApplication.focusWidget(), "head")
    assert tab.filter_edit.text() == "head"
    QTest.keyClick(tab.filter_edit, Qt.Key.Key_Return)  # Enter filters and goes to the rows
    assert QApplication.focusWidget() is tab.tree
    assert _shown_keys(tab) >= {"model.head.weight"}
    assert "model.embed.weight" not in _shown_keys(tab)


def _mnemonics(menu: QMenu) -> list[str]:
    letters = []
    for action in menu.actions():
        text = action.text()
        at = text.find("&")
        if at >= 0 and at + 1 < len(text):
            letters.append(text[at + 1].lower())
    return letters


@pytest.mark.parametrize("code", [ENGLISH, SIMPLIFIED_CHINESE])
def test_no_two_menu_entries_share_a_mnemonic(
    qapp: Any, settings: Any, make_window: MakeWindow, code: str
) -> None:
    settings.setValue(SETTINGS_LANGUAGE, code)
    language = UiLanguage(settings)
    try:
        language.apply()
        window = make_window(language=language)
        menus = [window.file_menu, window.view_menu]
        assert len(set(_mnemonics(window.menuBar()))) == len(_mnemonics(window.menuBar()))  # type: ignore[arg-type]
        for menu in menus:
            letters = _mnemonics(menu)
            assert letters and len(set(letters)) == len(letters), (menu.title(), letters)
    finally:
        language.remove()
        language.deleteLater()


def test_enter_in_a_compare_field_compares(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], training: Path
) -> None:
    fake_client["hold"] = True  # the request is what counts here
    window = DiffWindow(engine, None, str(training), "")
    qtbot.addWidget(window)
    window.show()
    window.b_edit.setText(str(training))
    QTest.keyClick(window.b_edit, Qt.Key.Key_Return)
    assert window.running
    window.cancel()
    assert not window.running


def test_an_invalid_regex_says_why_and_no_match_says_so(
    qtbot: Any, make_window: MakeWindow, training: Path
) -> None:
    window = make_window()
    window.show()
    tab = _open(qtbot, window, training)
    tab.filter_mode_combo.setCurrentText("Regex")
    tab.filter_edit.setText("exp_avg(")
    tab.apply_filter()
    assert tab.filter_message.isVisible()
    assert "Not a valid regular expression" in tab.filter_message.text()
    assert "missing )" in tab.filter_message.text()
    tab.filter_edit.setText("no_such_key")
    tab.apply_filter()
    assert tab.proxy.rowCount() == 0
    assert tab.filter_message.isVisible() and "“no_such_key”" in tab.filter_message.text()
    tab.filter_edit.setText("exp_avg")
    tab.apply_filter()
    assert not tab.filter_message.isVisible()


def test_the_filter_finds_optimizer_rows_by_their_parameter_label(
    qtbot: Any, make_window: MakeWindow, training: Path
) -> None:
    window = make_window()
    tab = _open(qtbot, window, training)
    qtbot.waitUntil(lambda: bool(tab.optimizer_maps), timeout=WAIT_MS)
    [slot] = [p.slot_key for m in tab.optimizer_maps for p in m.params if p.param_key == "model.head.weight"]
    assert slot is not None and "head" not in slot  # only the label says which parameter it is
    tab.filter_edit.setText("head.weight")
    tab.apply_filter()
    shown = _shown_keys(tab)
    assert {"model.head.weight", slot, f"{slot}.exp_avg"} <= shown
    assert "model.embed.weight" not in shown


def test_menu_shortcuts_work_while_typing_in_the_filter_box(
    qtbot: Any, make_window: MakeWindow, training: Path
) -> None:
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    tab = _open(qtbot, window, training)
    window.activateWindow()
    tab.focus_filter()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tab.filter_edit)
    QTest.keyClicks(tab.filter_edit, "head")
    QTest.keyClick(tab.filter_edit, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert tab.filter_edit.selectedText() == "head"  # Ctrl+F again: the whole text, ready to retype
    QTest.keyClick(tab.filter_edit, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)  # File ▸ Export
    assert getattr(window, "export_dialog", None) is not None and window.export_dialog.isVisible()
    assert tab.filter_edit.text() == "head"
    window.export_dialog.close()


def test_typing_on_a_large_file_judges_no_row_under_its_closed_wide_row(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file opens with its wide top row closed; the keystrokes of a broad filter and of
    clearing it judge none of the rows below it (they are judged when it is opened)."""
    import torch
    from safetensors.torch import save_file

    from inspector.gui.filter_proxy import CheckpointFilterProxy

    count = 6000
    path = tmp_path / "wide.safetensors"
    save_file({f"blocks.{i}.weight": torch.zeros(1) for i in range(count)}, str(path))
    judged = [0]
    real = CheckpointFilterProxy.filterAcceptsRow

    def counting(self: CheckpointFilterProxy, source_row: int, source_parent: QModelIndex) -> bool:
        judged[0] += 1
        return real(self, source_row, source_parent)

    monkeypatch.setattr(CheckpointFilterProxy, "filterAcceptsRow", counting)
    tab = _open(qtbot, make_window(), path)
    blocks = tab.proxy.index(0, 0)
    assert not tab.tree.isExpanded(blocks) and tab.proxy.hasChildren(blocks)
    judged[0] = 0
    for text in ("blocks.5", "", "blocks.6"):  # each matches more rows than are revealed
        tab.filter_edit.setText(text)
        tab.apply_filter()
        assert tab.proxy.rowCount() == 1 and not tab.tree.isExpanded(tab.proxy.index(0, 0)), text
    assert judged[0] < count, judged[0]
    tab.tree.expand(tab.proxy.index(0, 0))
    shown = {f"blocks.{i}.weight" for i in (6, *range(60, 70), *range(600, 700))}
    assert _shown_keys(tab) == {"blocks", *shown}


def _all_rows_open(tab: CheckpointTab) -> bool:
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        if parent.isValid() and tab.proxy.hasChildren(parent) and not tab.tree.isExpanded(parent):
            return False
        stack.extend(tab.proxy.index(row, 0, parent) for row in range(tab.proxy.rowCount(parent)))
    return True


def test_a_keystroke_that_keeps_the_same_rows_open_does_not_walk_them_again(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    """On an ordinary file the filter opens every row it keeps; the next letter, keeping the same
    rows all open, costs no walk over them; a row the user closed opens again on the next letter."""
    import torch
    from safetensors.torch import save_file

    from inspector.gui.tree_model import CheckpointTreeModel
    from tests.call_counts import python_calls

    path = tmp_path / "layers.safetensors"
    save_file({f"layers.{i // 10}.part.{i % 10}.weight": torch.zeros(1) for i in range(1000)}, str(path))
    tab = _open(qtbot, make_window(), path)

    def type_in(text: str) -> int:
        """The Python calls the keystroke made into the tree model (the view walking its rows)."""
        tab.filter_edit.setText(text)
        _, calls = python_calls(tab.apply_filter)
        return calls

    first = type_in("l")  # every key holds an "l": all 1,111 rows kept, and opened
    assert _all_rows_open(tab) and tab.proxy.rowCount() == 1
    assert type_in("la") < first / 20  # the same rows, all open already
    assert _all_rows_open(tab)
    layer = tab.proxy.index(0, 0, tab.proxy.index(0, 0))
    tab.tree.collapse(layer)
    type_in("lay")
    assert tab.tree.isExpanded(layer) and _all_rows_open(tab)
    type_in("layers.5")  # other rows kept: those open too
    assert _all_rows_open(tab) and _shown_keys(tab) >= {"layers.5.part.0.weight", "layers.59.part.9.weight"}
    assert "layers.6.part.0.weight" not in _shown_keys(tab)
    assert isinstance(tab.model, CheckpointTreeModel)
