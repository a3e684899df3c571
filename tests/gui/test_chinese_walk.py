"""Switched to Chinese while files and dialogs are open, no text a user sees stays English."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMenu,
    QTabWidget,
    QWidget,
)

from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.i18n import (
    CATALOG,
    ENGLISH,
    SETTINGS_LANGUAGE,
    SIMPLIFIED_CHINESE,
    TRANSLATIONS,
    UiLanguage,
)
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import ItemRole
from tests import checkpoints

WAIT_MS = 30_000
#: Seen in the Chinese interface although they are English (a translation may be English too).
KNOWN_ENGLISH = (
    "map_location：",
    "Map location:",
    "Select a tensor to see its statistics and values.",
    "Histogram",
    "Heatmap",
    "Log count",
    "Save PNG…",
    "rows",
    "columns",
    "Copy as text",
    "Copy as NumPy",
    "Statistics",
    "Expand all",
    "Collapse all",
    "mean",
    "zeros",
    "value",
    "count",
)


def _plain(text: str) -> str:
    """A text as read: without its mnemonic marker ("&File", "文件(&F)")."""
    return re.sub(r"\(&\w\)", "", text).replace("&", "").strip()


def _english_sources() -> set[str]:
    """Every catalog source whose Chinese differs from it: seen in Chinese, it was not translated."""
    root = ET.parse(TRANSLATIONS / f"{CATALOG}_zh_CN.ts").getroot()
    out = set(KNOWN_ENGLISH)
    for message in root.iter("message"):
        source, translation = message.findtext("source") or "", message.findtext("translation") or ""
        if _plain(source) != _plain(translation):
            out.add(_plain(source))
    return {s for s in out if s}


def _header_texts(model: QAbstractItemModel | None) -> Iterator[str]:
    if model is None:
        return
    for section in range(model.columnCount()):
        yield str(model.headerData(section, Qt.Orientation.Horizontal) or "")


def _texts(root: QWidget) -> Iterator[tuple[str, str]]:
    """(where, text) for every text in ``root`` a user can see: labels, buttons, titles, tabs,
    combo items, placeholders, tooltips, column headers and menus."""
    for widget in [root, *root.findChildren(QWidget)]:
        if not widget.isVisibleTo(root.window()) and widget is not root and not isinstance(widget, QMenu):
            continue
        name = f"{type(widget).__name__} {widget.objectName()}"
        yield name, widget.windowTitle()
        yield name, widget.toolTip()
        if isinstance(widget, (QLabel, QAbstractButton)):
            yield name, widget.text()
        if isinstance(widget, QGroupBox):
            yield name, widget.title()
        if isinstance(widget, QLineEdit):
            yield name, widget.placeholderText()
        if isinstance(widget, QTabWidget):
            for i in range(widget.count()):
                yield name, widget.tabText(i)
        if isinstance(widget, QComboBox):
            for i in range(widget.count()):
                yield name, widget.itemText(i)
        if isinstance(widget, QAbstractItemView):
            for text in _header_texts(widget.model()):
                yield name, text
        if isinstance(widget, QMenu):
            yield name, widget.title()
            for action in widget.actions():
                yield name, action.text()


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


@pytest.fixture
def language(qapp: Any, settings: Any) -> Iterator[UiLanguage]:
    settings.setValue(SETTINGS_LANGUAGE, ENGLISH)
    ui_language = UiLanguage(settings)
    yield ui_language
    ui_language.remove()
    ui_language.deleteLater()


def test_switching_to_chinese_leaves_no_english_text(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    engine: EngineBridge,
    language: UiLanguage,
    tmp_path: Path,
) -> None:
    window = make_window(engine, language=language)
    window.resize(1400, 900)
    window.show()
    tab = window.open_path(str(checkpoints.build_training(tmp_path).path))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):
        tab.tree.setCurrentIndex(_find(tab, "model.embed.weight"))
    window.export_current()
    diff = window.compare_dialog()
    breakdown = tab.show_breakdown()
    window.options_bar.map_combo.activated.emit(window.options_bar.map_combo.findData("custom"))
    custom = window.options_bar.custom_dialog
    assert breakdown is not None and custom is not None
    windows: list[QWidget] = [window, window.export_dialog, diff, breakdown, custom]
    english_before = {text for w in windows for _where, text in _texts(w)}
    assert "Log count" in english_before and "Save PNG…" in english_before  # the walk sees them

    english_load = tab.load_label.text()
    window.language_actions[SIMPLIFIED_CHINESE].trigger()
    qtbot.waitUntil(lambda: window.file_menu.title() == "文件(&F)")
    english = _english_sources()
    left = sorted(
        {
            (type(w).__name__, where, text)
            for w in windows
            for where, text in _texts(w)
            if _plain(text) in english
        }
    )
    assert left == [], "\n".join(map(str, left))
    # The sentences about what happened are said again in Chinese, with the same parts: the time
    # torch.load itself took is named when the wait was much longer (how much longer is the machine's).
    chinese_load = tab.load_label.text()
    assert english_load.startswith("Loaded with torch") and chinese_load.startswith("已用 torch 加载")
    assert ("(torch.load itself:" in english_load) == ("(torch.load 本身：" in chinese_load)
    assert tab.detail.status_label.text().startswith("统计信息用时")
    assert "finite values" not in tab.detail.histogram.note_label.text()
    tab.detail.tabs.setCurrentWidget(tab.detail.values)  # the values view, shown after the switch
    left = sorted({(where, text) for where, text in _texts(tab.detail) if _plain(text) in english})
    assert left == []
    for dialog in (custom, breakdown, diff, window.export_dialog):
        dialog.close()
