"""What ``info`` and ``scan`` print for strings no terminal or encoder takes as they are: lone
surrogates and control characters in keys, and counts that agree with their nouns."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tests.conftest import CliRunner


def test_lone_surrogates_in_keys_reach_json_as_escapes_and_text_escaped(
    cli: CliRunner, tmp_path: Path
) -> None:
    import torch

    path = tmp_path / "surrogate.pth"
    torch.save({"w\ud800": torch.zeros(2), "x\x1b[2J": torch.ones(1)}, path)
    as_json, as_text, scan = cli.run_many(
        [("info", path, "--json"), ("info", path), ("scan", path, "--json")]
    )
    assert as_json.returncode == 0, as_json.describe()
    assert "\\ud800" in as_json.stdout  # JSON's own escape: any reader gets the key back
    assert {t["key"] for t in json.loads(as_json.stdout)["tensors"]} == {"w\ud800", "x\x1b[2J"}
    assert as_text.returncode == 0, as_text.describe()
    assert "w\\ud800" in as_text.stdout and "x\\x1b[2J" in as_text.stdout and "\x1b" not in as_text.stdout
    assert scan.returncode == 0 and json.loads(scan.stdout)["verdict"] == "safe"


def test_scan_counts_agree_with_their_nouns(cli: CliRunner, tmp_path: Path) -> None:
    one = tmp_path / "one.pkl"
    one.write_bytes(pickle.dumps({"a": 1}, protocol=2))  # no global at all
    path = tmp_path / "od.pkl"
    path.write_bytes(pickle.dumps(__import__("collections").OrderedDict(a=1), protocol=2))
    none, single = cli.run_many([("scan", one), ("scan", path)])
    assert "(pickle, 0 distinct globals)" in none.stdout.splitlines()[0]
    assert "(pickle, 1 distinct global)" in single.stdout.splitlines()[0], single.describe()


def test_scan_prints_a_global_with_a_lone_surrogate_escaped(cli: CliRunner, tmp_path: Path) -> None:
    module = "os\ud800".encode("utf-8", "surrogatepass")
    path = tmp_path / "surrogate_global.pkl"
    path.write_bytes(b"\x80\x04\x8c" + bytes([len(module)]) + module + b"\x8c\x06system\x93.")
    text, as_json = cli.run_many([("scan", path), ("scan", path, "--json")])
    assert text.returncode == 1 and "Unexpected" not in text.stderr, text.describe()
    assert "os\\ud800.system" in text.stdout
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["globals"][0]["name"] == "os\ud800.system"
