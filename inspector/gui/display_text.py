"""Multi-line text from a file (code, torch's raw words) as the window shows it: each line through
``escape_text``, so control characters, bidirectional overrides and lone surrogates are visible
escapes, while the line breaks stay line breaks and tabs become spaces."""

from __future__ import annotations

from inspector.core.formatting import escape_text


def escape_lines(text: str) -> str:
    """``text`` with every line escaped; "\\n" and "\\r\\n" separate lines, a lone "\\r" is escaped."""
    return "\n".join(escape_text(line) for line in text.expandtabs(4).replace("\r\n", "\n").split("\n"))
