"""What the static tree shows for whole pickled modules, sparse / nested / quantized tensors, the item
counts of containers, and that hostile dotted keys cannot make the grouping explode."""

from __future__ import annotations

import struct
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from inspector.core.model import Node, NodeKind
from inspector.core.peek import peek
from inspector.core.report import index_to_json, render_text
from inspector.core.tree import MAX_TREE_BYTES, MODULE_ATTRIBUTES, TreeBuilder, describe
from inspector.core.unpickler import PDict
from inspector.engine.loader import tensor_devices


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)


class Net(nn.Module):
    """Parameters, buffers (one non-persistent), nested and repeated submodules, plain attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.layers = nn.ModuleList(Block() for _ in range(2))
        self.head = nn.Linear(4, 2, bias=False)
        self.register_buffer("mask", torch.ones(2), persistent=False)
        self.scale = 3.0


def _net() -> Net:
    torch.manual_seed(0)
    return Net()


def _tensor_rows(node: Node) -> dict[str, Node]:
    return {n.key: n for n in node.tensors()}


def _inside(node: Node, ancestor: Node) -> bool:
    up = node.parent
    while up is not None:
        if up is ancestor:
            return True
        up = up.parent
    return False


# -- a whole pickled nn.Module -------------------------------------------------------------------


def test_a_whole_module_shows_its_tensors_as_state_dict_names(tmp_path: Path) -> None:
    net = _net()
    path = tmp_path / "whole.pth"
    torch.save(net, path)
    index = peek(path)
    assert index.root.value == f"{Net.__module__}.Net"  # the class, shown beside the name
    (fold,) = [c for c in index.root.children if c.name == MODULE_ATTRIBUTES]
    listed = {k for k, n in _tensor_rows(index.root).items() if not _inside(n, fold)}
    assert listed == set(net.state_dict()) | {"mask"}
    top = [c.name for c in index.root.children]
    assert "conv1.weight" in top and top[-1] == MODULE_ATTRIBUTES
    layers = next(c for c in index.root.children if c.name == "layers")
    assert [c.name for c in layers.children] == ["0", "1"]  # grouped as state_dict keys are
    assert {c.name for c in layers.children[0].children} == {"attn.weight", "attn.bias", "norm.weight",
                                                              "norm.bias"}  # fmt: skip
    outside = [n.name for n in index.root.walk() if not _inside(n, fold) and n is not fold]
    assert not any(name.startswith(("_forward_hooks", "_state_dict_hooks", "_modules", "training"))
                   for name in outside)  # fmt: skip
    inside = {n.name: n for n in fold.children}
    assert {"_forward_hooks", "training", "scale", "conv1", "layers.0.attn"} <= set(inside)
    assert inside["layers.0.attn"].value == "torch.nn.modules.linear.Linear"


def test_module_tensor_paths_are_the_ones_the_engine_reports(tmp_path: Path) -> None:
    """ "Loaded on" matches tree rows to the engine's answer by path: both must name each tensor alike."""
    net = _net()
    net.extra = [torch.zeros(1)]  # a tensor outside the module's parameters and buffers
    path = tmp_path / "whole.pth"
    torch.save({"model": net, "epoch": 3}, path)
    index = peek(path)
    static = {n.path: n.key for n in index.root.tensors()}
    loaded = torch.load(path, weights_only=False)
    assert set(static) == {tuple(p) for p, _ in tensor_devices(loaded)}
    assert static[("model", "_modules", "conv1", "_parameters", "weight")] == "model.conv1.weight"
    assert static[("model", "_modules", "layers", "_modules", "1", "_modules", "norm", "_parameters",
                   "bias")] == "model.layers.1.norm.bias"  # fmt: skip


def test_a_repeated_submodule_is_listed_once_where_state_dict_first_reaches_it(tmp_path: Path) -> None:
    net = _net()
    net.tied = net.layers[0]
    path = tmp_path / "tied.pth"
    torch.save(net, path)
    index = peek(path)
    (ref,) = [c for c in index.root.children if c.name == "tied"]
    assert ref.kind is NodeKind.REF and ref.value == "layers.0"
    loaded = torch.load(path, weights_only=False)
    assert {n.path for n in index.root.tensors()} == {tuple(p) for p, _ in tensor_devices(loaded)}


