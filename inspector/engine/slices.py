"""Pages of values of a 2-D slice of any tensor, as plain JSON-safe lists.

Pick the two axes shown as rows and columns and an index for every other axis; only the page
asked for is read from the (memory-mapped) tensor, so a 32000×4096 embedding pages without being
loaded whole. Cell values: ints stay ints, bools stay bools, floats are Python floats (bfloat16 and
float8 upcast exactly) with NaN/±Inf as the strings ``"nan"``/``"inf"``/``"-inf"``, complex
numbers are strings like ``"(1+2j)"``, packed dtypes (float4, bits) their raw bytes as ints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.errors import CheckpointError

from .tensor_array import NDArray, TensorArray, as_array, value_kind, widened

if TYPE_CHECKING:
    import torch

#: Cells per page at most (a page is one message to the GUI).
MAX_PAGE_CELLS = 1 << 20

Cell = float | int | bool | str


@dataclass
class ValueSlice:
    """One page of a 2-D slice: ``values[r][c]`` is the element at row ``row_start + r``."""

    dtype: str
    shape: list[int]
    row_axis: int | None
    col_axis: int | None
    index: list[int]  # one entry per axis; the entries of row_axis / col_axis are 0 and unused
    rows: int  # length of the row axis (1 when there is none)
    cols: int
    row_start: int
    col_start: int
    values: list[list[Cell]]

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "shape": self.shape,
            "row_axis": self.row_axis,
            "col_axis": self.col_axis,
            "index": self.index,
            "rows": self.rows,
            "cols": self.cols,
            "row_start": self.row_start,
            "col_start": self.col_start,
            "values": self.values,
        }


def _cell_float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


def _cells(page: NDArray, dtype: str) -> list[list[Cell]]:
    """A small 2-D array of stored elements as rows of plain JSON-safe values."""
    kind, raw = value_kind(dtype)
    if raw is not None or kind in ("bool", "int"):
        rows: list[list[Cell]] = page.tolist()
        return rows
    if kind == "complex":
        return [[str(complex(z)) for z in row] for row in widened(page, dtype).tolist()]
    return [[_cell_float(x) for x in row] for row in widened(page, dtype).tolist()]


def value_slice(
    t: TensorArray | torch.Tensor,
    *,
    row_axis: int | None = 0,
    col_axis: int | None = 1,
    index: Sequence[int] = (),
    row_start: int = 0,
    row_count: int = 100,
    col_start: int = 0,
    col_count: int = 100,
) -> ValueSlice:
    """A page of the 2-D slice of ``t`` with ``row_axis`` down and ``col_axis`` across.

    ``index`` gives the position on every axis (its entries for the two shown axes are ignored;
    missing entries are 0). ``col_axis=None`` shows a 1-D slice as one column, ``row_axis=None``
    too gives the single element of a 0-d tensor. Only the page is read (through NumPy, a torch
    tensor's storage too). Raises ``CheckpointError`` for bad arguments.
    """
    array = as_array(t)
    shape = array.shape
    ndim = array.ndim
    axes = [a for a in (row_axis, col_axis) if a is not None]
    if any(not 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
        raise CheckpointError(f"Axes {row_axis} and {col_axis} do not fit a tensor of {ndim} dimensions.")
    if row_axis is None and col_axis is not None:
        raise CheckpointError("A slice with a column axis needs a row axis too.")
    if len(axes) < min(ndim, 2):
        raise CheckpointError(f"A {ndim}-d tensor needs {min(ndim, 2)} axes to show.")
    full = [int(i) for i in index] + [0] * max(0, ndim - len(index))
    full = full[:ndim]
    for axis in range(ndim):
        if axis in axes:
            full[axis] = 0
        elif not 0 <= full[axis] < shape[axis]:
            raise CheckpointError(f"Index {full[axis]} is outside axis {axis} of length {shape[axis]}.")
    if row_start < 0 or col_start < 0 or row_count < 0 or col_count < 0:
        raise CheckpointError("Page offsets and counts must not be negative.")
    bits = array.bits()
    view = bits[tuple(slice(None) if axis in axes else full[axis] for axis in range(ndim))]
    if row_axis is not None and col_axis is not None and row_axis > col_axis:
        view = view.T
    if view.ndim == 0:
        view = view.reshape(1, 1)
    elif view.ndim == 1:
        view = view[:, np.newaxis]
    rows, cols = view.shape
    row_count = min(row_count, max(0, rows - row_start))
    col_count = min(col_count, max(0, cols - col_start))
    if row_count * col_count > MAX_PAGE_CELLS:
        raise CheckpointError(
            f"A page holds at most {MAX_PAGE_CELLS:,} values; ask for fewer rows or columns."
        )
    page = view[row_start : row_start + row_count, col_start : col_start + col_count]
    return ValueSlice(
        dtype=array.dtype,
        shape=list(shape),
        row_axis=row_axis,
        col_axis=col_axis,
        index=full,
        rows=rows,
        cols=cols,
        row_start=row_start,
        col_start=col_start,
        values=_cells(page, array.dtype) if page.size else [[] for _ in range(row_count)],
    )
