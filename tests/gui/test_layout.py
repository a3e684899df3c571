"""What fits on screen: whole shapes and labels, the numbers at 1024×700, a splitter that moves, and
the export dialog's preview and report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QCoreApplication, QEvent, QModelIndex

from inspector.core.model import Node, NodeKind
from inspector.core.peek import peek
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.column_widths import SAMPLE_ROWS, ColumnSizer, sample_rows
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.export_dialog import ExportDialog
from inspector.gui.main_window import MainWindow
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole

WAIT_MS = 30_000

MakeWindow = Callable[..., MainWindow]


@pytest.fixture
def convnet(tmp_path: Path) -> Path:
    """A conv net's state_dict and SGD state (optimizer rows labelled with long parameter names), and
    a 4-D tensor deep in a part of the file that opens collapsed."""
    torch.manual_seed(0)
    block = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64), torch.nn.Conv2d(64, 32, 3)
    )
    net = torch.nn.ModuleDict({"encoder_block_with_a_long_name": block})
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    block(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    path = tmp_path / "convnet.pth"
    deep = {"deep": {"deeper": {"kernel": torch.zeros(512, 256, 3, 3)}}, "tiny": torch.full((3,), 1e-7)}
    torch.save(
        {"state_dict": net.state_dict(), "optimizer_state_dict": optimizer.state_dict(), "extra": deep}, path
    )
    return path


def _open(
    qtbot: Any, make_window: MakeWindow, path: Path, width: int, height: int, engine: Any = None
) -> CheckpointTab:
    window = make_window(engine)
    window.resize(width, height)
    window.show()
    qtbot.waitExposed(window)
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: tab.is_tree_shown and bool(tab.optimizer_maps), timeout=WAIT_MS)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    tab.columns.fit_name()
    return tab


def _index(tab: CheckpointTab, key: str) -> QModelIndex:
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(tab.proxy.rowCount(parent)):
            index = tab.proxy.index(row, 0, parent)
            if index.data(ItemRole.KeyRole) == key:
                return index
            stack.append(index)
    raise AssertionError(key)


def _fits(tab: CheckpointTab, index: QModelIndex, column: Column) -> bool:
    """The cell's whole text fits its column (the view elides what does not)."""
    text = str(index.siblingAtColumn(column).data())
    needed = tab.tree.fontMetrics().horizontalAdvance(text)
    room = tab.tree.visualRect(index.siblingAtColumn(column)).width()
    return needed <= room - 6


def test_whole_4d_shapes_and_optimizer_labels_show_in_a_wide_window(
    qtbot: Any, make_window: MakeWindow, convnet: Path
) -> None:
    tab = _open(qtbot, make_window, convnet, 1500, 900)
    tab.tree.expandAll()  # the user opens what started collapsed
    assert _fits(tab, _index(tab, "extra.deep.deeper.kernel"), Column.SHAPE)  # [512, 256, 3, 3]
    slot = _index(tab, "optimizer_state_dict.state.4")
    assert "(state_dict.encoder_block_with_a_long_name.2.weight)" in str(slot.data())
    assert _fits(tab, slot, Column.NAME)


def test_at_1024x700_loaded_on_params_and_size_are_on_screen(
    qtbot: Any, make_window: MakeWindow, convnet: Path
) -> None:
    tab = _open(qtbot, make_window, convnet, 1024, 700)
    header = tab.tree.header()
    width = tab.tree.viewport().width()
    for column in (Column.SHAPE, Column.DTYPE, Column.SAVED_ON, Column.LOADED_ON, Column.PARAMS, Column.SIZE):
        right = header.sectionViewportPosition(column) + header.sectionSize(column)
        assert right <= width, (column.name, right, width)
    assert _fits(tab, _index(tab, "state_dict.encoder_block_with_a_long_name.2.weight"), Column.SHAPE)


def test_statistics_columns_show_their_numbers_and_keep_the_sizes_on_screen(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, convnet: Path
) -> None:
    tab = _open(qtbot, make_window, convnet, 1280, 800, engine)
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):  # a norm of "0" shows the columns
        tab.tree.setCurrentIndex(_index(tab, "state_dict.encoder_block_with_a_long_name.1.running_mean"))
    tiny = _index(tab, "extra.tiny")
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):
        tab.tree.setCurrentIndex(tiny)
    assert tiny.siblingAtColumn(Column.NORM).data() == "1.732e-07"
    assert _fits(tab, tiny, Column.NORM) and _fits(tab, tiny, Column.NONFINITE)
    header = tab.tree.header()
    for column in (Column.PARAMS, Column.SIZE, Column.NORM):
        assert (
            header.sectionViewportPosition(column) + header.sectionSize(column) <= tab.tree.viewport().width()
        )


