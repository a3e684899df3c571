"""Statistics, values and exports of a shard set or a DCP folder where it lives: each tensor read from
the one shard or data file it lies in, by its own record, with the numbers of the local copy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from inspector.cli import main
from inspector.core.errors import CheckpointError
from inspector.core.export_plan import ExportPlan
from inspector.engine.export import ExportError, export_checkpoint
from inspector.engine.inspect_jobs import answer, close_mapped_files
from inspector.engine.protocol import SliceRequest, StatsAllRequest, StatsRequest
from inspector.engine.stats import StatsCancelled
from inspector.remote.range_buffer import READ_AHEAD
from tests.layouts import write_dcp, write_dcp_chunks
from tests.remote.servers import RangeServer, Served

MB = 1 << 20
SHAPE = (1024, 1024)  # 4 MiB of float32 per tensor


@pytest.fixture(autouse=True)
def _unmapped() -> Any:
    yield
    close_mapped_files()  # the worker's open sources, kept between jobs


def _shard_set(folder: Path, shards: int = 3, shape: tuple[int, ...] = SHAPE) -> Path:
    """``shards`` safetensors files of two random tensors each (one NaN in layers.1.k), and the index."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    mapping: dict[str, str] = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {f"layers.{s}.{w}": torch.randn(shape, generator=generator) for w in ("q", "k")}
        if s == 1:
            tensors["layers.1.k"].view(-1)[7] = float("nan")
        save_file(tensors, folder / name)
        mapping.update(dict.fromkeys(tensors, name))
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": mapping}))
    return index


def _serve(http: RangeServer, folder: Path, prefix: str) -> dict[str, Served]:
    return {f.name: http.add(f"{prefix}/{f.name}", f.read_bytes()) for f in folder.iterdir()}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _stats_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status, out, err = _cli(capsys, "stats", "--json", *args)
    assert status == 0, err
    result: dict[str, Any] = json.loads(out)
    result.pop("path"), result.pop("seconds", None), result.pop("bytes", None)
    for row in result["tensors"]:
        row.get("stats", {}).pop("seconds", None)
    return result


def _ranges(http: RangeServer) -> list[tuple[str, int]]:
    """(path, bytes asked for) of every ranged GET the server answered."""
    out = []
    for method, path, rng in http.log.requests:
        if method == "GET" and rng:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            out.append((path, int(last) + 1 - int(first)))
    return out


def test_statistics_of_one_tensor_of_a_remote_set_are_the_local_set_s_from_its_record_alone(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path / "set")
    _serve(http, index.parent, "r")
    remote = _stats_json(capsys, http.url(f"r/{index.name}"), "layers.1.q")
    assert remote == _stats_json(capsys, str(index), "layers.1.q")
    assert remote["tensors"][0]["stats"]["numel"] == math.prod(SHAPE)
    set_size = sum(f.stat().st_size for f in index.parent.iterdir())
    tensor = 4 * math.prod(SHAPE)
    # two tree reads (the key is checked first) cost a head per shard; the rest is the one record
    assert http.log.body_bytes < tensor + 8 * READ_AHEAD < set_size / 2
    beyond_a_head = {path for path, n in _ranges(http) if n > READ_AHEAD}
    assert beyond_a_head == {"/r/model-00002-of-00003.safetensors"}


def test_statistics_of_every_tensor_of_a_remote_set_are_the_local_set_s(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path / "set", shape=(64, 64))
    _serve(http, index.parent, "r")
    remote = _stats_json(capsys, http.url(f"r/{index.name}"))
    assert remote == _stats_json(capsys, str(index))
    assert len(remote["tensors"]) == 6 and remote["flagged"] == ["layers.1.k"]


