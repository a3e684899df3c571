"""How many Python functions a piece of work calls: the measure of "no Python call per tensor row",
which unlike a time holds on any machine and under any load."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def python_calls(run: Callable[[], T], *, c_calls: bool = False) -> tuple[T, int]:
    """``run()``'s result and the Python functions it called (with ``c_calls``, C functions too)."""
    calls = 0
    counted = ("call", "c_call") if c_calls else ("call",)

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in counted:
            calls += 1

    sys.setprofile(count)
    try:
        result = run()
    finally:
        sys.setprofile(None)
    return result, calls