def test_the_splitter_lets_the_tree_take_the_room(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, convnet: Path
) -> None:
    tab = _open(qtbot, make_window, convnet, 1024, 700, engine)
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):  # numbers in the panel
        tab.tree.setCurrentIndex(_index(tab, "state_dict.encoder_block_with_a_long_name.0.weight"))
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    for label in tab.detail.stat_labels.values():
        if label.isVisible():
            assert label.width() >= label.fontMetrics().horizontalAdvance(label.text()), label.text()
    tree_before, panel_before = tab.splitter.sizes()
    narrow = tab.detail.minimumSizeHint().width()
    assert narrow <= 250
    total = tree_before + panel_before
    tab.splitter.setSizes([total - 180, 180])  # dragged narrower than it can be: as narrow as it can be
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    tree_after, panel_after = tab.splitter.sizes()
    assert panel_after == narrow and tree_after >= tree_before
    for label in tab.detail.stat_labels.values():  # one pair a row now: no number is cut
        if label.isVisible():
            assert label.width() >= label.fontMetrics().horizontalAdvance(label.text()), label.text()
    tab.splitter.setSizes([total - 420, 420])  # widened by the user: two pairs a row, where they fit
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    assert tab.detail._stats_pairs == 2
    assert tab.splitter.isCollapsible(1)  # dragged to the edge, the panel goes and the tree gets it all
    tab.splitter.setSizes([total, 0])
    assert tab.splitter.sizes()[1] == 0


def test_column_sizing_reads_a_bounded_sample(qapp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QTreeView

    root = Node("", NodeKind.DICT, "", ())
    for group in range(40):
        parent = root.add(Node(f"g{group}", NodeKind.DICT, f"g{group}", (f"g{group}",)))
        for item in range(500):
            key = f"g{group}.v{item}"
            parent.add(Node(f"v{item}", NodeKind.VALUE, key, (f"g{group}", f"v{item}"), value="1"))
    rows = sample_rows(root)
    assert len(rows) == SAMPLE_ROWS and {n.name for n, _ in rows} >= {f"g{g}" for g in range(40)}
    model = CheckpointTreeModel(root)
    view = QTreeView()
    view.setModel(model)
    calls = {"n": 0}
    data = model.data

    def counted(*args: Any) -> Any:
        calls["n"] += 1
        return data(*args)

    monkeypatch.setattr(model, "data", counted)
    ColumnSizer(view).apply(model)
    assert calls["n"] <= SAMPLE_ROWS * len(Column)  # 20,040 rows, a bounded number of reads
    view.deleteLater()


def test_export_preview_is_tall_and_the_report_has_no_false_alarm(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], convnet: Path, tmp_path: Path
) -> None:
    dialog = ExportDialog(peek(str(convnet)), engine)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    target = tmp_path / "copy.pth"
    dialog.target_edit.setText(str(target))
    dialog.update_preview()
    row_height = dialog.preview.verticalHeader().defaultSectionSize()
    assert dialog.preview.viewport().height() >= 10 * row_height
    dialog.export_button.click()
    assert dialog.job is not None
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS):
        pass
    assert "verified." in dialog.report_label.text() and target.exists()
    assert not dialog.problem_label.isVisible()  # nothing red about the file just written
    assert dialog.note_label.isVisible() and "just written" in dialog.note_label.text()
    assert not dialog.export_button.isEnabled()
    dialog.target_edit.setText(str(tmp_path / "other.pth"))
    dialog.update_preview()
    assert dialog.export_button.isEnabled() and not dialog.note_label.isVisible()


def test_at_1024x700_the_examples_tensor_names_are_whole_beside_the_panel(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge
) -> None:
    """With the statistics columns shown, the tree keeps the room for the keys: the panel opens at
    the width it needs, and every tensor name of the example is whole."""
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    tab = _open(qtbot, make_window, example, 1024, 700, engine)
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):  # the NaN/Inf and norm columns appear
        tab.tree.setCurrentIndex(_index(tab, "model.embed_tokens.weight"))
    assert tab.splitter.sizes()[1] <= tab.detail.sizeHint().width()
    tab.tree.expandAll()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    tensors = [n for n in tab.model.root.tensors() if n.key.startswith("model.")]
    assert len(tensors) == 28
    cut = [
        n.key for n in tensors if not _fits(tab, tab.proxy.mapFromSource(tab.model.index_of(n)), Column.NAME)
    ]
    assert cut == []