def test_the_window_s_values_and_statistics_of_a_remote_set_are_the_local_set_s(
    http: RangeServer, tmp_path: Path
) -> None:
    """The worker answers the window's requests for a URL as for a path: a page of values, one
    tensor's statistics, and every tensor's with progress and a working cancel."""
    index = _shard_set(tmp_path / "set", shape=(64, 64))
    _serve(http, index.parent, "r")
    url = http.url(f"r/{index.name}?token=t")
    for request in (StatsRequest, SliceRequest):
        remote, local = (answer(request(p, None, "layers.2.k")) for p in (url, str(index)))  # type: ignore[operator]
        remote.pop("seconds", None), local.pop("seconds", None)
        assert remote == local
    page = answer(SliceRequest(url, None, "layers.2.k", row_count=64, col_count=64))
    stored = load_file(index.parent / "model-00003-of-00003.safetensors")["layers.2.k"]
    assert np.array_equal(np.array(page["values"], dtype=np.float32), stored.numpy())
    seen: list[tuple[int, int, str]] = []
    everything = answer(StatsAllRequest(url), lambda *p: seen.append(p))
    assert [key for _, _, key in seen] == [row["key"] for row in everything["tensors"]]
    assert seen[-1][0] == seen[-1][1] == 6 * 64 * 64 * 4 and everything["flagged"] == ["layers.1.k"]
    with pytest.raises(StatsCancelled):
        answer(StatsAllRequest(url), lambda *p: seen.append(p), cancelled=lambda: len(seen) > 7)


def _split_folder(folder: Path) -> tuple[Path, torch.Tensor]:
    """A DCP folder whose ``w`` is split in two chunks written to two data files (by two ranks)."""
    w = torch.arange(64 * 48, dtype=torch.float32).reshape(64, 48) / 7
    chunks = {"w": ((64, 48), [((0, 0), w[:40]), ((40, 0), w[40:])]), "b": ((48,), [((0,), torch.ones(48))])}
    return write_dcp_chunks(folder, chunks, files=2), w  # type: ignore[arg-type]


