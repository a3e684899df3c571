"""The tree model and its filter at 100,000 rows: a view asks only for what it shows, and a
keystroke of the filter never asks the model for every row."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QTreeView

from inspector.core.keyfilter import MatchMode
from inspector.core.model import Node, NodeKind, TensorInfo
from inspector.gui.filter_proxy import CheckpointFilterProxy
from inspector.gui.tree_model import CheckpointTreeModel, Column
from tests.call_counts import python_calls

AnyIndex = QModelIndex | QPersistentModelIndex
BLOCKS, EXPERTS = 1000, 100  # 100,000 tensors under 1,000 groups


def _big_tree() -> Node:
    root = Node(name="", kind=NodeKind.DICT, key="", path=())
    for b in range(BLOCKS):
        group = root.add(Node(name=str(b), kind=NodeKind.GROUP, key=f"blocks.{b}", path=()))
        for e in range(EXPERTS):
            key = f"blocks.{b}.experts.{e}.weight"
            info = TensorInfo((4,), "float32", "cpu", str(b * EXPERTS + e), 0, (1,), 16, 4)
            group.add(Node(name=f"experts.{e}.weight", kind=NodeKind.TENSOR, key=key, path=(key,),
                           tensor=info, params=4, nbytes=16))  # fmt: skip
    return root


class CountingModel(CheckpointTreeModel):
    """The real model, counting the calls a view or a proxy makes into it."""

    def __init__(self, root: Node) -> None:
        super().__init__(root)
        self.data_calls = 0
        self.index_calls = 0

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        self.data_calls += 1
        return super().data(index, role)

    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        self.index_calls += 1
        return super().index(row, column, parent)


def test_a_view_of_100000_tensors_asks_only_for_the_rows_it_shows(qtbot: Any) -> None:
    model = CountingModel(_big_tree())
    proxy = CheckpointFilterProxy()
    proxy.setSourceModel(model)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setUniformRowHeights(True)
    view.resize(800, 600)
    view.setModel(proxy)
    view.expand(proxy.index(0, 0))
    view.show()
    qtbot.waitExposed(view)
    assert proxy.rowCount() == BLOCKS
    assert model.rowCount(model.index(0, 0)) == EXPERTS
    view.repaint()
    assert 0 < model.data_calls < 5_000, model.data_calls
    assert model.index_calls < 5_000, model.index_calls


def test_a_filter_keystroke_on_100000_tensors_never_asks_the_model_for_every_row(qtbot: Any) -> None:
    model = CountingModel(_big_tree())
    proxy = CheckpointFilterProxy()
    proxy.setSourceModel(model)
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.show()
    qtbot.waitExposed(view)
    for text, mode, blocks in (("blocks.57.experts", MatchMode.SUBSTRING, 1),
                               ("blocks.99*", MatchMode.GLOB, 11),
                               (r"^blocks\.12\d\.", MatchMode.REGEX, 10)):  # fmt: skip
        model.data_calls = model.index_calls = 0
        proxy.set_filter(text, mode)
        view.repaint()
        assert proxy.rowCount() == blocks, text
        assert model.data_calls < 5_000 and model.index_calls < 5_000, (text, model.data_calls)
    hits = proxy.first_hits(1000)
    assert len(hits) == 10 * EXPERTS and all(h.key.startswith("blocks.12") for h in hits)
    proxy.set_filter("")
    assert proxy.rowCount() == BLOCKS


class CountingProxy(CheckpointFilterProxy):
    """The real filter, counting the rows it is asked to judge."""

    judged = 0

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        self.judged += 1
        return super().filterAcceptsRow(source_row, source_parent)


def test_a_keystroke_that_keeps_the_same_rows_judges_no_row_again(qtbot: Any) -> None:
    """The first letters typed often match every key, and a longer needle often the same ones: the
    rows are not judged again then (at 10^6 keys that costs more than the search)."""
    model = CountingModel(_big_tree())
    proxy = CountingProxy()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == BLOCKS
    proxy.judged = 0
    proxy.set_filter("b")  # every key holds a "b"
    assert proxy.judged == 0 and proxy.rowCount() == BLOCKS and proxy.pattern == "b"
    proxy.set_filter("blocks.57.e")
    assert proxy.judged >= BLOCKS and proxy.rowCount() == 1
    proxy.judged = 0
    proxy.set_filter("blocks.57.exp")
    assert proxy.judged == 0 and proxy.rowCount() == 1 and proxy.pattern == "blocks.57.exp"
    proxy.set_filter("blocks.58.exp")
    assert proxy.rowCount() == 1
    assert proxy.mapToSource(proxy.index(0, 0)).internalPointer().key == "blocks.58"
    proxy.set_filter("")
    assert proxy.rowCount() == BLOCKS


def test_opening_the_model_of_100000_tensors_makes_no_python_call_per_tensor() -> None:
    """The "Saved on" of every group (one device, or "mixed") is found when the tree opens, without
    a function call per tensor row: 10^6 tensors open in a fraction of a second."""
    root = _big_tree()
    model, calls = python_calls(lambda: CheckpointTreeModel(root))
    assert calls < BLOCKS * EXPERTS // 10, f"{calls:,} Python calls for {BLOCKS * EXPERTS:,} tensors"
    top = model.index(0, Column.SAVED_ON)
    assert model.data(top) == "cpu"


def test_a_keystroke_judges_no_row_under_a_closed_row(qtbot: Any) -> None:
    """A view shows a closed row with its expand arrow without the rows below it being judged, so a
    keystroke does not judge them again either (10,000 under one row cost most of a keystroke)."""
    root = Node(name="", kind=NodeKind.DICT, key="", path=())
    root.add(top := Node(name="blocks", kind=NodeKind.GROUP, key="blocks", path=()))
    for b in range(BLOCKS):
        key = f"blocks.{b}.weight"
        info = TensorInfo((4,), "float32", "cpu", str(b), 0, (1,), 16, 4)
        top.add(Node(name=f"{b}.weight", kind=NodeKind.TENSOR, key=key, path=(key,), tensor=info))
    proxy = CountingProxy()
    proxy.setSourceModel(CheckpointTreeModel(root))
    view = QTreeView()
    qtbot.addWidget(view)
    view.setModel(proxy)
    view.show()
    qtbot.waitExposed(view)
    view.repaint()
    blocks = proxy.index(0, 0)
    assert proxy.hasChildren(blocks) and not view.isExpanded(blocks)
    proxy.judged = 0
    proxy.set_filter("blocks.57.w")
    view.repaint()
    assert proxy.judged < BLOCKS and proxy.hasChildren(blocks), proxy.judged
    view.expand(blocks)
    assert [proxy.index(r, 0, blocks).data() for r in range(proxy.rowCount(blocks))] == ["57.weight"]
    assert not proxy.hasChildren(proxy.index(0, 0, blocks))
