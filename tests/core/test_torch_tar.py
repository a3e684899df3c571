"""The torch 0.1 tar format, read statically: the tree with shapes and dtypes, and the globals."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.model import GlobalClass, NodeKind
from inspector.core.peek import peek
from tests.layouts import write_torch_tar


def _state() -> dict[str, object]:
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    return {"model": {"w": w, "row": w[1]}, "step": torch.tensor(7), "lr": 0.1}


def test_torch_reads_the_hand_built_fixture_only_without_weights_only(tmp_path: Path) -> None:
    path = write_torch_tar(tmp_path / "old.pth", _state())
    with pytest.raises(RuntimeError, match=r"legacy \.tar format"):
        torch.load(path, weights_only=True)
    loaded = torch.load(path, weights_only=False)
    assert torch.equal(loaded["model"]["row"], torch.tensor([3.0, 4.0, 5.0]))


def test_tar_checkpoint_reads_as_a_tree_with_shapes_dtypes_and_views(tmp_path: Path) -> None:
    path = write_torch_tar(tmp_path / "old.pth", _state())
    index = peek(path)
    assert index.format == "torch-tar"
    tensors = {n.key: n.tensor for n in index.root.tensors()}
    assert tensors.keys() == {"model.w", "model.row", "step"}
    w, row, step = tensors["model.w"], tensors["model.row"], tensors["step"]
    assert w is not None and row is not None and step is not None
    assert (w.shape, w.dtype, w.stride) == ((2, 3), "float32", (3, 1))
    assert (row.shape, row.storage_offset, row.storage_key) == ((3,), 3, w.storage_key)
    assert (step.shape, step.dtype) == ((), "int64")
    assert index.total_bytes == 6 * 4 + 8  # each storage once
    lr = next(n for n in index.root.walk() if n.key == "lr")
    assert lr.kind is NodeKind.VALUE and lr.value == "0.1"
    names = {g.qualname for g in index.globals}
    assert {"torch.FloatStorage", "torch.LongStorage", "torch.FloatTensor"} <= names
    assert any("tar format" in w for w in index.warnings)


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_payload_in_the_pickle_member_is_listed_not_run(tmp_path: Path) -> None:
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00echo!q\x01\x85q\x02Rq\x03."
    count = pickle.dumps(0, protocol=2)
    path = _tar(
        tmp_path / "evil.pth", {"pickle": payload, "tensors": count, "storages": count + pickle.dumps([])}
    )
    index = peek(path)
    assert index.format == "torch-tar"
    assert [g.qualname for g in index.dangerous_globals] == ["posix.system"]


def test_a_tar_without_a_pickle_member_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = _tar(tmp_path / "notes.tar", {"readme.txt": b"hello"})
    with pytest.raises(CheckpointError, match="tar archive but not a PyTorch checkpoint"):
        peek(path)


def test_a_storage_claiming_more_than_its_member_holds_is_refused(tmp_path: Path) -> None:
    records = pickle.dumps(1, protocol=2) + pickle.dumps((1, "cpu", torch.FloatStorage), protocol=2)
    records += (1 << 40).to_bytes(8, "little") + b"\0" * 16
    count = pickle.dumps(0, protocol=2)
    path = _tar(tmp_path / "big.pth", {"pickle": pickle.dumps({}, protocol=2), "tensors": count,
                                        "storages": records})  # fmt: skip
    with pytest.raises(CheckpointError, match="declares 1,099,511,627,776 elements"):
        peek(path)


def test_globals_in_the_storage_records_are_judged(tmp_path: Path) -> None:
    records = pickle.dumps(1, protocol=2) + b"\x80\x02cbuiltins\neval\nq\x00."
    path = _tar(tmp_path / "odd.pth", {"pickle": pickle.dumps({}, protocol=2), "storages": records})
    with pytest.raises(CheckpointError) as info:
        peek(path)
    assert any(g.verdict is GlobalClass.DANGEROUS for g in getattr(info.value, "globals", []))
