"""The lazy tree model and its filter/sort proxy."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from inspector.core.keyfilter import MatchMode
from inspector.core.model import Node
from inspector.gui.filter_proxy import CheckpointFilterProxy
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole


def _find(model: Any, names: list[str], column: int = 0) -> QModelIndex:
    """The index reached by following display names of column 0 (names match by prefix)."""
    parent = QModelIndex()
    index = QModelIndex()
    for name in names:
        for row in range(model.rowCount(parent)):
            candidate = model.index(row, 0, parent)
            if str(candidate.data()).split(" ")[0] == name:
                index = candidate
                break
        else:
            raise AssertionError(f"{name!r} not under {parent.data()!r}")
        parent = index
    return index.siblingAtColumn(column)


def _child_names(model: Any, parent: QModelIndex | QPersistentModelIndex) -> list[str]:
    return [model.index(r, 0, parent).data() for r in range(model.rowCount(parent))]


def test_model_passes_qt_model_tester(qtmodeltester: Any, sample_tree: Node) -> None:
    model = CheckpointTreeModel(sample_tree)
    qtmodeltester.check(model, force_py=False)
    qtmodeltester.check(model, force_py=True)


def test_proxy_passes_qt_model_tester(qtmodeltester: Any, sample_tree: Node) -> None:
    proxy = CheckpointFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(sample_tree, proxy))
    proxy.set_filter("weight")
    qtmodeltester.check(proxy)


def test_index_out_of_range_is_invalid(sample_tree: Node) -> None:
    model = CheckpointTreeModel(sample_tree)
    assert not model.index(99, 0).isValid()
    assert not model.index(0, len(Column)).isValid()
    assert not model.index(-1, 0).isValid()
    assert model.index(0, 0).internalPointer() is sample_tree.children[0]


def test_columns_show_tensors_values_refs_and_aggregates(sample_tree: Node) -> None:
    model = CheckpointTreeModel(sample_tree)
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == [
        "Name", "Shape", "DType", "Saved on", "Loaded on", "Params", "Size", "NaN/Inf", "L2 norm", "Shard",
    ]  # fmt: skip

    weight = _find(model, ["model", "layers", "2", "weight"])
    row = [weight.siblingAtColumn(c).data() for c in Column]
    assert row == ["weight", "[10, 1]", "float32", "cpu", "", "10", "40 B", "", "", ""]
    assert weight.data(ItemRole.KeyRole) == "model.layers.2.weight"
    assert "model.layers.2.weight" in weight.data(Qt.ItemDataRole.ToolTipRole)
    assert model.flags(weight) & Qt.ItemFlag.ItemNeverHasChildren

    layers = _find(model, ["model", "layers"])
    params = layers.siblingAtColumn(Column.PARAMS)
    assert params.data(ItemRole.SortRole) == 3 * 2 + 9 * 2 + 10 * 2 + 2 * 2
    assert layers.siblingAtColumn(Column.SIZE).data() == "192 B"
    assert layers.siblingAtColumn(Column.SAVED_ON).data() == "cpu"
    assert not model.flags(layers) & Qt.ItemFlag.ItemNeverHasChildren

    names = _child_names(model, QModelIndex())
    assert "epoch = 7" in names
    assert "tied → same as model" in names
    args = _find(model, ["args"])
    assert _child_names(model, args) == ["lr = 0.001"]
    assert args.siblingAtColumn(Column.DTYPE).data() == "argparse.Namespace"
    step = _find(model, ["optimizer", "state", "0", "step"])
    assert step.siblingAtColumn(Column.SHAPE).data() == "[]"


def test_loaded_on_fills_only_its_column(qtbot: Any, sample_tree: Node) -> None:
    model = CheckpointTreeModel(sample_tree)
    changes: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda tl, br, _roles: changes.append((tl.column(), br.column())))
    devices = {
        ("model", "layers.0.weight"): "meta",
        ("model", "layers.0.bias"): "meta",
        ("optimizer", "state", 0, "step"): "cpu",
    }
    model.set_loaded_devices(devices)
    assert changes and all(c == (Column.LOADED_ON, Column.LOADED_ON) for c in changes)
    assert _find(model, ["model", "layers", "0", "weight"], Column.LOADED_ON).data() == "meta"
    assert _find(model, ["model", "layers", "0"], Column.LOADED_ON).data() == "meta"
    assert _find(model, ["optimizer", "state", "0", "step"], Column.LOADED_ON).data() == "cpu"
    assert _find(model, ["model", "layers", "1", "bias"], Column.LOADED_ON).data() == ""
    model.set_loaded_devices({})
    assert _find(model, ["model", "layers", "0", "weight"], Column.LOADED_ON).data() == ""


def _proxy(tree: Node) -> CheckpointFilterProxy:
    proxy = CheckpointFilterProxy()
    proxy.setSourceModel(CheckpointTreeModel(tree, proxy))
    return proxy


def test_sorting_by_params_and_size_is_numeric(sample_tree: Node) -> None:
    proxy = _proxy(sample_tree)
    layers = QPersistentModelIndex(_find(proxy, ["model", "layers"]))
    # Layer params: 0 → 6, 1 → 18, 2 → 20, 10 → 4: as text "18" < "20" < "4" < "6".
    proxy.sort(Column.PARAMS, Qt.SortOrder.DescendingOrder)
    assert _child_names(proxy, layers) == ["2", "1", "0", "10"]
    proxy.sort(Column.SIZE, Qt.SortOrder.AscendingOrder)
    assert _child_names(proxy, layers) == ["10", "0", "1", "2"]
    proxy.sort(Column.NAME, Qt.SortOrder.AscendingOrder)
    assert _child_names(proxy, layers) == ["0", "1", "2", "10"]


def test_filter_keeps_parents_of_matches(sample_tree: Node) -> None:
    proxy = _proxy(sample_tree)
    proxy.set_filter("layers.1.bias")
    assert _child_names(proxy, QModelIndex()) == ["model"]
    layers = _find(proxy, ["model", "layers"])
    assert _child_names(proxy, layers) == ["1"]
    assert _child_names(proxy, proxy.index(0, 0, layers)) == ["bias"]


@pytest.mark.parametrize(
    ("pattern", "mode", "top", "layer_names"),
    [
        ("*.10.*", MatchMode.GLOB, ["model"], ["10"]),
        (r"layers\.(0|2)\.weight$", MatchMode.REGEX, ["model"], ["0", "2"]),
        ("LR", MatchMode.SUBSTRING, ["args"], None),
    ],
)
def test_filter_modes(
    sample_tree: Node, pattern: str, mode: MatchMode, top: list[str], layer_names: Any
) -> None:
    proxy = _proxy(sample_tree)
    proxy.set_filter(pattern, mode)
    assert [n.split(" ")[0] for n in _child_names(proxy, QModelIndex())] == top
    if layer_names is not None:
        assert _child_names(proxy, _find(proxy, ["model", "layers"])) == layer_names


def test_bad_regex_raises_a_sentence_and_keeps_the_filter(sample_tree: Node) -> None:
    proxy = _proxy(sample_tree)
    proxy.set_filter("epoch")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        proxy.set_filter("layers.(", MatchMode.REGEX)
    assert _child_names(proxy, QModelIndex()) == ["epoch = 7"]
    proxy.set_filter("")
    assert proxy.rowCount() == len(sample_tree.children)
