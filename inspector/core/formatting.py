"""Human-readable numbers, shapes, sizes and file names shared by the CLI and the window."""

from __future__ import annotations

import os
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


def format_shape(shape: Sequence[int | None]) -> str:
    """(3, 4) → "[3, 4]"; a 0-dim tensor → "[]"; a ragged dimension (None) → "*"."""
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def count_of(n: int, singular: str, plural: str | None = None) -> str:
    """1 → "1 item", 2 → "2 items", 1234 → "1,234 items": the noun agrees with the number."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def display_name(path: str) -> str:
    """A path as sentences name it: its last part in quotes (“model.pt”)."""
    return f"“{os.path.basename(os.path.normpath(path)) or path}”"


def _is_hidden(ch: str) -> bool:
    """Characters that move the cursor, reorder or hide text, or cannot be encoded (surrogates)."""
    o = ord(ch)
    return (
        o < 0x20
        or 0x7F <= o <= 0x9F
        or 0xD800 <= o <= 0xDFFF
        or o in (0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF)
        or 0x202A <= o <= 0x202E
        or 0x2066 <= o <= 0x2069
    )


def escape_text(text: str) -> str:
    """A string from a file, safe to print or show: control characters, ANSI escapes, CR/LF, NUL,
    bidirectional overrides and lone surrogates become visible escapes (``\\x1b``, ``\\n``,
    ``\\u202e``, ``\\udc80``).

    Idempotent (its output is printable, so escaping it again changes nothing): a sentence that
    already holds escaped names can pass through the terminal's or a label's escaping safely.
    Every name, key, member and message text that comes from a file passes through here before the
    CLI, the JSON text output, or a label shows it.
    """
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if _is_hidden(ch):
            o = ord(ch)
            named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
            out.append(named or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"))
        else:
            out.append(ch)
    return "".join(out)
