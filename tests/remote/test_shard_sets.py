"""A Hugging Face shard set read where it lives: its index fetched, each shard's header by ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inspector.cli import main
from tests.remote.servers import RangeServer, file_facts
from tests.remote.test_http import MB


def _shard_set(folder: Path, shards: int = 3, weight_map: dict[str, str] | None = None) -> Path:
    mapping: dict[str, str] = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {f"layers.{s}.{w}": torch.full((256, 1024), float(s)) for w in ("q", "k")}
        save_file(tensors, folder / name)
        mapping.update(dict.fromkeys(tensors, name))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map or mapping}))
    return index


def _serve_folder(http: RangeServer, folder: Path, prefix: str) -> None:
    for f in folder.iterdir():
        http.add(f"{prefix}/{f.name}", f.read_bytes())


def _info(capsys: pytest.CaptureFixture[str], target: str) -> tuple[int, dict, str]:
    status = main(["info", "--json", target])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else {}, err


def test_a_remote_shard_set_has_the_local_set_s_tree(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path)
    _serve_folder(http, tmp_path, "org/model/resolve/main")
    status, remote, _ = _info(capsys, http.url(f"org/model/resolve/main/{index.name}"))
    assert status == 0
    _, local, _ = _info(capsys, str(index))
    cost = remote.pop("remote")
    file_facts(remote, local)
    assert remote == local and len(remote["tensors"]) == 6
    assert cost["requests"] == 2 + 3 * 2  # the index, then a HEAD and a header read per shard
    assert cost["bytes_fetched"] < MB < cost["file_size"]


def test_a_missing_remote_shard_is_the_same_warning_as_a_missing_local_one(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    _serve_folder(http, tmp_path, "r")
    _, remote, _ = _info(capsys, http.url(f"r/{index.name}"))
    _, local, _ = _info(capsys, str(index))
    assert remote["warnings"] == local["warnings"]
    assert "1 shard(s) are missing: model-00002-of-00003.safetensors (2 tensors)" in remote["warnings"]


@pytest.mark.parametrize("shard", ["../../other/resolve/main/x.safetensors", "/etc/x.safetensors",
                                   "https://elsewhere.example/x.safetensors"])  # fmt: skip
def test_an_index_whose_shards_leave_the_repository_opens_nothing(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], shard: str
) -> None:
    index = _shard_set(tmp_path, 1, {"w": shard})
    _serve_folder(http, tmp_path, "org/model/resolve/main")
    status, _, err = _info(capsys, http.url(f"org/model/resolve/main/{index.name}"))
    assert status == 2 and "names a shard outside its" in err
    assert [p for _, p, _ in http.log.requests] == [f"/org/model/resolve/main/{index.name}"] * 2
