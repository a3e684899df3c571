"""Strings from a file reach labels, tooltips, dialogs and the clipboard only as visible escapes: no
ANSI sequence, carriage return, bidirectional override or HTML from a key changes what is shown."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QModelIndex
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QLabel, QListWidget, QTableWidget, QWidget

from inspector.core.formatting import escape_text
from inspector.core.peek import peek
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.display_text import escape_lines
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.export_dialog import ExportDialog
from inspector.gui.main_window import MainWindow
from inspector.gui.status_widgets import ErrorPanel
from inspector.gui.tree_model import ItemRole

WAIT_MS = 30_000
KEYS = ("evil\x1b[31mred", "line\rbreak", "bidi\u202etxt.exe", "<b>bold</b>&amp;")
#: Characters that, shown raw, move the cursor, rewrite a line or reorder text.
RAW = ("\x1b", "\r", "\u202e")

MakeWindow = Callable[..., MainWindow]


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A training checkpoint whose parameter names carry escapes, line breaks, a bidi override and
    HTML; the file name carries a bidi override too."""
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(3, 2)) for _ in KEYS]
    optimizer = torch.optim.Adam(weights)
    sum(w.sum() for w in weights).backward()  # type: ignore[union-attr]
    optimizer.step()
    model = {key: w.detach() for key, w in zip(KEYS, weights, strict=True)}
    path = tmp_path / "run\u202egnp.pth"
    torch.save({"model": model, "optimizer": optimizer.state_dict()}, path)
    return path


def _texts(root: QWidget) -> Iterator[str]:
    """Every text a user can see or hover in ``root`` and its children."""
    for widget in [root, *root.findChildren(QWidget)]:
        yield widget.windowTitle()
        yield widget.toolTip()
        if isinstance(widget, (QLabel, QAbstractButton)):
            yield widget.text()
        if isinstance(widget, QTableWidget):
            for row in range(widget.rowCount()):
                for column in range(widget.columnCount()):
                    item = widget.item(row, column)
                    if item is not None:
                        yield item.text()
                        yield item.toolTip()
        if isinstance(widget, QListWidget):
            for row in range(widget.count()):
                yield widget.item(row).text()


def _assert_clean(texts: Iterator[str]) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text, repr(text)


def _find(tab: CheckpointTab, key: str) -> QModelIndex:
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(tab.proxy.rowCount(parent)):
            index = tab.proxy.index(row, 0, parent)
            if index.data(ItemRole.KeyRole) == key:
                return index
            stack.append(index)
    raise AssertionError(key)


def test_window_panel_clipboard_and_breakdown_show_escapes(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, hostile: Path
) -> None:
    window = make_window(engine)
    window.show()
    tab = window.open_path(str(hostile))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: bool(tab.optimizer_maps), timeout=WAIT_MS)
    assert "\\u202e" in window.tabs.tabText(0) and "\\u202e" in window.windowTitle()
    _assert_clean(iter([window.tabs.tabText(0), window.tabs.tabToolTip(0), window.windowTitle()]))

    for key in KEYS:
        full = f"model.{key}"
        index = _find(tab, full)
        with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):
            tab.tree.setCurrentIndex(index)
        assert f"<b>{html.escape(escape_text(full))}</b>" in tab.detail.title_label.text()
        tab.copy_key_action.trigger()
        assert QGuiApplication.clipboard().text() == escape_text(full)
        tab.copy_row_action.trigger()
        _assert_clean(iter([QGuiApplication.clipboard().text()]))
    _assert_clean(_texts(window))

    breakdown = tab.show_breakdown()
    assert breakdown is not None
    qtbot.addWidget(breakdown)
    shown = list(_texts(breakdown))
    _assert_clean(iter(shown))
    assert any(escape_text("model.evil\x1b[31mred") in text for text in shown)


def test_export_preview_shows_escaped_keys(qtbot: Any, engine: EngineBridge, hostile: Path) -> None:
    dialog = ExportDialog(peek(str(hostile)), engine)
    qtbot.addWidget(dialog)
    dialog.update_preview()
    shown = list(_texts(dialog))
    _assert_clean(iter(shown))
    assert escape_text("model.bidi\u202etxt.exe") in shown


def test_error_details_keep_their_lines_but_escape_each(qtbot: Any) -> None:
    panel = ErrorPanel()
    qtbot.addWidget(panel)
    panel.show_error("torch could not load it.", "GLOBAL os\x00.system\nname: \u202eevil\r\n\tend")
    shown = panel.details_text.toPlainText()
    assert shown.splitlines() == ["GLOBAL os\\x00.system", "name: \\u202eevil", "    end"]
    assert escape_lines("a\rb") == "a\\rb"
