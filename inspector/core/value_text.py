"""A selection of tensor values as text to copy: tab-separated, or a NumPy literal.

Works on the plain cells a value slice carries (ints, bools, floats, and the strings ``"nan"``,
``"inf"``, ``"-inf"`` and ``"(1+2j)"``), so the GUI can call it without the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Cell = float | int | bool | str

#: NumPy has these dtypes under the same names; others are written as the nearest one.
_NUMPY_NAMES = frozenset(
    {
        "float16", "float32", "float64", "complex64", "complex128", "bool",
        "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    }
)  # fmt: skip


def numpy_dtype_name(dtype: str) -> str:
    """The NumPy dtype that holds values of torch dtype ``dtype`` (bfloat16, float8 → float32)."""
    if dtype in _NUMPY_NAMES:
        return dtype
    if dtype.startswith(("float8", "bfloat16")):
        return "float32"
    if dtype == "complex32":
        return "complex64"
    return "uint16" if dtype == "bits16" else "uint8"


def _text(cell: Cell) -> str:
    if isinstance(cell, bool):
        return "True" if cell else "False"
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def _float_literal(x: float) -> str:
    if math.isnan(x):
        return "np.nan"
    if math.isinf(x):
        return "np.inf" if x > 0 else "-np.inf"
    return repr(x)


def _literal(cell: Cell) -> str:
    if isinstance(cell, str):
        special = {"nan": "np.nan", "inf": "np.inf", "-inf": "-np.inf"}.get(cell)
        if special is not None:
            return special
        z = complex(cell)  # a complex cell such as "(1+2j)"
        if math.isfinite(z.real) and math.isfinite(z.imag):
            return repr(z)
        return f"complex({_float_literal(z.real)}, {_float_literal(z.imag)})"
    if isinstance(cell, float):
        return _float_literal(cell)
    return _text(cell)


def cells_as_text(rows: Sequence[Sequence[Cell]]) -> str:
    """Tab-separated columns, one line per row (what spreadsheets paste)."""
    return "\n".join("\t".join(_text(c) for c in row) for row in rows)


def cells_as_numpy(rows: Sequence[Sequence[Cell]], dtype: str) -> str:
    """``np.array([[…], …], dtype=np.float32)``; a 1-column selection stays 2-D."""
    body = ",\n ".join("[" + ", ".join(_literal(c) for c in row) + "]" for row in rows)
    name = numpy_dtype_name(dtype)
    note = "" if name == dtype else f"  # {dtype} in the checkpoint"
    return f"np.array([{body}], dtype=np.{name}){note}"
