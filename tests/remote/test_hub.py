"""Files of the Hugging Face Hub: ``hf://`` and Hub page URLs read from ``HF_ENDPOINT``'s ``resolve/``
layout (a loopback server here), with ``HF_TOKEN`` sent and never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector.cli import main
from tests.remote.servers import RangeServer, file_facts
from tests.remote.test_http import _build


@pytest.mark.parametrize(
    "url",
    ["hf://org/model/weights/m.safetensors", "hf://org/model@v1.0/weights/m.safetensors",
     "{base}/org/model/blob/main/weights/m.safetensors"],
)  # fmt: skip
def test_a_hub_file_is_read_from_its_resolve_url_with_the_token(
    hub: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    path = _build(tmp_path, "safetensors")
    revision = "v1.0" if "@v1.0" in url else "main"
    hub.add(f"org/model/resolve/{revision}/weights/m.safetensors", path.read_bytes(),
            authorization="Bearer hf_secret_token")  # fmt: skip
    assert main(["info", "--json", url.format(base=hub.base)]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert main(["info", "--json", str(path)]) == 0
    local = json.loads(capsys.readouterr().out)
    assert remote.pop("remote")["requests"] == 2
    file_facts(remote, local)
    assert remote == local


def test_a_wrong_hub_token_is_a_sentence_without_the_token(
    hub: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.add("org/gated/resolve/main/m.safetensors", _build(tmp_path, "safetensors").read_bytes(),
            authorization="Bearer another")  # fmt: skip
    assert main(["info", "hf://org/gated/m.safetensors"]) == 2
    err = capsys.readouterr().err
    assert "credentials missing or wrong" in err and "hf_secret_token" not in err
    assert err.startswith("hf://org/gated/m.safetensors cannot be read")
