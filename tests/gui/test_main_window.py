"""The window opening real files: tree, title, options, errors, recent files, copying, drops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QModelIndex, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtWidgets import QTreeView

from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.load_options_bar import AS_SAVED, AS_SAVED_ELSE, CustomMapLocationDialog
from inspector.gui.main_window import APP_NAME, EMPTY_TEXT, MainWindow
from inspector.gui.tree_model import Column, ItemRole
from tests import checkpoints

WAIT_MS = 30_000

MakeWindow = Callable[..., MainWindow]


def _keys(tab: CheckpointTab) -> set[str]:
    assert tab.model is not None
    return {node.key for node in tab.model.root.walk()}


def _find_key(tab: CheckpointTab, key: str) -> QModelIndex:
    """The proxy index (column 0) of the row whose full key is ``key``."""
    proxy = tab.proxy
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            if index.data(ItemRole.KeyRole) == key:
                return index
            stack.append(index)
    raise AssertionError(f"{key!r} is not in the tree")


def _loaded_on(tab: CheckpointTab, key: str) -> str:
    return str(_find_key(tab, key).siblingAtColumn(Column.LOADED_ON).data())


def _open_and_load(qtbot: Any, window: MainWindow, path: Path) -> CheckpointTab:
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    return tab


@pytest.fixture
def training(tmp_path: Path) -> Path:
    return checkpoints.build_training(tmp_path).path


def test_empty_window(make_window: MakeWindow) -> None:
    window = make_window()
    assert window.windowTitle() == APP_NAME
    assert window.stack.currentWidget() is window.empty_label
    assert window.empty_label.text() == EMPTY_TEXT


def test_open_fills_tree_title_summary_and_loaded_on(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, training: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    window = make_window(engine)
    tab = window.open_path(str(training))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert window.windowTitle() == f"{training.name} — {APP_NAME}"
    assert window.findChild(QTreeView, "checkpointTree") is tab.tree
    assert {"model.embed.weight", "optimizer.state.0.exp_avg", "epoch", "args.lr"} <= _keys(tab)
    summary = tab.summary_label.text()
    assert "torch-zip" in summary and "55 tensors" in summary and "saved on cpu" in summary
    assert _find_key(tab, "epoch").data() == "epoch = 7"

    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    assert _loaded_on(tab, "model.embed.weight") == "cpu"
    assert _loaded_on(tab, "optimizer.state.0.exp_avg") == "cpu"
    assert not tab.is_busy


def test_switching_map_location_reloads(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, training: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    window = make_window(engine)
    tab = _open_and_load(qtbot, window, training)
    assert _loaded_on(tab, "model.head.weight") == "cpu"

    combo = window.options_bar.map_combo
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        combo.setCurrentIndex(combo.findText("meta"))
        combo.activated.emit(combo.currentIndex())
    assert _loaded_on(tab, "model.head.weight") == "meta"
    assert _find_key(tab, "model").siblingAtColumn(Column.LOADED_ON).data() == "meta"
    assert engine.client.submitted[-1][1].options.map_location == "meta"  # type: ignore[attr-defined]


def test_engine_devices_appear_in_the_combo(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, fake_client: dict[str, Any]
) -> None:
    fake_client["devices"] = ("cpu", "meta", "cuda:0", "cuda:1")
    window = make_window(engine)
    with qtbot.waitSignal(engine.engine_ready, timeout=WAIT_MS):
        engine.start()
    combo = window.options_bar.map_combo
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == [AS_SAVED_ELSE, AS_SAVED, "cpu", "meta", "cuda:0", "cuda:1", "Custom…"]


@pytest.mark.parametrize(
    ("writer", "sentence"),
    [
        (checkpoints.write_missing, "does not exist"),
        (checkpoints.write_directory, "is a folder"),
        (checkpoints.write_empty, "is empty"),
        (checkpoints.write_png, "is a PNG image"),
        (checkpoints.write_path_config, "path-configuration text file"),
        (checkpoints.write_truncated_zip, "is truncated"),
        (checkpoints.write_random_bytes, "not a checkpoint"),
        (checkpoints.write_plain_zip, "not a PyTorch checkpoint"),
    ],
)
def test_each_error_is_a_sentence_and_other_tabs_keep_working(
    qtbot: Any,
    make_window: MakeWindow,
    engine: EngineBridge,
    settings: Any,
    tmp_path: Path,
    training: Path,
    writer: Callable[[Path], Path],
    sentence: str,
) -> None:
    settings.setValue("load/map_location", "cpu")
    window = make_window(engine)
    good = _open_and_load(qtbot, window, training)
    (tmp_path / "broken").mkdir()
    broken_path = writer(tmp_path / "broken")
    bad = window.open_path(str(broken_path))
    qtbot.waitUntil(lambda: bad.error_panel.isVisibleTo(bad), timeout=WAIT_MS)
    assert sentence in bad.error_panel.message_label.text()
    assert broken_path.name in bad.error_panel.message_label.text()
    assert not bad.tree_area.isVisibleTo(bad)
    assert "Traceback" not in bad.error_panel.message_label.text()
    assert window.windowTitle() == APP_NAME  # the failed tab shows no tree

    window.tabs.setCurrentWidget(good)
    assert window.windowTitle() == f"{training.name} — {APP_NAME}"
    good.filter_edit.setText("exp_avg_sq")
    good.apply_filter()
    assert good.proxy.rowCount() == 1  # only "optimizer" keeps a match
    with qtbot.waitSignal(good.load_finished, timeout=WAIT_MS):
        good.reload(good.options)


@pytest.fixture
def cuda_tagged(tmp_path: Path) -> Path:
    return checkpoints.build_cuda_tagged(tmp_path).path


def test_cuda_checkpoint_as_saved_offers_load_on_cpu(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, cuda_tagged: Path
) -> None:
    window = make_window(engine)
    window.options_bar.set_map_location(None)  # strictly as saved, chosen in this session
    tab = window.open_path(str(cuda_tagged))
    with qtbot.waitSignal(tab.load_failed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args == ["cuda-unavailable"]
    assert tab.tree_area.isVisibleTo(tab)  # the static tree stays
    assert _find_key(tab, "encoder.weight").siblingAtColumn(Column.SAVED_ON).data() == "cuda:0"
    assert "cuda" in tab.error_panel.message_label.text().lower()
    button = tab.error_panel.button("Load on cpu")
    assert button is not None

    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.options_bar.map_combo.currentText() == "cpu"
    assert engine.client.submitted[-1][1].options.map_location == "cpu"  # type: ignore[attr-defined]
    assert _loaded_on(tab, "decoder.bias") == "cpu"
    assert not tab.error_panel.isVisibleTo(tab)


def test_weights_only_refusal_names_the_globals(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_namespace(tmp_path).path
    window = make_window(engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.load_failed, timeout=WAIT_MS) as failed:
        pass
    assert failed.args == ["weights-only"]
    assert "argparse.Namespace" in tab.error_panel.message_label.text()
    assert tab.is_tree_shown


def test_cancel_a_running_load(
    qtbot: Any,
    make_window: MakeWindow,
    engine: EngineBridge,
    fake_client: dict[str, Any],
    training: Path,
) -> None:
    fake_client["hold"] = True
    window = make_window(engine)
    tab = window.open_path(str(training))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert tab.is_loading and tab.is_busy
    qtbot.mouseClick(tab.busy.cancel_button, Qt.MouseButton.LeftButton)
    client = engine.client
    assert client.cancelled == [client.submitted[-1][0]]  # type: ignore[attr-defined]
    assert not tab.is_busy and not tab.is_loading
    assert "cancelled" in tab.error_panel.message_label.text()


def test_cancel_drops_the_peek_result(
    qtbot: Any, make_window: MakeWindow, runner: Any, training: Path
) -> None:
    window = make_window()
    tab = window.open_path(str(training))
    tab.cancel()
    runner.wait_for_done()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    assert not tab.is_tree_shown
    assert "was cancelled" in tab.error_panel.message_label.text()
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        qtbot.mouseClick(tab.error_panel.button("Open again"), Qt.MouseButton.LeftButton)


def test_open_twice_focuses_the_tab_and_close_shows_empty_state(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, training: Path
) -> None:
    window = make_window()
    first = window.open_path(str(training))
    other = window.open_path(str(checkpoints.build_state_dict(tmp_path).path))
    assert window.tabs.currentWidget() is other
    assert window.open_path(str(training)) is first
    assert window.tabs.count() == 2 and window.tabs.currentWidget() is first
    window.close_current_tab()
    window.close_current_tab()
    assert window.tabs.count() == 0
    assert window.stack.currentWidget() is window.empty_label
    assert window.windowTitle() == APP_NAME


def test_open_recent_survives_a_new_window(make_window: MakeWindow, tmp_path: Path, training: Path) -> None:
    other = checkpoints.build_state_dict(tmp_path).path
    window = make_window()
    window.open_path(str(training))
    window.open_path(str(other))
    window.close()

    again = make_window()
    again._fill_recent_menu()
    texts = [a.text() for a in again.recent_menu.actions() if a.text()]
    assert texts[:2] == [str(other), str(training)]
    assert texts[-1] == "Clear"
    next(a for a in again.recent_menu.actions() if a.text() == str(training)).trigger()
    assert again.current_tab() is not None and again.current_tab().path == str(training)
    next(a for a in again.recent_menu.actions() if a.text() == "Clear").trigger()
    assert again.recent.paths() == []


def test_recent_list_keeps_ten(make_window: MakeWindow) -> None:
    window = make_window()
    for i in range(12):
        window.recent.add(f"/models/{i}.pt")
    assert window.recent.paths() == [f"/models/{i}.pt" for i in range(11, 1, -1)]


def test_copy_key_and_row(qtbot: Any, make_window: MakeWindow, training: Path) -> None:
    window = make_window()
    tab = window.open_path(str(training))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    index = _find_key(tab, "model.layers.0.0.weight")
    tab.tree.setCurrentIndex(index)
    tab.tree.setFocus()
    tab.copy_key_action.trigger()
    assert QGuiApplication.clipboard().text() == "model.layers.0.0.weight"
    tab.copy_row_action.trigger()
    cells = QGuiApplication.clipboard().text().split("\t")
    assert cells[0] == "model.layers.0.0.weight"
    assert len(cells) == len(Column)
    assert cells[Column.DTYPE] == "float32"
    assert tab.copy_key_action.shortcut().toString() == "Ctrl+C"


def test_bad_regex_turns_the_filter_red(qtbot: Any, make_window: MakeWindow, training: Path) -> None:
    window = make_window()
    tab = window.open_path(str(training))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    tab.filter_mode_combo.setCurrentText("Regex")
    tab.filter_edit.setText("exp_avg(")
    tab.apply_filter()
    assert tab.filter_error is not None and "regular expression" in tab.filter_edit.toolTip()
    assert "background" in tab.filter_edit.styleSheet()
    with qtbot.waitSignal(tab._filter_timer.timeout, timeout=WAIT_MS):
        tab.filter_edit.setText(r"exp_avg(_sq)?$")
    assert tab.filter_error is None and tab.filter_edit.styleSheet() == ""
    tab.filter_mode_combo.setCurrentText("Glob")
    tab.filter_edit.setText("optimizer.state.1*")
    tab.apply_filter()
    assert tab.proxy.rowCount() == 1


def test_map_location_is_remembered(make_window: MakeWindow, settings: Any) -> None:
    window = make_window()
    window.options_bar.set_map_location("meta")
    window.options_bar.mmap_check.setChecked(False)
    window.options_bar.confirm_unsafe = lambda: True  # type: ignore[method-assign]
    window.options_bar.weights_only_check.setChecked(False)
    assert window.options_bar.options().weights_only is False
    window.close()
    settings.sync()
    again = make_window()
    assert again.options_bar.map_combo.currentText() == "meta"
    options = again.options_bar.options()
    assert options.map_location == "meta" and not options.mmap
    assert options.weights_only is True  # turning it off never outlives the session


def test_turning_weights_only_off_asks_first(make_window: MakeWindow) -> None:
    window = make_window()
    bar = window.options_bar
    emitted: list[Any] = []
    bar.options_changed.connect(emitted.append)
    bar.confirm_unsafe = lambda: False  # type: ignore[method-assign]
    bar.weights_only_check.setChecked(False)
    assert bar.weights_only_check.isChecked() and bar.options().weights_only is True
    assert emitted == []


def test_custom_map_location_dialog(qtbot: Any, make_window: MakeWindow) -> None:
    window = make_window()
    bar = window.options_bar
    emitted: list[Any] = []
    bar.options_changed.connect(emitted.append)
    bar.map_combo.activated.emit(bar.map_combo.findText("Custom…"))
    dialog = bar.custom_dialog
    assert isinstance(dialog, CustomMapLocationDialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.edit.setText("cuda:1→gpu")
    assert not ok.isEnabled() and "“gpu” is not a device name" in dialog.message.text()
    dialog.edit.setText("cuda:1→cuda:0")
    assert ok.isEnabled()
    dialog.accept()
    assert bar.map_combo.currentText() == "cuda:1→cuda:0"
    assert emitted[-1].map_location == {"cuda:1": "cuda:0"}


def test_drop_files_opens_them(qtbot: Any, make_window: MakeWindow, training: Path) -> None:
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(training))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    window.dropEvent(event)
    tab = window.current_tab()
    assert tab is not None and tab.path == str(training)
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass


def _many_tensors(path: Path, count: int) -> Path:
    """A safetensors file of ``count`` small tensors (its tree makes several objects each)."""
    import json
    import struct

    header = {f"many.{i // 100}.experts.{i % 100}.weight": {
        "dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)}  # fmt: skip
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(4 * count))
    return path


def _rows_walked(prefix: str) -> int:
    """Tree rows the collector walks (a frozen one is in none of its generations)."""
    import gc

    from inspector.core.model import Node

    return sum(1 for o in gc.get_objects() if type(o) is Node and o.key.startswith(prefix))


def test_a_large_tree_is_left_to_no_pass_of_the_collector_and_freed_when_its_tab_closes(
    qtbot: Any, make_window: MakeWindow, runner: Any, tmp_path: Path
) -> None:
    """A large file's rows are never walked by the collector while its tab shows them (its pass
    would stop a keystroke); once the file is read again, or its tab closed, the tree it let go is
    back with the collector, nothing keeps it alive, and its pass frees it."""
    import gc

    from inspector.core.collector import MANY_OBJECTS

    count = MANY_OBJECTS // 4
    window = make_window()
    window.open_path(str(_many_tensors(tmp_path / "many.safetensors", count)))

    def tab() -> CheckpointTab:  # (the test keeps no reference of its own)
        current = window.tabs.currentWidget()
        assert isinstance(current, CheckpointTab)
        return current

    qtbot.waitUntil(lambda: tab().is_tree_shown, timeout=WAIT_MS)
    first_id = id(tab().model)
    assert gc.get_freeze_count() > count
    assert _rows_walked("many.") == 0
    tab().open(tab().options)  # the file read again: a new tree, the old one let go
    qtbot.waitUntil(lambda: tab().is_tree_shown and id(tab().model) != first_id, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: gc.get_freeze_count() == 0 and runner.active_count() == 0, timeout=WAIT_MS)
    gc.collect()
    model = tab().model
    assert model is not None
    shown = sum(1 for n in model.root.walk() if n.key.startswith("many."))
    del model
    assert _rows_walked("many.") == shown > count  # the new tree's rows; the old tree's were freed
    window.close_current_tab()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: gc.collect() >= 0 and _rows_walked("many.") == 0, timeout=WAIT_MS)


def test_a_cancelled_read_of_a_large_file_leaves_nothing_frozen(
    qtbot: Any, make_window: MakeWindow, runner: Any, tmp_path: Path
) -> None:
    """Cancel while a large file is read: the read still ends on its thread, and the tree it made,
    which nobody shows, goes back to the collector."""
    import gc

    from inspector.core.collector import MANY_OBJECTS

    window = make_window()
    tab = window.open_path(str(_many_tensors(tmp_path / "many.safetensors", MANY_OBJECTS // 4)))
    tab.cancel()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: gc.get_freeze_count() == 0, timeout=WAIT_MS)
    assert not tab.is_tree_shown


def test_a_tab_behind_another_still_gets_its_background_work(
    qtbot: Any, make_window: MakeWindow, runner: Any, training: Path, tmp_path: Path
) -> None:
    """A tab opened behind another is not painted: its background work starts anyway."""
    window = make_window()
    window.show()
    qtbot.waitExposed(window)
    first = window.open_path(str(training))
    second = window.open_path(str(_many_tensors(tmp_path / "many.safetensors", 100)))
    assert window.tabs.currentWidget() is second
    qtbot.waitUntil(lambda: first.is_tree_shown and second.is_tree_shown, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: all(t.proxy._keys is not None and t.model_card.card is not None for t in (first, second)),
        timeout=WAIT_MS,
    )
