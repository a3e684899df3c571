"""The lazy tree model and its filter/sort proxy."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from torch import nn

from inspector.core.keyfilter import MatchMode
from inspector.core.model import MODULE_ATTRIBUTES, Node
from inspector.core.peek import peek
from inspector.engine.loader import tensor_devices
from inspector.gui.checkpoint_tab import summary_text
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
    assert args.data() == "args  (Namespace)"  # the class beside the name, not in DType
    assert args.siblingAtColumn(Column.DTYPE).data() == ""
    assert "argparse.Namespace" in args.data(Qt.ItemDataRole.ToolTipRole)
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


# -- real files: counts, modules, modern tensor kinds, strings from the file -----------------------


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.ReLU())


def _rows(model: CheckpointTreeModel, parent: QModelIndex | None = None) -> dict[str, QModelIndex]:
    parent = parent or QModelIndex()
    return {str(model.index(r, 0, parent).data(ItemRole.KeyRole)): model.index(r, 0, parent)
            for r in range(model.rowCount(parent))}  # fmt: skip


def test_a_dict_shows_how_many_entries_it_holds(tmp_path: Path) -> None:
    state = {f"encoder.layers.{i}.weight": torch.zeros(1) for i in range(112)}
    state |= {f"decoder.layers.{i}.weight": torch.zeros(1) for i in range(113)}
    path = tmp_path / "grouped.pt"
    torch.save({"model": state, "one": {"a": torch.zeros(1)}}, path)
    model = CheckpointTreeModel(peek(path).root)
    rows = _rows(model)
    assert model.rowCount(rows["model"]) == 2
    assert rows["model"].siblingAtColumn(Column.SHAPE).data() == "225 items"
    assert rows["one"].siblingAtColumn(Column.SHAPE).data() == "1 item"


def test_a_whole_module_shows_its_class_in_the_name_and_loaded_on_fills(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "whole.pth"
    torch.save({"net": Net()}, path)
    model = CheckpointTreeModel(peek(path).root)
    net = _rows(model)["net"]
    assert net.data() == "net  (Net)"
    rows = _rows(model, net)
    assert list(rows) == ["net.conv1.weight", "net.conv1.bias", "net.blocks", f"net.{MODULE_ATTRIBUTES}"]
    dtypes = {model.index(r, Column.DTYPE, n).data() for n in [net, *rows.values()] for r in
              range(model.rowCount(n))}  # fmt: skip
    assert dtypes <= {"float32", ""}  # no class names pushing the columns aside
    assert rows["net.conv1.weight"].siblingAtColumn(Column.SHAPE).data() == "[2, 1, 3, 3]"
    assert model.folded_nodes() == [rows[f"net.{MODULE_ATTRIBUTES}"].internalPointer()]
    loaded = torch.load(path, weights_only=False)
    model.set_loaded_devices({tuple(p): "meta" for p, _ in tensor_devices(loaded)})
    for node in model.root.tensors():
        assert model.loaded_device(node) == "meta", node.key


def test_a_whole_module_opens_with_its_attributes_folded(
    qtbot: Any, make_window: Any, tmp_path: Path
) -> None:
    path = tmp_path / "whole.pth"
    torch.save(Net(), path)
    window = make_window()
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=30_000):
        pass
    proxy = tab.proxy
    top = {proxy.index(r, 0).data(ItemRole.KeyRole): proxy.index(r, 0) for r in range(proxy.rowCount())}
    assert not tab.tree.isExpanded(top[MODULE_ATTRIBUTES])
    assert tab.tree.isExpanded(top["blocks"])
    assert "params" in tab.summary_label.text()


def test_sparse_nested_and_quantized_tensors_are_one_row_each(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {
            "coo": torch.eye(3).to_sparse_coo(),
            "jagged": torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged),
            "q": torch.quantize_per_tensor(torch.randn(3), 0.5, 3, torch.quint8),
        }
    path = tmp_path / "kinds.pt"
    torch.save(values, path)
    model = CheckpointTreeModel(peek(path).root)
    rows = _rows(model)
    assert rows["coo"].data() == "coo  (sparse_coo, 3 specified elements)"
    assert [model.index(r, 0, rows["coo"]).data() for r in range(2)] == ["indices", "values"]
    assert rows["jagged"].siblingAtColumn(Column.SHAPE).data() == "[2, *, 3]"
    assert rows["q"].data() == "q  (quantized, per tensor affine, scale 0.5, zero point 3)"
    assert rows["q"].siblingAtColumn(Column.DTYPE).data() == "quint8"


def test_keys_with_control_characters_and_surrogates_are_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"a\x1b[2Jb": 1, "w\ud800": 2}, protocol=2))
    model = CheckpointTreeModel(peek(path).root)
    names = [model.index(r, 0).data() for r in range(model.rowCount())]
    assert names == ["a\\x1b[2Jb = 1", "w\\ud800 = 2"]
    assert "\\ud800" in model.index(1, 0).data(Qt.ItemDataRole.ToolTipRole)


def test_the_summary_shows_the_model_and_every_tensor(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    text = summary_text(peek(example))
    assert "23.0K model params · 69.1K in all tensors" in text
    path = tmp_path / "sd.pt"
    torch.save({"w": torch.zeros(10), "b": torch.zeros(2)}, path)
    assert "12 params" in summary_text(peek(path)) and "all tensors" not in summary_text(peek(path))


def test_index_answers_as_has_index_does(sample_tree: Node) -> None:
    """A row or column outside, or a parent past the first column, gives an invalid index, as Qt's
    ``hasIndex`` says; every other one names the child in that row."""
    model = CheckpointTreeModel(sample_tree)
    parents = [QModelIndex(), model.index(0, 0), model.index(0, 1), model.index(1, 0)]
    for parent in parents:
        rows = model.rowCount(parent)
        for row in (-1, 0, rows - 1, rows, rows + 5):
            for column in (-1, 0, len(Column) - 1, len(Column)):
                index = model.index(row, column, parent)
                assert index.isValid() == model.hasIndex(row, column, parent), (row, column)
                if index.isValid():
                    assert model.node(index) is model.node(parent).children[row]
                    assert (index.row(), index.column()) == (row, column)


def _shown_rows(model: CheckpointTreeModel) -> dict[str, QModelIndex]:
    """Every row, walked as a view walks the model, by its key and row number."""
    shown: dict[str, QModelIndex] = {}
    stack = [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            shown[f"{index.data(ItemRole.KeyRole)}/{row}"] = index
            stack.append(index)
    return shown


def _column_texts(model: CheckpointTreeModel, column: Column) -> dict[str, str]:
    return {key: str(index.siblingAtColumn(column).data()) for key, index in _shown_rows(model).items()}


def test_saved_on_of_one_device_is_found_per_row_shown_and_matches_the_full_summary(tmp_path: Path) -> None:
    """A file saved on one device: each container's "Saved on" is found when it is shown (no pass
    over every row when the tree opens), and is what the summary of every row gives: the device
    where a tensor lies below, nothing where none does (an optimizer's param_groups, an empty dict)."""
    from tests import checkpoints

    index = peek(str(checkpoints.build_training(tmp_path).path))
    assert index.counted_devices == {"cpu": index.tensor_count}  # counted by the read's own pass
    full = CheckpointTreeModel(index.root)
    lazy = CheckpointTreeModel(index.root, saved_devices=index.saved_devices())
    assert lazy._saved_summary == {}  # nothing found before a row is shown
    expected = _column_texts(full, Column.SAVED_ON)
    assert _column_texts(lazy, Column.SAVED_ON) == expected
    assert {"cpu", ""} <= set(expected.values())
    mixed = CheckpointTreeModel(index.root, saved_devices={"cpu": 1, "cuda:0": 1})
    assert mixed._saved_summary  # several devices: every container summarized at once


@pytest.mark.parametrize("share", [1.0, 0.5], ids=["every tensor", "half of them"])
def test_loaded_on_one_device_is_found_per_row_shown_and_matches_the_full_summary(
    tmp_path: Path, share: float
) -> None:
    """The engine loaded the tensors (all, or only some of them) on one device: each row's "Loaded
    on" is found when it is shown, and is what the summary of every row gives; tensors on two
    devices are summarized at once, "mixed" where they meet."""
    from inspector.gui.tree_model import _device_summary
    from tests import checkpoints

    index = peek(str(checkpoints.build_training(tmp_path).path))
    rows = index.tensor_rows()
    devices = {tuple(n.path): "cuda:0" for n in rows[: int(len(rows) * share)]}
    model = CheckpointTreeModel(index.root, saved_devices=index.saved_devices())
    model.set_loaded_devices(devices)
    assert model._loaded == {} and model._loaded_summary == {}  # nothing found before a row is shown
    summary = _device_summary(index.root, lambda n: devices.get(tuple(n.path)))

    def expected(node: Node) -> str:
        if node.tensor is not None:
            return devices.get(tuple(node.path), "")
        return summary.get(id(node), "") if node.children else ""

    shown = _column_texts(model, Column.LOADED_ON)
    rows_shown = _shown_rows(model)
    assert shown == {k: expected(i.data(ItemRole.NodeRole)) for k, i in rows_shown.items()}
    unloaded = [
        k for k, i in rows_shown.items() if i.data(ItemRole.NodeRole).tensor is not None and not shown[k]
    ]
    assert "cuda:0" in shown.values() and bool(unloaded) is (share < 1.0)
    assert model.loaded_device(rows[0]) == "cuda:0"
    devices[tuple(rows[0].path)] = "cpu"
    model.set_loaded_devices(devices)
    assert "mixed" in _column_texts(model, Column.LOADED_ON).values()
