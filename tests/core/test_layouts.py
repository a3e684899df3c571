"""Checkpoints in several files, read statically: HF shard sets and DCP folders as one tree."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.model import GlobalClass, NodeKind
from inspector.core.peek import peek
from tests.layouts import sample_state, write_dcp, write_hf_set


def _tensors(index):
    return {n.key: n.tensor for n in index.root.tensors()}


def test_hf_index_opens_as_one_tree_with_shards(tmp_path: Path) -> None:
    state = sample_state()
    index_path = write_hf_set(tmp_path, state)
    index = peek(index_path)
    assert index.format == "hf-sharded"
    assert index.warnings == []
    found = _tensors(index)
    assert set(found) == set(state)
    for key, t in state.items():
        assert found[key].shape == tuple(t.shape)
        assert found[key].dtype == str(t.dtype).removeprefix("torch.")
    assert found["model.layers.0.attn.weight"].shard == "model-00001-of-00002.safetensors"
    assert found["lm_head.bias"].shard == "model-00002-of-00002.bin"
    assert index.total_bytes == sum(t.nbytes for t in state.values())


@pytest.mark.parametrize("shard", ["model-00001-of-00002.safetensors", "model-00002-of-00002.bin"])
def test_any_shard_opens_the_whole_set(tmp_path: Path, shard: str) -> None:
    state = sample_state()
    write_hf_set(tmp_path, state)
    index = peek(tmp_path / shard)
    assert index.format == "hf-sharded"
    assert set(_tensors(index)) == set(state)
    single = peek(tmp_path / shard, whole_set=False)
    assert single.format in ("safetensors", "torch-zip")
    assert len(_tensors(single)) == 2


def test_a_folder_with_one_index_opens_the_set(tmp_path: Path) -> None:
    write_hf_set(tmp_path, sample_state())
    assert peek(tmp_path).format == "hf-sharded"


def test_missing_shard_is_reported(tmp_path: Path) -> None:
    index_path = write_hf_set(tmp_path, sample_state())
    os.unlink(tmp_path / "model-00002-of-00002.bin")
    index = peek(index_path)
    assert any("missing" in w and "model-00002-of-00002.bin" in w for w in index.warnings)
    missing = next(n for n in index.root.walk() if n.key == "lm_head.bias")
    assert missing.kind is NodeKind.VALUE
    assert "missing" in (missing.value or "")


def test_wrong_total_size_is_reported(tmp_path: Path) -> None:
    index = peek(write_hf_set(tmp_path, sample_state(), total_size=12345))
    assert any("total_size" in w and "12345" in w for w in index.warnings)


def test_tensor_listed_twice_is_reported(tmp_path: Path) -> None:
    index_path = write_hf_set(tmp_path, sample_state())
    text = index_path.read_text()
    dup = '"lm_head.bias": "model-00002-of-00002.bin", '
    index_path.write_text(text.replace('"weight_map": {', '"weight_map": {' + dup))
    index = peek(index_path)
    assert any("lm_head.bias" in w and "twice" in w for w in index.warnings)


def test_tensor_in_two_shards_is_reported(tmp_path: Path) -> None:
    state = sample_state()
    index_path = write_hf_set(tmp_path, state)
    torch.save({"lm_head.bias": state["lm_head.bias"], "model.embed.weight": state["model.embed.weight"],
                "model.layers.0.attn.weight": state["model.layers.0.attn.weight"]},
               tmp_path / "model-00002-of-00002.bin")  # fmt: skip
    index = peek(index_path)
    assert any("model.layers.0.attn.weight" in w and "two shards" in w for w in index.warnings)


@pytest.mark.parametrize("target", ["../outside.safetensors", "/etc/passwd", "sub/../../x.bin"])
def test_weight_map_paths_out_of_the_folder_are_refused(tmp_path: Path, target: str) -> None:
    folder = tmp_path / "model"
    index_path = write_hf_set(folder, sample_state())
    data = json.loads(index_path.read_text())
    data["weight_map"]["lm_head.bias"] = target
    index_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="outside its folder"):
        peek(index_path)


def test_symlinked_shard_pointing_out_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    index_path = write_hf_set(folder, sample_state())
    outside = tmp_path / "elsewhere.bin"
    os.replace(folder / "model-00002-of-00002.bin", outside)
    os.symlink(outside, folder / "model-00002-of-00002.bin")
    with pytest.raises(CheckpointError, match="outside its folder"):
        peek(index_path)


def test_dcp_folder_written_by_torch(tmp_path: Path) -> None:
    state = {"model": {"w": torch.randn(4, 8), "b": torch.arange(5)}, "step": 7, "name": "run"}
    folder = write_dcp(tmp_path / "ckpt", state)
    index = peek(folder)
    assert index.format == "dcp"
    assert index.unsafe_globals == []
    found = _tensors(index)
    assert set(found) == {"model.w", "model.b"}
    w = found["model.w"]
    assert (w.shape, w.dtype) == ((4, 8), "float32")
    assert found["model.b"].dtype == "int64"
    assert w.chunks and w.chunks[0].file.endswith(".distcp")
    assert w.chunks[0].sizes == (4, 8) and w.chunks[0].offsets == (0, 0)
    assert w.shard == w.chunks[0].file
    values = {n.key: n for n in index.root.walk() if n.kind is NodeKind.VALUE}
    assert {"step", "name"} <= set(values)
    assert "not read" in (values["step"].value or "")


def test_dcp_metadata_with_payload_is_dangerous_and_runs_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    write_dcp(folder, {"w": torch.ones(2)})
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / ".metadata").write_bytes(pickle.dumps(Payload()))
    index = peek(folder)
    assert index.format == "dcp"
    assert any(g.verdict is GlobalClass.DANGEROUS and g.name == "system" for g in index.globals)
    assert not marker.exists()


def test_dcp_metadata_with_chunk_path_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    write_dcp(folder, {"w": torch.ones(2)})
    raw = (folder / ".metadata").read_bytes()
    # the same length keeps the pickle's framing valid
    (folder / ".metadata").write_bytes(raw.replace(b"__0_0.distcp", b"../_0.distcp"))
    with pytest.raises(CheckpointError, match="outside its folder"):
        peek(folder)


def test_plain_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="folder"):
        peek(tmp_path)


def test_safetensors_overlapping_offsets_are_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}  # fmt: skip
    raw = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(12))
    with pytest.raises(CheckpointError, match="overlaps"):
        peek(path)


@pytest.mark.parametrize(
    ("header", "data", "match"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 4, "outside the file"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, "shape and dtype need"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "gap"),
        ({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, 4, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 8, "no tensor uses"),
    ],
)
def test_safetensors_header_checks(tmp_path: Path, header: dict, data: int, match: str) -> None:
    raw = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(data))
    with pytest.raises(CheckpointError, match=match):
        peek(path)


def test_safetensors_float8_and_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "f8.safetensors"
    save_file({"a": torch.zeros(4, dtype=torch.float8_e4m3fn), "b": torch.zeros(2, dtype=torch.float8_e5m2)},
              str(path), metadata={"format": "pt", "note": "hi"})  # fmt: skip
    index = peek(path)
    assert {n.tensor.dtype for n in index.root.tensors()} == {"float8_e4m3fn", "float8_e5m2"}
    meta = next(n for n in index.root.children if n.key == "__metadata__")
    assert {c.name for c in meta.children} == {"format", "note"}


# -- one layout however it is opened --------------------------------------------------------------


def test_index_shard_and_folder_resolve_to_one_layout(tmp_path: Path) -> None:
    from inspector.core.layout import LayoutKind, resolve_layout

    index_path = write_hf_set(tmp_path / "hf", sample_state())
    ways = [index_path, tmp_path / "hf", tmp_path / "hf" / "model-00001-of-00002.safetensors",
            tmp_path / "hf" / "model-00002-of-00002.bin"]  # fmt: skip
    layouts = [resolve_layout(p) for p in ways]
    assert {lay.kind for lay in layouts} == {LayoutKind.HF_SHARD_SET}
    assert {lay.path for lay in layouts} == {str(index_path)}
    assert {lay.folder for lay in layouts} == {str(tmp_path / "hf")}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.bin"]
    expected = tuple((n, str(tmp_path / "hf" / n)) for n in names)
    assert {tuple(lay.shard_files()) for lay in layouts} == {expected}
    single = resolve_layout(tmp_path / "hf" / "model-00002-of-00002.bin", whole_set=False)
    assert single.kind is LayoutKind.FILE
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2)})
    assert resolve_layout(folder).kind is LayoutKind.DCP_FOLDER


def test_folder_with_a_safetensors_and_a_bin_index_opens_the_safetensors_set(tmp_path: Path) -> None:
    index_path = write_hf_set(tmp_path, sample_state())
    index_path.rename(tmp_path / "model.safetensors.index.json")
    data = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(data))
    index = peek(tmp_path)
    assert index.format == "hf-sharded" and index.path == str(tmp_path / "model.safetensors.index.json")
    assert any("pytorch_model.bin.index.json" in w for w in index.warnings)
    (tmp_path / "model.safetensors.index.json").rename(tmp_path / "other.index.json")
    with pytest.raises(CheckpointError, match="several shard-set indexes"):
        peek(tmp_path)


def test_a_shard_aliased_thousands_of_times_is_read_once_with_one_warning(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from inspector.core.layout import resolve_layout

    state = {f"w{i}": torch.full((2,), float(i)) for i in range(3000)}
    save_file(state, str(tmp_path / "s.safetensors"))
    weight_map = {k: "./" * (i % 1000) + "s.safetensors" for i, k in enumerate(state)}
    index_path = tmp_path / "model.index.json"
    index_path.write_text(json.dumps({"weight_map": weight_map}))
    assert [name for name, _ in resolve_layout(index_path).shard_files()] == ["s.safetensors"]
    index = peek(index_path)
    assert len(_tensors(index)) == 3000
    assert {t.shard for t in _tensors(index).values()} == {"s.safetensors"}
    assert len(index.warnings) == 1 and "1,000 spellings" in index.warnings[0]


def test_a_damaged_shard_keeps_its_dangerous_globals_in_the_set(tmp_path: Path) -> None:
    from tests.hostile import MARKER, posix_system_protocol0

    index_path = write_hf_set(tmp_path, sample_state())
    (tmp_path / "model-00002-of-00002.bin").write_bytes(posix_system_protocol0(tmp_path)[:-1])
    for opened in (index_path, tmp_path, tmp_path / "model-00001-of-00002.safetensors"):
        index = peek(opened)
        dangerous = [g for g in index.globals if g.verdict is GlobalClass.DANGEROUS]
        assert [g.qualname for g in dangerous] == ["posix.system"], opened
        assert dangerous[0].pickle.startswith("model-00002-of-00002.bin")
        assert any("model-00002-of-00002.bin cannot be read" in w for w in index.warnings)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    "bomb",
    [
        b'{"weight_map": {"x": "model.pth"}, "deep": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        '{"weight_map": {"x": "model.pth"}}'.encode("utf-16-le"),
        b'{"weight_map": {"x": "model.pth", "y": 7}}',
        b'{"weight_map": {"x": "model.pth"',
    ],
    ids=["deep-nesting", "utf-16", "bad-entry", "cut-short"],
)
def test_a_bad_neighbouring_index_never_affects_the_file_opened(tmp_path: Path, bomb: bytes) -> None:
    torch.save({"w": torch.ones(3)}, tmp_path / "model.pth")
    (tmp_path / "evil.index.json").write_bytes(bomb)
    index = peek(tmp_path / "model.pth")
    assert index.format == "torch-zip" and set(_tensors(index)) == {"w"}
    assert index.warnings == []


def test_an_index_that_is_not_utf8_json_is_not_read_as_one(tmp_path: Path) -> None:
    path = tmp_path / "model.index.json"
    path.write_bytes('{"weight_map": {"x": "a.bin"}}'.encode("utf-16-le"))
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        peek(path)


def test_a_dcp_data_file_that_is_a_fifo_is_reported_not_opened(tmp_path: Path) -> None:
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2)})
    data = next(folder.glob("*.distcp"))
    data.unlink()
    os.mkfifo(data)
    index = peek(folder)
    assert any("not a regular file" in w for w in index.warnings)
