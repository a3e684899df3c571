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


def test_info_load_on_an_index_a_shard_and_the_folder_loads_the_whole_set(
    cli: CliRunner, tmp_path: Path
) -> None:
    state = sample_state()
    write_hf_set(tmp_path / "hf", state)
    ways = (".", "model.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.bin")
    runs = cli.run_many([("info", tmp_path / "hf" / p, "--load", "--json") for p in ways])
    for run in runs:
        data = run.json()
        assert data["format"] == "hf-sharded"
        assert {t["key"]: t["device"] for t in data["tensors"]} == dict.fromkeys(state, "cpu"), run.args


def test_info_load_on_a_dcp_folder_loads_its_chunks_and_never_its_metadata(
    cli: CliRunner, tmp_path: Path
) -> None:
    import os
    import pickle

    from tests.hostile import MARKER, _Payload

    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2, 3), "b": torch.arange(4), "step": 1})
    good = cli.run("info", folder, "--load", "--json", "--map-location", "meta").json()
    assert {t["key"]: t["device"] for t in good["tensors"]} == {"w": "meta", "b": "meta"}
    evil = tmp_path / "evil"
    write_dcp(evil, {"w": torch.ones(2)})
    (evil / ".metadata").write_bytes(pickle.dumps(_Payload(os.system, f"touch {tmp_path / MARKER}")))
    result = cli.run("info", evil, "--load", "--json")
    assert result.returncode == 0, result.describe()
    assert result.json()["tensors"] == [] and not (tmp_path / MARKER).exists()


def test_info_load_of_a_set_with_a_dangerous_shard_refuses_it_by_name(cli: CliRunner, tmp_path: Path) -> None:
    import os
    import pickle

    from tests.hostile import MARKER, _Payload, torch_zip_bytes, zip_replacing_data_pkl

    write_hf_set(tmp_path, sample_state())
    evil = pickle.dumps({"lm_head.bias": _Payload(os.system, f"touch {tmp_path / MARKER}")}, protocol=2)
    shard = tmp_path / "model-00002-of-00002.bin"
    shard.write_bytes(zip_replacing_data_pkl(torch_zip_bytes({"x": torch.ones(1)}), evil))
    result = cli.run("info", tmp_path, "--load")
    assert result.returncode == 2, result.describe()
    assert "model-00002-of-00002.bin" in result.stderr and not (tmp_path / MARKER).exists()
