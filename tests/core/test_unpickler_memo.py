"""The reader's memo hands back what pickle's own unpickler would, however the puts are numbered."""

from __future__ import annotations

import io
import pickle
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core.errors import CheckpointError
from inspector.core.unpickler import SafeUnpickler

# Mostly small indices, so that gets find what puts stored (an example ends at its first miss).
_SMALL = st.integers(0, 4)
_BYTE = st.one_of(_SMALL, _SMALL, _SMALL, st.integers(0, 255))
_INDEX = st.one_of(_SMALL, _SMALL, _SMALL, st.sampled_from([255, 256, 1000, 2**31, 2**32 - 1]))
_TEXT_INDEX = st.one_of(_SMALL, _SMALL, st.integers(-2, 4), st.integers(-3, 300))
_OP = st.one_of(
    st.just(("push", 0)),
    st.tuples(st.just("binput"), _BYTE),
    st.tuples(st.just("long_binput"), _INDEX),
    st.just(("memoize", 0)),
    st.tuples(st.just("put"), _TEXT_INDEX),
    st.tuples(st.just("binget"), _BYTE),
    st.tuples(st.just("long_binget"), _INDEX),
    st.tuples(st.just("get"), _TEXT_INDEX),
)


def _pickle(ops: list[tuple[str, int]]) -> bytes:
    """A list of the values pushed and fetched, after the puts and gets ``ops`` say."""
    out = bytearray(b"\x80\x04](J" + struct.pack("<i", 7))
    for n, (op, i) in enumerate(ops):
        if op == "push":
            out += b"J" + struct.pack("<i", 1000 + n)
        elif op == "binput":
            out += b"q" + bytes([i])
        elif op == "long_binput":
            out += b"r" + struct.pack("<I", i)
        elif op == "memoize":
            out += b"\x94"
        elif op == "put":
            out += b"p%d\n" % i
        elif op == "binget":
            out += b"h" + bytes([i])
        elif op == "long_binget":
            out += b"j" + struct.pack("<I", i)
        else:
            out += b"g%d\n" % i
    return bytes(out + b"e.")


def _model(ops: list[tuple[str, int]]) -> list[int] | None:
    """What a memo kept as one dict of index → value hands back."""
    stack, memo = [7], {}
    for n, (op, i) in enumerate(ops):
        if op == "push":
            stack.append(1000 + n)
        elif op in ("binput", "long_binput", "put"):
            memo[i] = stack[-1]
        elif op == "memoize":
            memo[len(memo)] = stack[-1]
        elif i not in memo:
            return None
        else:
            stack.append(memo[i])
    return stack


def _reference(data: bytes) -> list[int] | None:
    """pickle's own unpickler (it refuses a negative PUT, which this reader takes as a key)."""
    try:
        return pickle._Unpickler(io.BytesIO(data)).load()  # type: ignore[attr-defined,no-any-return]
    except (pickle.UnpicklingError, KeyError):
        return None


def _ours(data: bytes) -> list[int] | None:
    try:
        return SafeUnpickler(data).load()[0]  # type: ignore[no-any-return]
    except CheckpointError as exc:
        assert "memo entry that was never stored" in exc.message
        return None


@settings(max_examples=1000, deadline=None)
@given(st.lists(_OP, max_size=40))
def test_memo_gets_what_pickle_gets(ops: list[tuple[str, int]]) -> None:
    """Entries put in order, out of order, over each other, far apart or at negative protocol-0
    indices are fetched as pickle fetches them, and a missing one is refused with a sentence."""
    data = _pickle(ops)
    assert _ours(data) == _model(ops)
    if not any(op == "put" and i < 0 for op, i in ops):
        assert _ours(data) == _reference(data)


def test_memo_of_a_torch_save_sequence_and_a_gap() -> None:
    """The entries numbered in order (as torch.save writes them) and then one past a gap: every
    entry before the gap is still there, the gap is missing."""
    ops = [("push", 0), ("binput", 0), ("push", 0), ("binput", 1), ("push", 0), ("long_binput", 5)]
    ops += [("binget", 0), ("binget", 1), ("long_binget", 5), ("get", 1)]
    data = _pickle(ops)
    assert _ours(data) == _reference(data) == _model(ops) == [7, 1000, 1002, 1004, 1000, 1002, 1004, 1002]
    assert _ours(_pickle([*ops, ("binget", 3)])) is None


def test_memo_entry_put_again_and_a_negative_index() -> None:
    """An entry put a second time hands back the second value; a negative protocol-0 index was
    never stored unless a PUT stored it."""
    again = [("push", 0), ("binput", 0), ("push", 0), ("binput", 0), ("binget", 0)]
    assert _ours(_pickle(again)) == _model(again) == [7, 1000, 1002, 1002]
    assert _ours(_pickle([("push", 0), ("binput", 0), ("get", -1)])) is None
    negative = [("push", 0), ("binput", 0), ("push", 0), ("put", -1), ("get", -1), ("get", 0)]
    assert _ours(_pickle(negative)) == _model(negative) == [7, 1000, 1002, 1002, 1000]
