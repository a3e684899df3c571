"""Exports that say where they came from: ``info --json`` of the result shows the source's name,
size and sha256, the tool's version, the plan that made it and the time; ``--no-provenance``
leaves it out. A torch file keeps it beside itself, so what ``torch.load`` returns is unchanged."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open

from inspector import __version__
from inspector.core.provenance import PROVENANCE_KEY
from tests.checkpoints import BuiltCheckpoint
from tests.conftest import CliRunner


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_source_and_time(record: dict, source: Path) -> None:
    assert record["source"] == {"name": source.name, "size": source.stat().st_size, "sha256": _sha256(source)}
    assert record["tool"] == {"name": "checkpoint-inspector", "version": __version__}
    when = datetime.datetime.fromisoformat(record["time"])
    assert abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) < 600


def test_a_safetensors_export_records_its_plan_in_the_metadata(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint], tmp_path: Path
) -> None:
    source = built_checkpoints["training-zip"].path
    target = tmp_path / "model.safetensors"
    exported = cli.run(
        "export", source, "-o", target, "--subtree", "model", "--dtype", "float16",
        "--strip-prefix", "emb", "--exclude", "*.bias",
    )  # fmt: skip
    assert exported.returncode == 0, exported.describe()
    info, text = cli.run_many([("info", "--json", target), ("info", target)])
    record = info.json()["provenance"]
    _check_source_and_time(record, source)
    plan = record["plan"]
    assert plan["format"] == "safetensors" and plan["subtree"] == "model" and plan["dtype"] == "float16"
    assert plan["strip_prefixes"] == ["emb"] and plan["exclude"] == ["*.bias"] and plan["device"] is None
    with safe_open(str(target), framework="pt") as f:
        assert json.loads(f.metadata()[PROVENANCE_KEY]) == record  # a string value, as safetensors wants
    assert (
        f"exported from: {source.name} ({source.stat().st_size} bytes, sha256 {_sha256(source)})"
        in text.stdout
    )
    assert 'plan: dtype "float16"; exclude ["*.bias"]' in text.stdout


def test_a_torch_export_keeps_its_record_beside_it_and_loads_unchanged(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint], tmp_path: Path
) -> None:
    source = built_checkpoints["state_dict-zip"].path
    target = tmp_path / "copy.pth"
    exported = cli.run("export", source, "-o", target, "--device", "cpu")
    assert exported.returncode == 0, exported.describe()
    sidecar = tmp_path / "copy.pth.provenance.json"
    assert sidecar.is_file()
    record = cli.run("info", "--json", target).json()["provenance"]
    _check_source_and_time(record, source)
    assert record["plan"]["format"] == "pth" and record["plan"]["device"] == "cpu"
    assert set(torch.load(target, weights_only=True)) == set(torch.load(source, weights_only=True))

    target.write_bytes(target.read_bytes() + b"\0")  # no longer the file the record describes
    changed = cli.run("info", "--json", target)
    assert "provenance" not in changed.json()
    assert "copy.pth.provenance.json beside it describes another file" in changed.stderr


def test_no_provenance_leaves_it_out_and_a_replaced_file_loses_the_old_record(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint], tmp_path: Path
) -> None:
    source = built_checkpoints["state_dict-zip"].path
    st, pth = tmp_path / "a.safetensors", tmp_path / "b.pth"
    first = cli.run_many([("export", source, "-o", st, "--no-provenance"), ("export", source, "-o", pth)])
    assert all(r.returncode == 0 for r in first), [r.describe() for r in first]
    with safe_open(str(st), framework="pt") as f:
        assert PROVENANCE_KEY not in (f.metadata() or {})
    assert "provenance" not in cli.run("info", "--json", st).json()
    assert (tmp_path / "b.pth.provenance.json").exists()
    again = cli.run("export", source, "-o", pth, "--force", "--no-provenance")
    assert again.returncode == 0, again.describe()
    assert not (tmp_path / "b.pth.provenance.json").exists()
    assert "provenance" not in cli.run("info", "--json", pth).json()


def test_every_shard_of_a_set_records_where_it_came_from(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint], tmp_path: Path
) -> None:
    source = built_checkpoints["state_dict-zip"].path
    target = tmp_path / "set"
    exported = cli.run("export", source, "-o", target, "--format", "hf-sharded", "--max-shard-size", "1KB")
    assert exported.returncode == 0, exported.describe()
    shards = sorted(target.glob("*.safetensors"))
    assert shards
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            record = json.loads(f.metadata()[PROVENANCE_KEY])
        _check_source_and_time(record, source)
        assert record["plan"]["format"] == "hf-sharded"
    assert cli.run("info", "--json", target).json()["provenance"] == record  # the set shows it too
