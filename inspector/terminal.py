"""What the command line writes: lines of text with every string from a file shown escaped, and
JSON as data.

Every line the CLI prints goes through ``print_text`` (stdout) or ``fail`` (stderr), once, at the
edge: the sentences and rows built before hold the file's raw strings. So an ANSI escape, a CR/LF or
a bidi override in a key, a global or a member name is shown (``\\x1b``, ``\\r``), never obeyed, and a
line cannot be rewritten or split by the file. ``print_json`` keeps the raw strings, as JSON escapes
them.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from inspector.core.formatting import escape_text

#: Characters of JSON text that may be hidden ones; structure and plain ASCII never are.
_MAYBE_HIDDEN = re.compile("[^\x20-\x7e\n]")


def print_text(line: str = "", file: TextIO | None = None) -> None:
    """One line on stdout (or ``file``), its strings from a file shown escaped."""
    print(escape_text(line), file=file if file is not None else sys.stdout)


def print_lines(lines: Iterable[str]) -> None:
    """Each line through ``print_text``."""
    for line in lines:
        print_text(line)


def fail(message: str) -> int:
    """The one line on stderr that says why a command failed; returns the exit status, 2."""
    print_text(message, sys.stderr)
    return 2


def print_json(obj: Any, *, allow_nan: bool = True) -> None:
    """``obj`` as indented JSON on stdout that reads back as the very same strings.

    UTF-8 text where stdout is UTF-8 (ASCII escapes elsewhere). What ``escape_text`` would hide —
    ANSI escapes, bidi overrides, lone surrogates (a key with undecodable bytes) — is written as a
    ``\\u....`` escape, which every JSON reader decodes back and no terminal obeys.
    """
    stream = sys.stdout
    utf8 = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    text = json.dumps(obj, ensure_ascii=not utf8, indent=1, allow_nan=allow_nan)
    stream.write(_MAYBE_HIDDEN.sub(_json_escape_hidden, text) + "\n")


def _json_escape_hidden(match: re.Match[str]) -> str:
    ch = match.group()
    return ch if escape_text(ch) == ch else f"\\u{ord(ch):04x}"


def guard_streams() -> None:
    """A terminal whose encoding lacks a character shows a ``\\u....`` escape instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
