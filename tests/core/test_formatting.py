"""How strings from a file are shown: nothing in a name can rewrite a terminal line or a label."""

from __future__ import annotations

import pytest

from inspector.core.formatting import escape_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("model.layers.0.weight", "model.layers.0.weight"),
        ("嵌入.权重", "嵌入.权重"),
        ("os\x1b[2K\r safe", "os\\x1b[2K\\r safe"),
        ("a\nb", "a\\nb"),
        ("nul\x00cut", "nul\\x00cut"),
        ("\u202eevil", "\\u202eevil"),
        ("lone \udc80", "lone \\udc80"),
        ("c1 \x9b", "c1 \\x9b"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_escape_text_shows_every_hidden_character(raw: str, shown: str) -> None:
    assert escape_text(raw) == shown
    assert escape_text(raw).isprintable()
    escape_text(raw).encode("utf-8")  # never raises: no surrogate is left
    assert escape_text(escape_text(raw)) == escape_text(raw)  # escaping twice doubles nothing
