"""The JSON the commands print is exactly the text of ``json.dumps(indent=1)``, and a report of
many tensors is written record by record, not one generator step per value."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.terminal import json_blocks
from tests.call_counts import python_calls

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.integers() | st.booleans() | st.none(), inner, max_size=2)
    ),
    max_leaves=12,
)
#: Records as a report's tensors are, and some that are not flat (floats, nested lists, odd keys).
_RECORDS = st.dictionaries(
    st.text(max_size=6),
    st.text(max_size=8) | st.integers() | st.booleans() | st.none()
    | st.lists(st.text(max_size=8), max_size=3) | st.lists(st.integers(), max_size=3),
    max_size=8,
) | _VALUES  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(max_size=6), _VALUES, max_size=4),
    st.lists(_RECORDS, min_size=65, max_size=80),
    st.booleans(),
)
def test_a_report_is_the_standard_librarys_text_to_the_character(
    report: dict[str, Any], records: list[Any], ensure_ascii: bool
) -> None:
    report["tensors"] = records
    ours = "".join(json_blocks(report, ensure_ascii=ensure_ascii))
    assert ours == json.dumps(report, indent=1, ensure_ascii=ensure_ascii)


@settings(max_examples=100, deadline=None)
@given(_VALUES, st.booleans())
def test_any_value_is_the_standard_librarys_text(value: Any, ensure_ascii: bool) -> None:
    assert "".join(json_blocks(value, ensure_ascii=ensure_ascii)) == json.dumps(
        value, indent=1, ensure_ascii=ensure_ascii
    )


def test_a_value_json_cannot_hold_is_refused_before_anything_is_written() -> None:
    many = [{"key": str(i)} for i in range(100)]
    with pytest.raises(ValueError, match="Out of range float"):
        json_blocks({"tensors": [*many, {"norm": math.inf}]}, allow_nan=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_blocks({"tensors": many, "x": object()})


def _record(i: int) -> dict[str, Any]:
    key = f"blocks.{i // 100}.experts.{i % 100}.weight"
    return {"key": key, "path": [key], "shape": [4, 2], "dtype": "float32", "saved_device": "cpu",
            "numel": 8, "nbytes": 32}  # fmt: skip


def _python_calls(run: Callable[[], object]) -> int:
    return python_calls(run)[1]


def test_each_tensor_record_costs_one_python_call() -> None:
    """``info --json`` of 10^6 tensors is written in seconds (the standard library's indenting
    encoder resumes a generator for every value: minutes on a loaded machine)."""
    report = {"path": "f", "tensors": [_record(i) for i in range(2000)]}
    calls = _python_calls(lambda: json_blocks(report))
    assert calls < 2 * 2000, f"{calls:,} Python calls for 2,000 records"
    assert _python_calls(lambda: json.dumps(report, indent=1)) > 10 * 2000  # what it replaces
