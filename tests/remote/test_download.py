"""Download and load: a remote file's whole copy in the cache folder, for torch, never a URL."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from inspector.core.errors import CheckpointError
from inspector.remote.cancelling import ReadCancel, ReadCancelled, reading
from inspector.remote.download_cache import (
    CACHE_VARIABLE,
    RemoteVersion,
    cache_contents,
    cache_folder,
    clear_cache,
    download,
)
from inspector.remote.static_read import peek_url
from tests.remote.servers import RangeServer
from tests.remote.test_http import _build, _cli, _serve

TOKEN = "s3cr3t-t0ken"


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_the_cache_folder_is_decided_in_one_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "checkpoint-inspector" / "downloads"
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine"


def test_info_load_download_loads_the_copy_as_a_local_file_loads(
    http: RangeServer, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "zip")
    url = _serve(http, path) + f"?token={TOKEN}"
    status, out, err = _cli(capsys, "info", "--json", "--load", "--download", "--map-location", "cpu", url)
    assert status == 0, err
    remote = json.loads(out)
    _, local_out, _ = _cli(capsys, "info", "--json", "--load", "--map-location", "cpu", str(path))
    local = json.loads(local_out)
    assert remote["tensors"] == local["tensors"]  # the same devices and dtypes
    assert {t["device"] for t in remote["tensors"]} == {"cpu"}
    assert "Downloading" in err and "downloaded into the cache folder" in err
    (copy,) = _files(cache)
    assert (cache / copy).read_bytes() == path.read_bytes()
    assert copy.endswith("-m.pth") and TOKEN not in copy and TOKEN not in err


def test_a_second_download_uses_the_copy_without_fetching_its_body(
    http: RangeServer, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _serve(http, _build(tmp_path, "safetensors"))
    assert _cli(capsys, "info", "--load", "--download", url)[0] == 0
    before = http.log.body_bytes
    assert _cli(capsys, "info", url)[0] == 0
    tree_bytes, before = http.log.body_bytes - before, http.log.body_bytes
    status, _, err = _cli(capsys, "info", "--load", "--download", url)
    assert status == 0
    assert http.log.body_bytes - before == tree_bytes  # the tree's reads only: no byte of the body again
    assert "using the copy downloaded on" in err
    assert len(_files(cache)) == 1


def test_info_load_of_a_url_names_the_option_that_downloads_it(
    http: RangeServer, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _cli(capsys, "info", "--load", _serve(http, _build(tmp_path, "zip")))
    assert status == 2 and "--download" in err and "never handed a URL" in err
    assert http.log.requests == [] and _files(cache) == []
    status, _, err = _cli(capsys, "info", "--download", http.url("m.pth"))
    assert status == 2 and "add --load" in err
    assert "--download" in _cli_help(capsys)


def _cli_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        _cli(capsys, "info", "--help")
    return capsys.readouterr().out


def test_content_that_changes_during_the_download_is_refused_and_nothing_is_left(
    http: RangeServer, tmp_path: Path, cache: Path
) -> None:
    path = _build(tmp_path, "zip")
    url = _serve(http, path)
    index, _ = peek_url(url)
    served = http.files["/m.pth"]
    served.replacement = path.read_bytes()[::-1]
    served.replace_after = served.ranged + 1  # the download's second chunk is another version
    with pytest.raises(CheckpointError, match="changed while it was being read"):
        download(url, RemoteVersion(index.file_size, index.remote_version))
    assert _files(cache) == []


def test_a_file_that_is_not_the_version_its_tree_was_read_from_is_refused(
    http: RangeServer, tmp_path: Path, cache: Path
) -> None:
    url = _serve(http, _build(tmp_path, "zip"))
    size = os.path.getsize(tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="not the one its tree was read from"):
        download(url, RemoteVersion(size, '"v0"'))
    assert http.log.body_bytes == 0 and _files(cache) == []


def test_a_cancelled_download_leaves_nothing(http: RangeServer, tmp_path: Path, cache: Path) -> None:
    url = _serve(http, _build(tmp_path, "zip"))
    cancel = ReadCancel()

    def progress(done: int, total: int) -> None:
        if done:
            cancel.cancel()  # after the first chunk

    with reading(cancel), pytest.raises(ReadCancelled, match="cancelled; nothing was kept"):
        download(url, None, progress)
    assert _files(cache) == []


def test_a_file_larger_than_the_free_space_is_refused(
    http: RangeServer, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _serve(http, _build(tmp_path, "zip"))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage._replace(free=1 << 20))
    with pytest.raises(CheckpointError, match=r"has only 1\.0 MiB free; it was not downloaded"):
        download(url)
    assert http.log.body_bytes == 0 and _files(cache) == []


def test_clear_empties_the_cache_and_keeps_other_files(
    http: RangeServer, tmp_path: Path, cache: Path
) -> None:
    url = _serve(http, _build(tmp_path, "zip"))
    copy = download(url)
    assert not copy.reused and cache_contents().count == 1
    assert cache_contents().size == os.path.getsize(tmp_path / "m.pth")
    (cache / "notes.txt").write_text("mine")
    assert clear_cache() == 1
    assert _files(cache) == ["notes.txt"] and cache_contents().count == 0


def test_a_set_of_several_files_is_a_sentence(http: RangeServer, cache: Path) -> None:
    with pytest.raises(CheckpointError, match="layout of several files"):
        download(http.url("model.safetensors.index.json"))
    assert http.log.requests == []


def test_an_s3_file_downloads_from_the_version_its_tree_was_read_from(
    s3: object, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "safetensors")
    s3.put_object(Bucket="ckpt", Key="run/m.safetensors", Body=path.read_bytes())  # type: ignore[attr-defined]
    status, out, err = _cli(capsys, "info", "--json", "--load", "--download", "s3://ckpt/run/m.safetensors")
    assert status == 0, err
    assert {t["device"] for t in json.loads(out)["tensors"]} == {"cpu"}
    (copy,) = _files(cache)
    assert (cache / copy).read_bytes() == path.read_bytes()
