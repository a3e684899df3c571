"""The static reader against torch itself: every built checkpoint, every tensor, every field.

Each test peeks a file written by ``tests.checkpoints`` and compares with what
``torch.load(path, map_location="cpu", weights_only=True)`` returns for the same file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.model import CheckpointIndex, GlobalClass, Node, NodeKind, PathPart
from inspector.core.peek import peek
from tests.checkpoints import CASE_IDS, BuiltCheckpoint, TorchView
from tests.conftest import REPO_ROOT

_TENSOR_FIELDS = (
    "shape",
    "dtype",
    "numel",
    "nbytes",
    "saved_device",
    "storage_offset",
    "stride",
    "storage_nbytes",
    "requires_grad",
    "is_parameter",
)


class _Peeks:
    """Peeks each built file once, on first use, so one unreadable case fails only its tests."""

    def __init__(self, built: dict[str, BuiltCheckpoint]) -> None:
        self._built = built
        self._done: dict[str, CheckpointIndex] = {}

    def __getitem__(self, case_id: str) -> CheckpointIndex:
        if case_id not in self._done:
            self._done[case_id] = peek(self._built[case_id].path)
        return self._done[case_id]


@pytest.fixture(scope="module")
def indexes(built_checkpoints: dict[str, BuiltCheckpoint]) -> _Peeks:
    return _Peeks(built_checkpoints)


def _by_path(index: CheckpointIndex, kind: NodeKind) -> dict[tuple[PathPart, ...], Node]:
    nodes: dict[tuple[PathPart, ...], Node] = {}
    for node in index.root.walk():
        if node.kind is kind:
            assert node.path not in nodes, f"two {kind.value} nodes at path {node.path!r}"
            nodes[node.path] = node
    return nodes


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_peek_lists_exactly_the_tensors_torch_loads(
    case_id: str, indexes: _Peeks, torch_views: dict[str, TorchView]
) -> None:
    index, view = indexes[case_id], torch_views[case_id]
    nodes = _by_path(index, NodeKind.TENSOR)
    assert sorted(map(repr, nodes)) == sorted(map(repr, view.tensors))
    assert len(index.tensor_nodes()) == len(view.tensors)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_each_tensor_matches_torch(case_id: str, indexes: _Peeks, torch_views: dict[str, TorchView]) -> None:
    nodes = _by_path(indexes[case_id], NodeKind.TENSOR)
    mismatches: list[str] = []
    for path, expected in torch_views[case_id].tensors.items():
        node = nodes.get(path)
        if node is None:
            mismatches.append(f"{path!r}: missing")
            continue
        assert node.tensor is not None
        if node.key != expected.key:
            mismatches.append(f"{path!r}: key {node.key!r}, torch {expected.key!r}")
        got: dict[str, Any] = {
            "shape": tuple(node.tensor.shape),
            "dtype": node.tensor.dtype,
            "numel": node.tensor.numel,
            "nbytes": node.tensor.nbytes,
            "saved_device": node.tensor.saved_device,
            "storage_offset": node.tensor.storage_offset,
            "stride": tuple(node.tensor.stride),
            "storage_nbytes": node.tensor.storage_nbytes,
            "requires_grad": node.tensor.requires_grad,
            "is_parameter": node.tensor.is_parameter,
        }
        for name in _TENSOR_FIELDS:
            if got[name] != getattr(expected, name):
                mismatches.append(
                    f"{expected.key!r}: {name} {got[name]!r}, torch {getattr(expected, name)!r}"
                )
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_tensors_share_a_storage_key_exactly_when_torch_shares_the_storage(
    case_id: str, indexes: _Peeks, torch_views: dict[str, TorchView]
) -> None:
    groups: dict[str, set[str]] = {}
    for node in indexes[case_id].tensor_nodes():
        assert node.tensor is not None
        groups.setdefault(node.tensor.storage_key, set()).add(node.key)
    shared = {frozenset(g) for g in groups.values() if len(g) > 1}
    assert shared == torch_views[case_id].sharing()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_totals_and_format(
    case_id: str,
    indexes: _Peeks,
    torch_views: dict[str, TorchView],
    built_checkpoints: dict[str, BuiltCheckpoint],
) -> None:
    index, view, built = indexes[case_id], torch_views[case_id], built_checkpoints[case_id]
    assert index.format == built.format_name
    assert index.file_size == built.path.stat().st_size
    assert index.tensor_count == len(view.tensors)
    assert (index.total_params, index.total_bytes) == (view.total_params, view.total_bytes)


def test_totals_count_tied_aliases_once_and_each_storage_once(indexes: _Peeks) -> None:
    """The definitions, on numbers worked out by hand for the ``shared`` case: a tied 6×4 weight
    under two keys counts 24 params once; the 4×3 base (12), its tail (9), transpose (12) and
    column (4) are distinct views; ``alone`` adds 2. Bytes: storages of 24, 12 and 2 floats."""
    for fmt in ("zip", "legacy"):
        index = indexes[f"shared-{fmt}"]
        assert index.total_params == 24 + 12 + 9 + 12 + 4 + 2
        assert index.total_bytes == (24 + 12 + 2) * 4


def _value_texts(value: Any) -> set[str]:
    """The texts a VALUE row may show for a scalar torch loaded."""
    texts = {repr(value)}
    if isinstance(value, str):
        texts |= {value, json.dumps(value, ensure_ascii=False)}
    return texts


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_non_tensor_values_appear_with_their_value(
    case_id: str, indexes: _Peeks, torch_views: dict[str, TorchView]
) -> None:
    """Every scalar torch loads is a VALUE row at its path, or is shown inside the value of a
    short tuple/list row above it (``betas = (0.9, 0.999)``)."""
    values = _by_path(indexes[case_id], NodeKind.VALUE)
    mismatches: list[str] = []
    for path, value in torch_views[case_id].values.items():
        node = values.get(path)
        if node is not None:
            if node.value not in _value_texts(value):
                mismatches.append(f"{path!r}: shows {node.value!r}, torch has {value!r}")
            continue
        holders = [values[path[:n]] for n in range(len(path) - 1, 0, -1) if path[:n] in values]
        if not holders:
            mismatches.append(f"{path!r}: no VALUE row for {value!r}")
        elif not any(t in (holders[0].value or "") for t in _value_texts(value)):
            mismatches.append(f"{path!r}: {holders[0].value!r} does not show {value!r}")
    assert not mismatches, "\n".join(mismatches)


def test_training_checkpoint_rows(indexes: _Peeks) -> None:
    """The rows a user reads first in a training checkpoint, in both formats."""
    for fmt in ("zip", "legacy"):
        values = _by_path(indexes[f"training-{fmt}"], NodeKind.VALUE)
        tensors = _by_path(indexes[f"training-{fmt}"], NodeKind.TENSOR)
        assert values[("epoch",)].value == "7"
        assert values[("args", "lr")].value == "0.001"
        assert values[("args", "lr")].key == "args.lr"
        assert "run" in (values[("args", "name")].value or "")
        assert values[("optimizer", "param_groups", 0, "lr")].value == "0.001"
        for name in ("step", "exp_avg", "exp_avg_sq"):
            node = tensors[("optimizer", "state", 0, name)]
            assert node.key == f"optimizer.state.0.{name}"
        assert tensors[("model", "layers.0.0.weight")].key == "model.layers.0.0.weight"


def test_bare_tensor_has_empty_key_and_path(indexes: _Peeks) -> None:
    for fmt in ("zip", "legacy"):
        (node,) = indexes[f"bare_tensor-{fmt}"].tensor_nodes()
        assert (node.key, node.path) == ("", ())


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_globals_are_judged_like_weights_only(
    case_id: str,
    indexes: _Peeks,
    built_checkpoints: dict[str, BuiltCheckpoint],
) -> None:
    index, built = indexes[case_id], built_checkpoints[case_id]
    names = {g.qualname for g in index.globals}
    unsafe = {g.qualname for g in index.unsafe_globals}
    if case_id.startswith("namespace-"):
        assert unsafe == {"argparse.Namespace"}
        (ref,) = [g for g in index.globals if g.qualname == "argparse.Namespace"]
        assert ref.verdict is GlobalClass.UNKNOWN
    else:
        assert unsafe == set(), "torch loads this file with weights_only=True"
    if case_id.endswith("-zip"):
        torch_says = torch.serialization.get_unsafe_globals_in_checkpoint(built.path)
        assert unsafe == set(torch_says)
    rebuilders = {n for n in names if n.startswith("torch._utils._rebuild_")}
    if case_id == "torch04-legacy":
        assert rebuilders == {"torch._utils._rebuild_tensor"}
    else:
        assert rebuilders, f"no tensor rebuild function among {sorted(names)}"


@pytest.mark.parametrize("name", ["empty", "truncated_zip", "random_bytes", "png", "path_config",
                                  "plain_zip", "missing", "directory"])  # fmt: skip
def test_broken_input_raises_a_sentence_about_the_file(name: str, broken_inputs: dict[str, Path]) -> None:
    path = broken_inputs[name]
    with pytest.raises(CheckpointError) as caught:
        peek(path)
    message = caught.value.message
    assert path.name in message
    assert "\n" not in message.strip()
    assert "Traceback" not in message


def test_peek_never_imports_torch(built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    """Peeking every built file in a fresh interpreter leaves torch unimported."""
    code = (
        "import sys\n"
        "from inspector.core.peek import peek\n"
        "for p in sys.argv[1:]:\n"
        "    peek(p)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'numpy', 'PySide6'}))"
    )
    paths = [str(b.path) for b in built_checkpoints.values()]
    proc = subprocess.run(
        [sys.executable, "-c", code, *paths],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_pickle_of_protocol_2_to_5_is_told_by_any_opcode_the_standard_library_knows() -> None:
    """The reader's table of opcode bytes is the one ``pickletools`` lists: a pickle starting with any of
    them is read as one, and a third byte that is no opcode is not."""
    import pickletools

    from inspector.core.pickle_stream import OPCODES, protocol_2_or_later

    known = {op.code.encode("latin-1")[0] for op in pickletools.opcodes}
    assert known == OPCODES
    assert all(protocol_2_or_later(bytes([0x80, 2, code]), 3) for code in known)
    assert not any(protocol_2_or_later(bytes([0x80, 2, code]), 3) for code in set(range(256)) - known)
