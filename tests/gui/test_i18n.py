"""The interface speaks Simplified Chinese: the catalog is complete, and the window follows the choice."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QLocale, QSettings, Qt, QTranslator

from inspector.gui.i18n import (
    CATALOG,
    ENGLISH,
    SETTINGS_LANGUAGE,
    SIMPLIFIED_CHINESE,
    SYSTEM,
    TRANSLATIONS,
    UiLanguage,
)
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import Column, ItemRole

TS = TRANSLATIONS / f"{CATALOG}_zh_CN.ts"
QM = TRANSLATIONS / f"{CATALOG}_zh_CN.qm"


@pytest.fixture
def language(qapp: Any, settings: QSettings) -> Iterator[UiLanguage]:
    """The window's language object over this test's settings; English again afterwards."""
    ui_language = UiLanguage(settings)
    yield ui_language
    ui_language.remove()
    ui_language.deleteLater()


def _menu_titles(window: MainWindow) -> list[str]:
    """The File and View titles (other menus may follow them)."""
    return [action.text() for action in window.menuBar().actions()][:2]


def _untranslated(ts: Path) -> list[str]:
    root = ET.parse(ts).getroot()
    return [
        f"{context.findtext('name')}: {message.findtext('source')}"
        for context in root.iter("context")
        for message in context.iter("message")
        if message.find("translation") is None
        or message.find("translation").get("type") in ("unfinished", "obsolete", "vanished")  # type: ignore[union-attr]
        or not (message.findtext("translation") or "").strip()
    ]


def test_catalog_is_complete_and_compiled(qapp: Any) -> None:
    assert ET.parse(TS).getroot().get("language") == "zh_CN"
    assert _untranslated(TS) == []
    compiled = QTranslator()
    assert compiled.load(str(QM))
    root = ET.parse(TS).getroot()
    for context in root.iter("context"):  # the .qm holds what the .ts says (rebuilt after edits)
        for message in context.iter("message"):
            name, source = context.findtext("name") or "", message.findtext("source") or ""
            assert compiled.translate(name, source) == message.findtext("translation"), source


def test_catalog_has_every_string_of_the_source(tmp_path: Path) -> None:
    """lupdate over today's source finds nothing the committed catalog lacks (run the update script)."""
    fresh = tmp_path / "fresh_zh_CN.ts"
    fresh.write_bytes(TS.read_bytes())
    root = Path(__file__).resolve().parents[2]
    sources = [*sorted((root / "inspector" / "gui").glob("*.py")), root / "inspector" / "app.py"]
    lupdate = Path(sys.executable).parent / "pyside6-lupdate"
    subprocess.run(
        [str(lupdate), *map(str, sources), "-no-obsolete", "-locations", "none", "-ts", str(fresh)],
        check=True,
        capture_output=True,
    )
    assert _untranslated(fresh) == []


def test_chinese_setting_gives_chinese_menus_and_columns(
    language: UiLanguage, settings: QSettings, make_window: Callable[..., MainWindow], sample_tree: Any
) -> None:
    from inspector.gui.tree_model import CheckpointTreeModel

    settings.setValue(SETTINGS_LANGUAGE, SIMPLIFIED_CHINESE)
    assert language.apply()
    window = make_window(language=language)
    assert _menu_titles(window) == ["文件(&F)", "视图(&V)"]
    assert window.language_menu.title() == "语言(&L)"
    assert window.language_actions[SIMPLIFIED_CHINESE].isChecked()
    assert window.empty_label.text() == "打开一个检查点（Ctrl+O），或把文件拖放到这里"
    assert window.options_bar.map_combo.itemText(1) == "按保存位置"
    assert window.options_bar.map_combo.itemData(1) == "As saved"  # the value stays canonical
    model = CheckpointTreeModel(sample_tree, window)
    assert model.headerData(Column.NAME, Qt.Orientation.Horizontal) == "名称"
    assert model.headerData(Column.SHAPE, Qt.Orientation.Horizontal) == "形状"


