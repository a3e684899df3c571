"""Human-readable numbers, shapes and sizes shared by the CLI and the window."""

from __future__ import annotations

from collections.abc import Sequence


def format_bytes(n: int) -> str:
    """1536 → "1.5 KiB"; exact bytes below 1 KiB."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024.0
        if value < 1024.0 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def format_count(n: int) -> str:
    """1234567 → "1,234,567"."""
    return f"{n:,}"


def format_params(n: int) -> str:
    """Parameter counts as people say them: 7.2M, 1.3B."""
    if n < 1000:
        return str(n)
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    raise AssertionError("unreachable")


def format_shape(shape: Sequence[int]) -> str:
    """(3, 4) → "[3, 4]"; a 0-dim tensor → "[]"."""
    return "[" + ", ".join(str(s) for s in shape) + "]"
