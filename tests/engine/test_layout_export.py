"""Consolidating shard sets and DCP folders, writing HF shard sets, legacy → zip; read back equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from inspector.core.export_plan import ExportPlan
from inspector.core.peek import peek
from inspector.engine.direct_read import MappedCheckpoint
from inspector.engine.export import ExportError, export_checkpoint
from tests.layouts import sample_state, write_dcp, write_hf_set


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def _assert_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_hf_set_consolidates(tmp_path: Path, fmt: str) -> None:
    state = sample_state()
    index = write_hf_set(tmp_path / "set", state)
    target = tmp_path / f"one.{fmt}"
    report = export_checkpoint(ExportPlan(source=str(index), target=str(target), format=fmt))
    assert report.verified
    got = torch.load(target, weights_only=True) if fmt == "pth" else _safetensors(target)
    _assert_equal(dict(got), state)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_dcp_folder_consolidates(tmp_path: Path, fmt: str) -> None:
    state = {
        "model.w": torch.randn(6, 8),
        "model.b": torch.arange(5),
        "half": torch.ones(3, dtype=torch.float16),
    }
    folder = write_dcp(tmp_path / "ckpt", {**state, "step": 3})
    target = tmp_path / f"one.{fmt}"
    export_checkpoint(ExportPlan(source=str(folder), target=str(target), format=fmt))
    got = torch.load(target, weights_only=True) if fmt == "pth" else _safetensors(target)
    _assert_equal(dict(got), state)


def test_dcp_chunks_are_assembled(tmp_path: Path) -> None:
    """A tensor saved in two chunks (edited .metadata is not needed: two rows of a 2-D tensor)."""
    from inspector.engine.shard_sources import ShardSetSource

    w = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    folder = write_dcp(tmp_path / "ckpt", {"w": w})
    index = peek(folder)
    node = next(index.root.tensors())
    source = ShardSetSource(str(folder), index)
    assert torch.equal(source.get_tensor("w"), w)
    assert node.tensor is not None and len(node.tensor.chunks) == 1


def test_hf_shard_set_written_and_read_back(tmp_path: Path) -> None:
    state = sample_state()
    src = tmp_path / "src.pth"
    torch.save(state, src)
    target = tmp_path / "sharded"
    report = export_checkpoint(
        ExportPlan(source=str(src), target=str(target), format="hf-sharded", max_shard_size=150)
    )
    assert report.verified
    data = json.loads((target / "model.safetensors.index.json").read_text())
    shards = set(data["weight_map"].values())
    assert len(shards) > 1
    assert data["metadata"]["total_size"] == sum(t.nbytes for t in state.values())
    got: dict[str, torch.Tensor] = {}
    for shard in shards:
        got.update(_safetensors(target / shard))
    _assert_equal(got, state)
    assert peek(target).format == "hf-sharded"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_hf_shard_set_refuses_existing_target_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    target = tmp_path / "sharded"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        export_checkpoint(ExportPlan(source=str(src), target=str(target), format="hf-sharded"))
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_hf_shard_set_failure_leaves_no_partial_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspector.engine.export_sharded as sharded

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)

    def broken(*_args: object) -> None:
        raise ExportError("simulated verification failure", None, "verify-failed")

    monkeypatch.setattr(sharded, "_verify_set", broken)
    with pytest.raises(ExportError, match="simulated"):
        export_checkpoint(ExportPlan(source=str(src), target=str(tmp_path / "out"), format="hf-sharded",
                                     max_shard_size=100))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]


def test_legacy_converts_to_zip(tmp_path: Path) -> None:
    state = sample_state()
    src = tmp_path / "old.pth"
    torch.save(state, src, _use_new_zipfile_serialization=False)
    assert peek(src).format == "torch-legacy"
    target = tmp_path / "new.pth"
    export_checkpoint(ExportPlan(source=str(src), target=str(target), format="pth"))
    assert peek(target).format == "torch-zip"
    _assert_equal(dict(torch.load(target, weights_only=True)), state)


def test_hf_set_direct_reads_per_shard(tmp_path: Path) -> None:
    state = sample_state()
    index = write_hf_set(tmp_path, state)
    with MappedCheckpoint(index) as mapped:
        assert mapped.index.format == "hf-sharded"
        for node in mapped.tensor_nodes():
            assert torch.equal(mapped.tensor(node), state[node.key])


def test_hf_shard_set_on_a_full_disk_says_so_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import inspector.engine.export_sharded as sharded

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sharded, "_fsync_dir", full)
    with pytest.raises(ExportError) as info:
        export_checkpoint(ExportPlan(source=str(src), target=str(tmp_path / "out"), format="hf-sharded"))
    assert info.value.kind == "disk-full" and "is full" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]