# -- sparse, nested and quantized tensors ---------------------------------------------------------


def _save_one(tmp_path: Path, value: Any, fmt: str = "zip") -> Node:
    path = tmp_path / f"one_{fmt}.pt"
    torch.save({"t": value}, path, _use_new_zipfile_serialization=fmt == "zip")
    index = peek(path)
    assert index.tensor_count == 1, [n.key for n in index.root.tensors()]
    (row,) = index.root.tensors()
    assert row.key == "t"
    rows = [line for line in render_text(index).splitlines() if line.startswith("  ")]
    assert not any("_rebuild" in line or "(arg " in line for line in rows), rows
    return row


def _dense() -> torch.Tensor:
    return torch.tensor([[1.0, 0, 2, 0], [0, 0, 3, 0], [0, 4, 0, 5], [0, 0, 0, 6]])


_SPARSE = {
    "sparse_coo": (lambda d: d.to_sparse_coo(), ["indices", "values"]),
    "sparse_csr": (lambda d: d.to_sparse_csr(), ["crow_indices", "col_indices", "values"]),
    "sparse_csc": (lambda d: d.to_sparse_csc(), ["ccol_indices", "row_indices", "values"]),
    "sparse_bsr": (lambda d: d.to_sparse_bsr((2, 2)), ["crow_indices", "col_indices", "values"]),
    "sparse_bsc": (lambda d: d.to_sparse_bsc((2, 2)), ["ccol_indices", "row_indices", "values"]),
}


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("layout", list(_SPARSE))
def test_a_sparse_tensor_is_one_row_with_its_parts_inside(tmp_path: Path, layout: str, fmt: str) -> None:
    make, parts = _SPARSE[layout]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = make(_dense())
    row = _save_one(tmp_path, sparse, fmt)
    info = row.tensor
    assert info is not None and info.layout_info is not None
    assert (info.layout, info.shape, info.dtype) == (layout, (4, 4), "float32")
    assert info.layout_info.nnz == sparse._nnz()
    assert info.numel == sparse.numel()  # torch counts a sparse tensor's dense size
    assert [c.name for c in row.children] == parts
    values = sparse.values()
    assert row.children[-1].tensor is not None and row.children[-1].tensor.shape == tuple(values.shape)
    assert info.nbytes == sum(c.tensor.nbytes for c in row.children if c.tensor is not None)
    assert row.params == info.numel  # its parts are inside it, not added to it


def test_nested_tensors_show_their_components(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strided = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)])
        jagged = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
    row = _save_one(tmp_path, strided)
    info = row.tensor
    assert info is not None and info.layout_info is not None
    assert (info.layout, info.layout_info.components, info.numel) == ("nested", 2, strided.numel())
    assert info.shown_shape == (2, None, None)
    assert [c.name for c in row.children] == ["buffer", "sizes", "strides", "storage_offsets"]
    (tmp_path / "j").mkdir()
    row = _save_one(tmp_path / "j", jagged)
    info = row.tensor
    assert info is not None and info.layout_info is not None
    assert (info.layout, info.layout_info.components, info.numel) == ("jagged", 2, jagged.numel())
    assert info.shown_shape == (2, None, 3)
    assert [c.name for c in row.children] == ["values", "offsets"]


