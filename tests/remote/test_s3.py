"""Checkpoints read from an S3-protocol server on loopback (moto) through s3fs, by ranged GETs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inspector.cli import main
from tests.remote.servers import file_facts
from tests.remote.test_http import MB, _build


@pytest.mark.parametrize("fmt", ["zip", "safetensors"])
def test_an_s3_object_has_the_local_file_s_tree(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = _build(tmp_path, fmt)
    s3.put_object(Bucket="ckpt", Key=f"runs/{path.name}", Body=path.read_bytes())
    assert main(["info", "--json", f"s3://ckpt/runs/{path.name}"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["info", "--json", str(path)]) == 0
    local = json.loads(capsys.readouterr().out)
    cost = remote.pop("remote")
    file_facts(remote, local)
    assert remote == local
    assert cost["requests"] <= (4 if fmt == "zip" else 2)
    assert cost["bytes_fetched"] < MB < cost["file_size"]


def test_a_missing_s3_object_is_a_sentence(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "s3://ckpt/none.pth"]) == 2
    err = capsys.readouterr().err
    assert "s3://ckpt/none.pth does not exist" in err and "Traceback" not in err


def test_an_s3_object_replaced_between_two_reads_is_never_mixed(s3: Any) -> None:
    from inspector.core.errors import CheckpointError
    from inspector.remote.static_read import open_remote

    s3.put_object(Bucket="ckpt", Key="live.pth", Body=bytes(range(256)) * 4096)
    with open_remote("s3://ckpt/live.pth") as buffer:
        assert buffer[0:4] == bytes([0, 1, 2, 3])
        s3.put_object(Bucket="ckpt", Key="live.pth", Body=bytes(reversed(range(256))) * 4096)
        with pytest.raises(CheckpointError, match="changed while it was being read"):
            buffer[len(buffer) - 4 :]
