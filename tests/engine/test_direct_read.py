"""Direct reads of single tensors from the mapped file equal what ``torch.load`` gives, bit for bit."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inspector.core.errors import CheckpointError
from inspector.core.storage_layout import storage_layout
from inspector.engine.direct_read import MappedCheckpoint
from inspector.engine.sources import SourceCache
from tests.checkpoints import CASE_IDS, BuiltCheckpoint, walk


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal shape, dtype and bytes (NaN patterns included); works for every dtype."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.numel() == 0:
        return True
    return bool(
        torch.equal(
            a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8)
        )
    )


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_every_tensor_equals_torch_load(case_id: str, built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    built = built_checkpoints[case_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex32 is "experimental"
        loaded = dict(walk(built.torch_load("cpu")))
    expected = {path: t for path, t in loaded.items() if isinstance(t, torch.Tensor)}
    assert expected
    with MappedCheckpoint(built.path) as mapped:
        nodes = mapped.tensor_nodes()
        assert {n.path for n in nodes} == set(expected)
        for node in nodes:
            got = mapped.tensor(node)
            want = expected[node.path]
            assert got.stride() == want.stride(), node.key
            assert got.storage_offset() == want.storage_offset(), node.key
            assert _same_bits(got, want), node.key


def test_views_share_the_mapped_bytes(built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    """A transposed view and its base read the same file bytes: nothing is copied."""
    with MappedCheckpoint(built_checkpoints["shared-zip"].path) as mapped:
        base = mapped.tensor(mapped.find("views.t"))
        transposed = mapped.tensor(mapped.find("views.t_T"))
        column = mapped.tensor(mapped.find(path=["views", "column"]))
        assert transposed.untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
        assert torch.equal(transposed, base.t())
        assert torch.equal(column, base[:, 1])


def test_tensors_outlive_close(built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    mapped = MappedCheckpoint(built_checkpoints["bare_tensor-zip"].path)
    t = mapped.tensor(mapped.find(""))
    mapped.close()
    assert torch.equal(t, built_checkpoints["bare_tensor-zip"].torch_load())


def test_safetensors_every_dtype(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 4),
        "bf16": torch.randn(5, 2).to(torch.bfloat16),
        "f16": torch.randn(7).to(torch.float16),
        "f8": torch.randn(4, 4).to(torch.float8_e4m3fn),
        "f8b": torch.randn(4, 4).to(torch.float8_e5m2),
        "i64": torch.arange(10),
        "u16": torch.arange(9).to(torch.uint16),
        "u32": torch.arange(9).to(torch.uint32),
        "b": torch.tensor([True, False, True]),
        "c64": torch.randn(3, dtype=torch.complex64),
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "all.safetensors"
    save_file(tensors, str(path))
    with MappedCheckpoint(path) as mapped:
        for key, want in tensors.items():
            assert _same_bits(mapped.tensor(mapped.find(key)), want), key


def test_truncated_storage_is_a_sentence_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.randn(1000)}, path, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:-100])
    # the peek itself refuses a legacy file cut inside a record; read the layout of the whole one
    with MappedCheckpoint(path) as mapped:
        node = mapped.find("w")
        info = node.tensor
        assert info is not None
        mapped._layout = storage_layout(cut, mapped.index)  # the file shrank after it was read
        with pytest.raises(CheckpointError, match="truncated or damaged"):
            mapped.read(info, "w")


def test_truncated_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "z.pt"
    torch.save({"w": torch.randn(4096)}, path)
    with MappedCheckpoint(path) as mapped:
        info = mapped.find("w").tensor
        assert info is not None
        span = mapped._layout.span(info.storage_key)
        mapped._layout._spans[info.storage_key] = type(span)(span.offset, span.nbytes - 8)
        with pytest.raises(CheckpointError, match="needs 16,384 bytes"):
            mapped.read(info, "w")


def test_file_shrunk_while_open(tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    torch.save({"w": torch.randn(64)}, path)
    with MappedCheckpoint(path) as mapped:
        node = mapped.find("w")
        with open(path, "r+b") as f:
            f.truncate(mapped.file_size - 10)
        with pytest.raises(CheckpointError, match="shrank"):
            mapped.tensor(node)


def test_unknown_key_and_unreadable_format(tmp_path: Path) -> None:
    path = tmp_path / "k.pt"
    torch.save({"w": torch.ones(2)}, path)
    with MappedCheckpoint(path) as mapped, pytest.raises(CheckpointError, match="no tensor named nope"):
        mapped.find("nope")
    text = tmp_path / "paths.pth"
    text.write_text("/usr/lib/python3/dist-packages\n")
    with pytest.raises(CheckpointError):
        MappedCheckpoint(text)


def test_cache_reopens_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    torch.save({"w": torch.ones(2)}, path)
    cache = SourceCache(max_open=1)
    first = cache.get(str(path))
    assert cache.get(str(path)) is first
    torch.save({"w": torch.full((3,), 2.0)}, path)
    second = cache.get(str(path))
    assert second is not first
    assert torch.equal(second.tensor(second.find("w")), torch.full((3,), 2.0))
    cache.clear()


def test_legacy_file_from_a_big_endian_machine_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The byte order comes from the legacy sys-info pickle the static read already parsed."""
    import sys

    path = tmp_path / "big.pt"
    monkeypatch.setattr(sys, "byteorder", "big")
    torch.save({"w": torch.ones(4)}, path, _use_new_zipfile_serialization=False)
    monkeypatch.undo()
    with MappedCheckpoint(path) as mapped:
        assert mapped.index.byteorder == "big"
        with pytest.raises(CheckpointError, match="big-endian"):
            mapped.read(mapped.find("w").tensor, "w")


def test_spans_come_from_the_static_read(tmp_path: Path) -> None:
    """Legacy and safetensors records are located by the peek, not by a second parse."""
    legacy, st = tmp_path / "l.pt", tmp_path / "s.safetensors"
    torch.save({"w": torch.arange(6.0)}, legacy, _use_new_zipfile_serialization=False)
    save_file({"w": torch.arange(6.0)}, str(st))
    for path in (legacy, st):
        with MappedCheckpoint(path) as mapped:
            start, nbytes = next(iter(mapped.index.storage_spans.values()))
            assert nbytes == 24
            raw = path.read_bytes()[start : start + nbytes]
            assert torch.equal(torch.frombuffer(bytearray(raw), dtype=torch.float32), torch.arange(6.0))
            assert torch.equal(mapped.read(mapped.find("w").tensor, "w"), torch.arange(6.0))
