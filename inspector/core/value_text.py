"""A selection of tensor values as text to copy: tab-separated, or a NumPy literal.

Works on the plain cells a value slice carries (ints, bools, floats, and the strings ``"nan"``,
``"inf"``, ``"-inf"`` and ``"(1+2j)"``), so the GUI can call it without the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .dtypes import DTYPES

Cell = float | int | bool | str


def numpy_dtype_name(dtype: str) -> str:
    """The NumPy dtype that holds values of torch dtype ``dtype`` (bfloat16, float8 → float32)."""
    found = DTYPES.get(dtype)
    return found.numpy if found is not None else "uint8"


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