def test_a_tensor_split_across_data_files_of_a_dcp_folder_in_s3_is_assembled_as_locally(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, w = _split_folder(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    for f in folder.iterdir():
        s3.put_object(Bucket="ckpt", Key=f"run1/step3/{f.name}", Body=f.read_bytes())
    url = "s3://ckpt/run1/step3/"
    assert _stats_json(capsys, url, "w") == _stats_json(capsys, str(folder), "w")
    page = answer(SliceRequest(url, None, "w", row_count=64, col_count=48))
    assert np.array_equal(np.array(page["values"], dtype=np.float32), w.numpy())
    assert _stats_json(capsys, url) == _stats_json(capsys, str(folder))


def test_one_tensor_of_a_dcp_folder_costs_its_chunk_not_its_data_file(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_dcp(tmp_path / "ckpt", {"big": torch.randn(SHAPE), "small": torch.randn(16, 16)})
    data = next(f for f in folder.iterdir() if f.suffix == ".distcp")
    _serve(http, folder, "runs/ckpt")
    assert _stats_json(capsys, http.url("runs/ckpt/"), "small") == _stats_json(capsys, str(folder), "small")
    assert data.stat().st_size > 4 * MB > 4 * http.log.body_bytes


def _exported(capsys: pytest.CaptureFixture[str], source: str, out: Path, *extra: str) -> bytes:
    out.parent.mkdir()
    status, _, err = _cli(capsys, "export", source, "-o", str(out), *extra)
    assert status == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # nothing else left beside it
    return out.read_bytes()


def test_an_export_of_a_remote_set_is_the_export_of_the_local_copy(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path / "set", shape=(256, 256))
    _serve(http, index.parent, "r")
    url = http.url(f"r/{index.name}")
    remote = _exported(capsys, url + "?token=s3cr3t", tmp_path / "a" / "m.safetensors", "--no-provenance")
    assert remote == _exported(capsys, str(index), tmp_path / "b" / "m.safetensors", "--no-provenance")
    with_record = _exported(capsys, url + "?token=s3cr3t", tmp_path / "c" / "m.safetensors")
    assert b"s3cr3t" not in with_record
    _, out, _ = _cli(capsys, "info", "--json", str(tmp_path / "c" / "m.safetensors"))
    source = json.loads(out)["provenance"]["source"]
    files = sorted(index.parent.iterdir())
    assert source == {
        "name": index.name, "url": url, "size": sum(f.stat().st_size for f in files),
        "files": [{"name": f.name, "url": http.url(f"r/{f.name}"), "size": f.stat().st_size}
                  for f in [index, *(f for f in files if f != index)]],
    }  # fmt: skip


def test_an_export_of_a_dcp_folder_in_s3_is_the_export_of_the_local_copy(
    s3: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = _split_folder(tmp_path / "ckpt")
    for f in folder.iterdir():
        s3.put_object(Bucket="ckpt", Key=f"run1/{f.name}", Body=f.read_bytes())
    remote = _exported(capsys, "s3://ckpt/run1/", tmp_path / "a" / "m.safetensors", "--no-provenance")
    assert remote == _exported(capsys, str(folder), tmp_path / "b" / "m.safetensors", "--no-provenance")


@pytest.mark.parametrize("fault", ["missing", "changed"])
def test_a_shard_that_goes_away_or_changes_mid_export_leaves_nothing(
    http: RangeServer, tmp_path: Path, fault: str
) -> None:
    index = _shard_set(tmp_path / "set", shape=(256, 256))
    served = _serve(http, index.parent, "r")
    last = served["model-00003-of-00003.safetensors"]
    target = tmp_path / "out" / "m.safetensors"
    target.parent.mkdir()

    def progress(*_: object) -> None:  # the first tensors are written: the last shard is not open yet
        if fault == "missing":
            last.status = 404
        elif last.replace_after < 0:  # its head as read for the tree, its records from another version
            last.replace_after, last.replacement = last.ranged + 1, last.data[:-8] + b"\0" * 8

    with pytest.raises(ExportError) as failed:
        export_checkpoint(ExportPlan(http.url(f"r/{index.name}"), str(target)), progress)
    expected = {
        "missing": "model-00003-of-00003.safetensors does not exist (the server answered “not found”).",
        "changed": "changed while it was being read",
    }
    assert expected[fault] in failed.value.message and failed.value.message.count(". ") <= 1
    assert list(target.parent.iterdir()) == []


def test_shards_read_at_once_give_the_warnings_of_shards_read_one_by_one(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = _shard_set(tmp_path / "set", shards=12, shape=(4, 4))
    (index.parent / "model-00004-of-00012.safetensors").unlink()
    (index.parent / "model-00009-of-00012.safetensors").unlink()
    (index.parent / "model-00007-of-00012.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"{oops")
    _serve(http, index.parent, "r")
    reports = []
    for target in (http.url(f"r/{index.name}"), str(index)):
        status, out, err = _cli(capsys, "info", "--json", target)
        assert status == 0, err
        reports.append(json.loads(out))
    remote, local = reports
    assert remote["warnings"] == local["warnings"]
    assert remote["warnings"][0].startswith("shard model-00007-of-00012.safetensors cannot be read")
    assert ("2 shard(s) are missing: model-00004-of-00012.safetensors (2 tensors), "
            "model-00009-of-00012.safetensors (2 tensors)") in remote["warnings"]  # fmt: skip
    assert [t["key"] for t in remote["tensors"]] == [t["key"] for t in local["tensors"]]


def test_a_hub_repository_is_its_shard_set(
    hub: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hf://org/repo`` is the checkpoint transformers would load from it, found by name."""
    index = _shard_set(tmp_path / "set", shape=(64, 64))
    for f in index.parent.iterdir():
        hub.add(f"org/model/resolve/main/{f.name}", f.read_bytes(), authorization="Bearer hf_secret_token")
    status, out, err = _cli(capsys, "info", "--json", "hf://org/model")
    assert status == 0, err
    remote = json.loads(out)
    _, local_out, _ = _cli(capsys, "info", "--json", str(index))
    assert [t["key"] for t in remote["tensors"]] == [t["key"] for t in json.loads(local_out)["tensors"]]
    assert remote["remote"]["requests"] == 2 + 2 + 3 * 2  # model.safetensors is not there, the index is
    assert _stats_json(capsys, "hf://org/model", "layers.0.k") == _stats_json(
        capsys, str(index), "layers.0.k"
    )


def test_a_hub_repository_without_weights_names_what_it_looked_for(
    hub: RangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _cli(capsys, "info", "hf://org/empty")
    assert status == 2 and err.count("\n") == 1
    assert "hf://org/empty holds none of the files transformers loads (model.safetensors," in err


def test_the_window_s_export_of_a_remote_set_is_written_to_this_machine(
    qtbot: Any, http: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export dialog of a tab read where it lives offers a file in the home folder, not a URL."""
    from inspector.gui.export_dialog import ExportDialog
    from inspector.remote.static_read import peek_url

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder, _ = _split_folder(tmp_path / "ckpt")
    _serve(http, folder, "runs/ckpt")
    index = _shard_set(tmp_path / "set", shape=(4, 4))
    _serve(http, index.parent, "r")
    for url, name in (
        (http.url("runs/ckpt/"), "ckpt"),
        (http.url(f"r/{index.name}"), "model.safetensors.index"),
    ):
        dialog = ExportDialog(peek_url(url)[0], None)
        qtbot.addWidget(dialog)
        assert dialog.target_edit.text() == str(tmp_path / "home" / f"{name}_export.pth")
        assert dialog.windowTitle() == f"Export “{name if name == 'ckpt' else index.name}”"


def test_a_shard_that_changed_is_read_again_by_the_next_request(http: RangeServer, tmp_path: Path) -> None:
    """The worker keeps sources open between requests: one whose shard changed says so once, and
    the next request reads the set again instead of repeating the sentence until the app restarts."""
    index = _shard_set(tmp_path / "set", shape=(512, 512))
    served = _serve(http, index.parent, "r")
    url = http.url(f"r/{index.name}")
    assert answer(StatsRequest(url, None, "layers.2.q"))["numel"] == 512 * 512
    last = index.parent / "model-00003-of-00003.safetensors"
    save_file({"layers.2.q": torch.zeros(512, 512), "layers.2.k": torch.ones(512, 512)}, last)
    shard = served[last.name]
    shard.replace_after, shard.replacement = shard.ranged, last.read_bytes()  # its ranges: a new version
    with pytest.raises(CheckpointError, match="changed while it was being read"):
        answer(StatsRequest(url, None, "layers.2.k"))
    http.add(f"r/{last.name}", last.read_bytes(), etag='"v2"')  # the new version, whole
    assert answer(StatsRequest(url, None, "layers.2.k"))["mean"] == 1.0


def test_cancel_stops_the_fetch_of_a_large_remote_tensor(
    http: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record larger than the block cache is fetched in bounded requests, and the job's Cancel is
    looked at between them: the rest is never fetched."""
    from inspector.remote import range_buffer

    monkeypatch.setattr(range_buffer, "CACHE_BYTES", 1 * MB)
    monkeypatch.setattr(range_buffer, "LARGE_READ", MB // 4)
    index = _shard_set(tmp_path / "set", shards=1)  # two 4 MiB tensors
    _serve(http, index.parent, "r")
    url = http.url(f"r/{index.name}")
    answer(StatsRequest(url, None, "layers.0.k"))  # the set's tree, and the whole record of k
    whole = http.log.body_bytes
    asked: list[int] = []
    with pytest.raises(StatsCancelled):
        answer(StatsRequest(url, None, "layers.0.q"), cancelled=lambda: asked.append(1) or len(asked) > 3)
    assert http.log.body_bytes - whole <= 4 * MB // 4  # four requests of the record's sixteen
    assert answer(StatsRequest(url, None, "layers.0.q"))["numel"] == math.prod(SHAPE)  # and it reads again
