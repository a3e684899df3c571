"""The totals of a set of tensor rows (elements of each distinct tensor once, bytes of each storage
once) are the same whether they are summed at once, as for rows that each own a storage, or row by
row with the views of each storage told apart."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core.model import LayoutInfo, Node, NodeKind, TensorInfo, tensor_totals, viewed_totals


@st.composite
def _rows(draw: st.DrawFn) -> list[Node]:
    """Tensor rows: each on a storage of its own (the common file) or, as drawn, sharing storages
    (tied weights, views), without one, with parts (a sparse tensor's) or with a layout's own count."""
    count = draw(st.integers(0, 12))
    own = draw(st.booleans())
    rows = []
    for i in range(count):
        key = str(i) if own else draw(st.sampled_from(["", "0", "1", "2"]))
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
        layout = draw(st.none() | st.builds(LayoutInfo, numel=st.integers(0, 99), nbytes=st.integers(0, 99)))
        info = TensorInfo(
            shape=shape,
            dtype=draw(st.sampled_from(["float32", "bfloat16"])),
            saved_device="cpu",
            storage_key=key,
            storage_offset=draw(st.integers(0, 3)),
            stride=tuple(draw(st.integers(0, 4)) for _ in shape),
            storage_nbytes=draw(st.integers(0, 400)),
            itemsize=4,
            layout_info=layout if draw(st.integers(0, 3)) == 0 else None,
        )
        row = Node(name=f"t{i}", kind=NodeKind.TENSOR, key=f"t{i}", path=(f"t{i}",), tensor=info)
        if draw(st.integers(0, 5)) == 0:  # a part of its own, on another storage
            part = TensorInfo((2,), "int64", "cpu", f"part{i}", 0, (1,), 16, 8)
            row.add(Node(name="indices", kind=NodeKind.TENSOR, key=f"t{i}.indices", path=(), tensor=part))
        rows.append(row)
    return rows


@settings(max_examples=400, deadline=None, derandomize=True)
@given(rows=_rows())
def test_rows_that_each_own_a_storage_total_as_the_row_by_row_count_does(rows: list[Node]) -> None:
    assert tensor_totals(rows) == viewed_totals(rows)
    assert tensor_totals(iter(rows)) == viewed_totals(rows)  # any iterable of rows, read once


def test_a_storage_shared_by_two_views_counts_each_view_and_its_bytes_once() -> None:
    def row(name: str, offset: int) -> Node:
        info = TensorInfo((4,), "float32", "cpu", "0", offset, (1,), 32, 4)
        return Node(name=name, kind=NodeKind.TENSOR, key=name, path=(name,), tensor=info)

    totals = tensor_totals([row("a", 0), row("b", 4), row("tied", 0)])
    assert (totals.params, totals.nbytes, totals.count) == (8, 32, 3)
