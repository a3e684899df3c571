"""A torch.distributed.checkpoint folder read where it lives: its ``.metadata`` and data-file sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.cli import main
from tests.layouts import write_dcp
from tests.remote.servers import RangeServer, file_facts


def _folder(tmp_path: Path) -> Path:
    return write_dcp(tmp_path / "ckpt", {"w": torch.randn(256, 256), "b": torch.zeros(256), "step": 3})


def _info(capsys: pytest.CaptureFixture[str], target: str) -> tuple[int, dict[str, Any], str]:
    status = main(["info", "--json", target])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else {}, err


def _same_tree(remote: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    cost = remote.pop("remote")
    file_facts(remote, local)
    assert remote == local and {t["key"] for t in remote["tensors"]} == {"w", "b"}
    return cost


def test_a_dcp_folder_over_http_has_the_local_folder_s_tree(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    for f in folder.iterdir():
        http.add(f"runs/ckpt/{f.name}", f.read_bytes())
    status, remote, _ = _info(capsys, http.url("runs/ckpt/"))
    assert status == 0
    _, local, _ = _info(capsys, str(folder))
    cost = _same_tree(remote, local)
    data_files = [f for f in folder.iterdir() if f.suffix == ".distcp"]
    assert cost["requests"] == 2 + len(data_files)  # .metadata (size, bytes), then each data file's size
    assert not any(method == "GET" and "distcp" in path for method, path, _ in http.log.requests)


def test_a_dcp_folder_in_s3_has_the_local_folder_s_tree(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    for f in folder.iterdir():
        s3.put_object(Bucket="ckpt", Key=f"run1/step3/{f.name}", Body=f.read_bytes())
    status, remote, _ = _info(capsys, "s3://ckpt/run1/step3/")
    assert status == 0
    _, local, _ = _info(capsys, str(folder))
    _same_tree(remote, local)


def test_a_missing_data_file_is_the_same_warning_as_for_a_local_folder(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    next(f for f in folder.iterdir() if f.suffix == ".distcp").unlink()
    for f in folder.iterdir():
        http.add(f"ckpt/{f.name}", f.read_bytes())
    _, remote, _ = _info(capsys, http.url("ckpt/.metadata"))
    _, local, _ = _info(capsys, str(folder))
    assert remote["warnings"] == local["warnings"] and any("is missing" in w for w in remote["warnings"])


def test_a_url_without_a_metadata_file_is_not_a_dcp_folder(
    http: RangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _info(capsys, http.url("nothing/"))
    assert status == 2 and "“nothing” is not a checkpoint folder (it has no .metadata file)." in err