def test_english_stays_english(
    language: UiLanguage, settings: QSettings, make_window: Callable[..., MainWindow], sample_tree: Any
) -> None:
    from inspector.gui.tree_model import CheckpointTreeModel

    settings.setValue(SETTINGS_LANGUAGE, ENGLISH)
    assert not language.apply()
    window = make_window(language=language)
    assert _menu_titles(window) == ["&File", "&View"]
    model = CheckpointTreeModel(sample_tree, window)
    assert model.headerData(Column.NAME, Qt.Orientation.Horizontal) == "Name"


def test_system_choice_follows_the_system_locale(language: UiLanguage) -> None:
    assert language.choice() == SYSTEM
    assert language.locale() == QLocale.system()


def test_language_menu_switches_now_and_is_remembered(
    language: UiLanguage, settings: QSettings, make_window: Callable[..., MainWindow], qtbot: Any
) -> None:
    settings.setValue(SETTINGS_LANGUAGE, ENGLISH)
    window = make_window(language=language)
    assert _menu_titles(window) == ["&File", "&View"]

    window.language_actions[SIMPLIFIED_CHINESE].trigger()
    qtbot.waitUntil(lambda: _menu_titles(window) == ["文件(&F)", "视图(&V)"])
    assert settings.value(SETTINGS_LANGUAGE) == SIMPLIFIED_CHINESE
    assert window.open_action.text() == "打开(&O)…"
    assert window.options_bar.map_label.text() == "映射位置："
    assert "语言已切换" in window.statusBar().currentMessage()

    window.language_actions[ENGLISH].trigger()
    qtbot.waitUntil(lambda: _menu_titles(window) == ["&File", "&View"])
    assert settings.value(SETTINGS_LANGUAGE) == ENGLISH
    assert window.options_bar.map_combo.itemText(1) == "As saved"


def test_statistics_columns_speak_chinese(
    language: UiLanguage, settings: QSettings, sample_tree: Any
) -> None:
    """A tensor without NaN/Inf and a container holding flagged tensors are said in Chinese too."""
    from inspector.gui.tree_model import CheckpointTreeModel

    settings.setValue(SETTINGS_LANGUAGE, SIMPLIFIED_CHINESE)
    assert language.apply()
    model = CheckpointTreeModel(sample_tree)
    model.set_tensor_stats(
        {
            ("model", "layers.0.weight"): {"nan": 0, "posinf": 0, "neginf": 0, "l2_norm": 1.0},
            ("model", "layers.1.weight"): {"nan": 2, "posinf": 0, "neginf": 0, "has_nan_or_inf": True},
            ("model", "layers.2.weight"): {"nan": 1, "posinf": 1, "neginf": 0, "has_nan_or_inf": True},
        }
    )
    model_row = model.index(0, 0)
    layers = model.index(0, 0, model_row)
    first = model.index(0, 0, model.index(0, 0, layers))
    assert first.data(ItemRole.KeyRole) == "model.layers.0.weight"
    assert first.siblingAtColumn(Column.NONFINITE).data() == "无"
    assert model_row.siblingAtColumn(Column.NONFINITE).data() == "2 个张量"


def test_every_diff_status_core_names_is_translated(language: UiLanguage, settings: QSettings) -> None:
    """The diff's statuses are named in core; each of its labels has its Chinese in the catalog."""
    from inspector.core.diff import STATUS_LABELS, STATUSES
    from inspector.gui.diff_window import status_label

    settings.setValue(SETTINGS_LANGUAGE, SIMPLIFIED_CHINESE)
    assert language.apply()
    assert set(STATUS_LABELS) == set(STATUSES)
    untranslated = [STATUS_LABELS[s] for s in STATUSES if status_label(s) == STATUS_LABELS[s]]
    assert untranslated == []
