"""Checkpoints in several files in the window: a folder opens as one tree with a Shard column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QMimeData, QModelIndex, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import Column, ItemRole
from tests.layouts import sample_state, write_dcp, write_hf_set

WAIT_MS = 30_000
MakeWindow = Callable[..., MainWindow]


def _rows(tab: CheckpointTab) -> dict[str, QModelIndex]:
    model = tab.tree.model()
    out: dict[str, QModelIndex] = {}
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            out[index.data(ItemRole.NodeRole).key] = index
            stack.append(index)
    return out


def test_dropped_dcp_folder_shows_chunks_in_the_shard_column(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2, 3), "step": 1})
    window = make_window(engine)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)  # fmt: skip
    window.dropEvent(event)
    tab = window.current_tab()
    assert tab is not None
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert not tab.tree.header().isSectionHidden(Column.SHARD)
    w = _rows(tab)["w"].siblingAtColumn(Column.SHARD)
    assert w.data() == "__0_0.distcp"
    assert "[0:2, 0:3] in __0_0.distcp" in w.data(Qt.ItemDataRole.ToolTipRole)
    assert "dcp" in tab.summary_label.text()
    assert "step" in _rows(tab)


def test_hf_shard_opens_the_set_with_a_shard_column(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    write_hf_set(tmp_path, sample_state())
    window = make_window(engine)
    tab = window.open_path(str(tmp_path / "model-00001-of-00002.safetensors"))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    rows = _rows(tab)
    assert rows["lm_head.bias"].siblingAtColumn(Column.SHARD).data() == "model-00002-of-00002.bin"
    assert "hf-sharded" in tab.summary_label.text()


def test_single_file_hides_the_shard_column_and_shows_safetensors_metadata(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "f8.safetensors"
    save_file({"a": torch.zeros(4, dtype=torch.float8_e4m3fn)}, str(path), metadata={"note": "hi"})
    window = make_window(engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    assert tab.tree.header().isSectionHidden(Column.SHARD)
    summary = tab.summary_label.text()
    assert "float8_e4m3fn" in summary and "note=" in summary and "hi" in summary


def test_open_folder_action_exists(make_window: MakeWindow) -> None:
    window = make_window()
    assert window.open_folder_action.text()
    assert window.open_folder_action in window.file_menu.actions()


def _loaded_on(tab: CheckpointTab) -> dict[str, str]:
    return {
        key: str(index.siblingAtColumn(Column.LOADED_ON).data() or "") for key, index in _rows(tab).items()
    }


def test_a_shard_set_is_loaded_with_torch_and_every_tensor_says_where(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    state = sample_state()
    index = write_hf_set(tmp_path, state)
    window = make_window(engine)
    for opened in (tmp_path / "model-00002-of-00002.bin", index):  # a shard opens the set it belongs to
        tab = window.open_path(str(opened))
        with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
            pass
        loaded = _loaded_on(tab)
        assert {key: loaded[key] for key in state} == dict.fromkeys(state, "cpu")
        assert tab.load_label.text().startswith("Loaded with torch (map location: cpu)")
        assert not tab.has_error


def test_a_dcp_folder_is_loaded_with_torch_without_unpickling_its_metadata(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2, 3), "b": torch.zeros(4)})
    window = make_window(engine)
    tab = window.open_path(str(folder))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        pass
    loaded = _loaded_on(tab)
    assert loaded["w"] == "cpu" and loaded["b"] == "cpu"
    assert tab.load_label.text().startswith("Loaded with torch")
