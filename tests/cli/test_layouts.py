"""``info`` and ``export`` on checkpoints in several files, as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.conftest import CliRunner
from tests.layouts import sample_state, write_dcp, write_hf_set


def test_info_on_dcp_folder_and_hf_shard(cli: CliRunner, tmp_path: Path) -> None:
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2, 3), "step": 1})
    write_hf_set(tmp_path / "hf", sample_state())
    dcp, hf = cli.run_many(
        [("info", folder, "--json"), ("info", tmp_path / "hf" / "model-00002-of-00002.bin", "--json")]
    )
    d = dcp.json()
    assert d["format"] == "dcp"
    (w,) = d["tensors"]
    assert w["shape"] == [2, 3] and w["chunks"][0]["sizes"] == [2, 3]
    h = hf.json()
    assert h["format"] == "hf-sharded"
    assert {t["shard"] for t in h["tensors"]} == {
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.bin",
    }


def test_export_hf_sharded_with_max_shard_size(cli: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    out = tmp_path / "out"
    result = cli.run("export", src, "-o", out, "--format", "hf-sharded", "--max-shard-size", "150B")
    assert result.returncode == 0, result.describe()
    data = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(data["weight_map"].values())) > 1
    bad = cli.run("export", src, "-o", tmp_path / "x", "--format", "hf-sharded", "--max-shard-size", "lots")
    assert bad.returncode == 2 and "not a size" in bad.stderr
