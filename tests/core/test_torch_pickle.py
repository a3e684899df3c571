"""The tensor records torch.save writes are read at once, and read exactly as every other call is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inspector.core import torch_pickle
from inspector.core.peek import peek
from inspector.core.report import index_to_json
from inspector.core.torch_pickle import BadTensor, StorageRef, TensorRef, TorchPickleReader, plain_tensor
from inspector.core.unpickler import Call, Global, PDict, SafeUnpickler

_REBUILD = Global("torch._utils", "_rebuild_tensor_v2")
_STORAGES = [StorageRef("0", "float32", "cpu", 24), StorageRef("1", "bfloat16", "cuda:0", 8, view_offset=3)]

_int = st.one_of(st.integers(-3, 40), st.sampled_from([True, False, 2**70, -(2**70)]))
_dims = st.one_of(
    st.tuples(),
    st.tuples(_int),
    st.tuples(_int, _int),
    st.tuples(_int, _int, _int),
    st.lists(_int, max_size=3),
    st.builds(lambda t: Call(Global("torch", "Size"), (t,)), st.tuples(_int, _int)),
    st.sampled_from([None, 3, "2", (1.0,), ("1",)]),
)
_same_length = st.integers(0, 3).flatmap(lambda n: st.tuples(st.tuples(*[_int] * n), st.tuples(*[_int] * n)))
_args = st.builds(
    lambda storage, offset, dims, grad, hooks: (storage, offset, *dims, grad, hooks),
    st.one_of(st.sampled_from(_STORAGES), st.sampled_from([None, ("storage",), 0])),
    st.one_of(_int, st.sampled_from([None, 1.0, "0"])),
    st.one_of(_same_length, st.tuples(_dims, _dims)),
    st.sampled_from([True, False, True, False, 0, 1, None, PDict()]),
    st.sampled_from([PDict(cls="OrderedDict"), None]),
)


def _fields(t: TensorRef) -> list[Any]:
    return [(type(v), v) for v in (getattr(t, name) for name in TensorRef.__slots__)]


def _general(args: tuple[Any, ...]) -> TensorRef | str:
    """The tensor every rebuild call is read as (or the problem the reader names)."""
    try:
        return TorchPickleReader()._tensor(args[0], args[1], args[2], args[3], None, args[4:5])
    except (BadTensor, IndexError) as exc:
        return str(exc)


_HOOKS = PDict(cls="OrderedDict")


@settings(max_examples=600, deadline=None, derandomize=True)
@given(args=_args)
@example(args=(_STORAGES[0], 0, (-1,), (1,), False, _HOOKS))
@example(args=(_STORAGES[0], 0, (2,), (-1,), False, _HOOKS))
@example(args=(_STORAGES[0], 0, (2, -1), (1, 1), False, _HOOKS))
@example(args=(_STORAGES[0], 0, (-2, 1), (1, 1), True, _HOOKS))
@example(args=(_STORAGES[0], 0, (2, 2), (1, -1), False, _HOOKS))
@example(args=(_STORAGES[0], 0, (2, 2), (-1, 1), False, _HOOKS))
@example(args=(_STORAGES[1], True, (2,), (1,), False, _HOOKS))
@example(args=(_STORAGES[1], 0, (True,), (1,), False, _HOOKS))
@example(args=(_STORAGES[1], 0, (2, 3), (3, False), False, _HOOKS))
@example(args=(_STORAGES[1], 0, (2,), (1,), 1, _HOOKS))
def test_the_quick_reading_of_a_rebuild_call_is_the_general_one(args: tuple[Any, ...]) -> None:
    quick = plain_tensor(args)
    general = _general(args)
    if quick is not None:
        assert isinstance(general, TensorRef)
        assert quick.storage is general.storage
        assert _fields(quick) == _fields(general)
    reader = TorchPickleReader()
    hooked = reader.reduce_hook(_REBUILD, args)
    if isinstance(general, TensorRef):
        assert isinstance(hooked, TensorRef) and _fields(hooked) == _fields(general)
        assert hooked.storage is general.storage
    else:
        assert hooked is SafeUnpickler.NOT_HANDLED
        assert reader.problems == [f"a _rebuild_tensor_v2 call with unexpected arguments ({general})"]


def test_what_torch_save_writes_for_dense_tensors_is_read_at_once() -> None:
    storage = _STORAGES[1]
    for size, stride in [((), ()), ((5,), (1,)), ((4, 6), (6, 1)), ((0, 3), (3, 1))]:
        t = plain_tensor((storage, 2, size, stride, False, PDict(cls="OrderedDict")))
        assert t is not None
        assert (t.offset, t.shape, t.stride, t.dtype, t.device) == (5, size, stride, "bfloat16", "cuda:0")


def _odd_state_dict() -> dict[str, Any]:
    import torch

    base = torch.arange(24, dtype=torch.float32)
    return {
        "view": base[3:9], "rows": base.view(4, 6)[:, ::2], "t": base.view(4, 6).t(), "whole": base,
        "empty": torch.empty(0, 3), "scalar": torch.tensor(3.5, dtype=torch.float64),
        "cube": torch.ones(2, 3, 4, dtype=torch.bfloat16), "grad": torch.ones(3).requires_grad_(),
        "param": torch.nn.Parameter(torch.ones(2, 2)), "frozen": torch.nn.Parameter(torch.ones(2), False),
        "coo": torch.eye(3).to_sparse(), "meta": torch.empty(2, 3, device="meta"),
    }  # fmt: skip


def test_a_whole_file_reads_the_same_with_or_without_the_quick_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    path = tmp_path / "odd.pth"
    torch.save(_odd_state_dict(), path)
    quick = json.dumps(index_to_json(peek(path)), sort_keys=True)
    monkeypatch.setattr(torch_pickle, "plain_tensor", lambda args: None)
    assert json.dumps(index_to_json(peek(path)), sort_keys=True) == quick
