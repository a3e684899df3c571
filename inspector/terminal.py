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
from collections.abc import Callable, Iterable
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
    ``\\u....`` escape, which every JSON reader decodes back and no terminal obeys. The whole text
    is made before its first byte is written.
    """
    stream = sys.stdout
    utf8 = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "utf-8"
    for block in json_blocks(obj, ensure_ascii=not utf8, allow_nan=allow_nan):
        stream.write(_MAYBE_HIDDEN.sub(_json_escape_hidden, block))
    stream.write("\n")


#: A list of more records than this, at the top level of a report, is written record by record.
_MANY_RECORDS = 64
_RECORDS_PER_BLOCK = 10_000
_STR, _INT, _DICT = {str}, {int}, {dict}


def json_blocks(obj: Any, *, ensure_ascii: bool = True, allow_nan: bool = True) -> list[str]:
    """The text of ``json.dumps(obj, indent=1, …)``, in blocks. A long list of flat records (a
    report's tensors) is written with one template per record: the standard library's indenting
    encoder makes one generator step per value, 20 s for 10^6 tensor records."""
    if not (type(obj) is dict and len(obj) > 0 and all(type(k) is str for k in obj)):
        return [json.dumps(obj, ensure_ascii=ensure_ascii, indent=1, allow_nan=allow_nan)]
    enc = json.encoder.encode_basestring_ascii if ensure_ascii else json.encoder.encode_basestring
    blocks: list[str] = []
    text = "{"
    for n, (key, value) in enumerate(obj.items()):
        text += ("," if n else "") + f"\n {enc(key)}: "
        if type(value) is list and len(value) > _MANY_RECORDS and set(map(type, value)) == _DICT:
            blocks.append(text + "[")
            for start in range(0, len(value), _RECORDS_PER_BLOCK):
                chunk = value[start : start + _RECORDS_PER_BLOCK]
                texts = [_record_text(r, enc) or _nested(r, 2, ensure_ascii, allow_nan) for r in chunk]
                blocks.append(("," if start else "") + "\n  " + ",\n  ".join(texts))
            text = "\n ]"
        else:
            text += _nested(value, 1, ensure_ascii, allow_nan)
    blocks.append(text + "\n}")
    return blocks


def _nested(value: Any, level: int, ensure_ascii: bool, allow_nan: bool) -> str:
    """``value`` as ``json.dumps(indent=1)`` writes it ``level`` containers deep (JSON text never
    holds a raw newline inside a string, so each line only moves right)."""
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=1, allow_nan=allow_nan)
    return text.replace("\n", "\n" + " " * level)


def _record_text(record: dict[Any, Any], enc: Callable[[str], str]) -> str | None:
    """A record two levels deep whose values are strings, integers, booleans, null or lists of
    strings or of integers, as ``json.dumps(indent=1)`` writes it there; None for any other."""
    if not record:
        return None
    parts = []
    for k, v in record.items():
        if k.__class__ is not str:
            return None
        c = v.__class__
        if c is str:
            parts.append(f"{enc(k)}: {enc(v)}")
        elif c is int:
            parts.append(f"{enc(k)}: {int.__repr__(v)}")
        elif c is list:
            if not v:
                parts.append(f"{enc(k)}: []")
                continue
            kinds = set(map(type, v))
            if kinds == _STR:
                items = ",\n    ".join(map(enc, v))
            elif kinds == _INT:
                items = ",\n    ".join(map(int.__repr__, v))
            else:
                return None
            parts.append(f"{enc(k)}: [\n    {items}\n   ]")
        elif v is None:
            parts.append(f"{enc(k)}: null")
        elif v is True or v is False:
            parts.append(f"{enc(k)}: {'true' if v else 'false'}")
        else:
            return None
    return "{\n   " + ",\n   ".join(parts) + "\n  }"


def _json_escape_hidden(match: re.Match[str]) -> str:
    ch = match.group()
    return ch if escape_text(ch) == ch else f"\\u{ord(ch):04x}"


def guard_streams() -> None:
    """A terminal whose encoding lacks a character shows a ``\\u....`` escape instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