def test_quantized_tensors_show_scale_zero_point_and_axis(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_tensor = torch.quantize_per_tensor(torch.randn(3), 0.25, 10, torch.quint8)
        per_channel = torch.quantize_per_channel(
            torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([1, 2]), 0, torch.qint8
        )
    row = _save_one(tmp_path, per_tensor)
    info = row.tensor
    assert info is not None and info.layout_info is not None
    quant = info.layout_info.quantization
    assert quant is not None and (quant.scheme, quant.scale, quant.zero_point) == (
        "per_tensor_affine",
        per_tensor.q_scale(),
        per_tensor.q_zero_point(),
    )
    assert (info.dtype, info.shape) == ("quint8", (3,))
    (tmp_path / "c").mkdir()
    row = _save_one(tmp_path / "c", per_channel)
    info = row.tensor
    assert info is not None and info.layout_info is not None
    quant = info.layout_info.quantization
    assert quant is not None and (quant.scheme, quant.axis) == ("per_channel_affine", 0)
    assert [(c.name, c.tensor.shape if c.tensor else None) for c in row.children] == [
        ("scales", (2,)),
        ("zero_points", (2,)),
    ]
    assert "along dimension 0" in info.layout_info.describe(info.layout)


def test_the_json_report_lists_a_sparse_tensor_once_with_its_layout(tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    torch.save({"w": _dense().to_sparse_coo(), "b": torch.ones(2)}, path)
    report = index_to_json(peek(path))
    entries = {t["key"]: t for t in report["tensors"]}
    assert set(entries) == {"w", "b"}
    assert entries["w"]["layout"] == "sparse_coo" and entries["w"]["nnz"] == 6
    assert entries["w"]["shape"] == [4, 4] and entries["w"]["numel"] == 16
    assert report["total_params"] == 16 + 2


# -- item counts ---------------------------------------------------------------------------------


def test_a_dict_counts_its_entries_not_its_grouped_rows(tmp_path: Path) -> None:
    model = {f"encoder.layers.{i}.weight": torch.zeros(1) for i in range(112)}
    model |= {f"decoder.layers.{i}.weight": torch.zeros(1) for i in range(113)}
    path = tmp_path / "grouped.pt"
    torch.save({"model": model}, path)
    node = next(c for c in peek(path).root.children if c.name == "model")
    assert len(node.children) == 2 and node.entries == 225


def test_descriptions_agree_in_number() -> None:
    assert describe(PDict(items=[("a", 1)])) == "dict of 1 item"
    assert describe(PDict(items=[("a", 1), ("b", 2)])) == "dict of 2 items"


# -- hostile dotted keys -------------------------------------------------------------------------


def _memo_keys_pickle(path: Path, rows: int, components: int) -> Path:
    """A dict of ``rows`` entries whose key (``components`` dotted parts) is stored once and then
    fetched from the memo: a small file whose tree would need every long prefix per row."""
    key = ".".join(["k"] * (components - 1) + ["w"]).encode()
    out = bytearray(b"\x80\x02}q\x00(X" + struct.pack("<I", len(key)) + key + b"q\x01K\x01")
    for i in range(1, rows):
        if i % 1000 == 0:
            out += b"u("
        out += b"h\x01K\x01"
    out += b"u."
    path.write_bytes(bytes(out))
    return path


@pytest.mark.timed
def test_long_dotted_keys_through_the_memo_build_in_bounded_time(tmp_path: Path) -> None:
    path = _memo_keys_pickle(tmp_path / "keys.pkl", rows=100_000, components=500)
    assert path.stat().st_size < 1 << 20
    start = time.monotonic()
    index = peek(path)
    elapsed = time.monotonic() - start
    rows = sum(1 for _ in index.root.walk())
    groups = sum(1 for n in index.root.walk() if n.kind is NodeKind.GROUP)
    assert groups <= 32  # one chain of groups, shared by every row, at most MAX_GROUP_DEPTH deep
    assert rows <= 100_000 + groups + 1
    assert rows * 350 <= MAX_TREE_BYTES
    assert elapsed < 10, f"{elapsed:.1f} s"


@pytest.mark.timed
def test_distinct_deep_keys_stop_at_the_byte_budget_with_a_sentence() -> None:
    top = PDict(items=[(f"{i}." + ".".join(["k"] * 498) + ".w", i) for i in range(20_000)])
    builder = TreeBuilder(max_bytes=20 << 20)
    start = time.monotonic()
    root = builder.build(top)
    elapsed = time.monotonic() - start
    nodes = sum(1 for _ in root.walk())
    assert nodes * 350 <= 20 << 20  # group rows are charged: the budget bounds every row made
    assert builder.spent <= (20 << 20) + 4096
    assert any("20 MB" in w and "cut short" in w for w in builder.warnings), builder.warnings
    assert elapsed < 10, f"{elapsed:.1f} s"
