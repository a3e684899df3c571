"""Checkpoints read over HTTP from a loopback server: the same tree, verdict and values as the local
file, from a few ranged reads, and one sentence for each way a server or URL can fail."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inspector.cli import main
from tests.remote.servers import RangeServer, file_facts

MB = 1 << 20


def _state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(512, 1024, generator=gen) for i in range(8)}  # 16 MiB


def _build(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / {"zip": "m.pth", "legacy": "m.bin", "safetensors": "m.safetensors"}[fmt]
    if fmt == "safetensors":
        save_file(_state(), path)
    else:
        torch.save(_state(), path, _use_new_zipfile_serialization=fmt == "zip")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _serve(http: RangeServer, path: Path, **faults: object) -> str:
    http.add(path.name, path.read_bytes(), **faults)
    return http.url(path.name)


@pytest.mark.parametrize(("fmt", "most_requests"), [("zip", 4), ("legacy", 12), ("safetensors", 2)])
def test_remote_tree_is_the_local_tree_from_a_few_ranged_reads(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, most_requests: int
) -> None:
    path = _build(tmp_path, fmt)
    url = _serve(http, path)
    status, out, _ = _cli(capsys, "info", "--json", url)
    assert status == 0
    remote = json.loads(out)
    _, local_out, _ = _cli(capsys, "info", "--json", str(path))
    local = json.loads(local_out)
    cost = remote.pop("remote")
    assert remote["path"] != local["path"]
    file_facts(remote, local)
    assert remote == local
    assert cost["requests"] == len(http.log.requests) <= most_requests
    assert cost["bytes_fetched"] == http.log.body_bytes < MB < path.stat().st_size
    assert cost["file_size"] == path.stat().st_size


def test_the_text_report_says_what_the_read_cost(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _serve(http, _build(tmp_path, "zip"))
    status, out, _ = _cli(capsys, "info", url)
    assert status == 0
    assert "Remote: read " in out and " of 16.0 MiB in 3 requests." in out


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo never",))


def test_a_remote_file_is_judged_exactly_like_the_local_one(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"w": 1, "x": _Payload()}, protocol=4))
    status, out, _ = _cli(capsys, "scan", "--json", _serve(http, path))
    local_status, local_out, _ = _cli(capsys, "scan", "--json", str(path))
    remote, local = json.loads(out), json.loads(local_out)
    file_facts(remote, local)
    assert status == local_status == 1
    assert remote == local and remote["verdict"] == "dangerous"


def test_stats_of_one_remote_tensor_read_only_its_record(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "zip")
    url = _serve(http, path)
    status, out, _ = _cli(capsys, "stats", "--json", url, "layer3.weight")
    assert status == 0
    _, local_out, _ = _cli(capsys, "stats", "--json", str(path), "layer3.weight")
    remote, local = json.loads(out)["tensors"][0], json.loads(local_out)["tensors"][0]
    remote["stats"].pop("seconds"), local["stats"].pop("seconds")
    assert remote == local and remote["stats"]["numel"] == 512 * 1024
    record = 512 * 1024 * 4
    # two tree reads (names checked, then the source opened) and that one record
    assert record < http.log.body_bytes < record + 2 * MB < path.stat().st_size


def _fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    status, out, err = _cli(capsys, *args)
    assert status == 2, (out, err)
    assert "Traceback" not in err and err.count("\n") == 1
    return err


def test_a_missing_file_is_a_sentence(http: RangeServer, capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(capsys, "info", http.url("nothing.pth"))
    assert "nothing.pth does not exist" in err


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_a_sentence_that_never_shows_them(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    url = _serve(http, _build(tmp_path, "safetensors"), status=status)
    with_secret = url.replace("http://", "http://user:s3cr3t@") + "?token=t0ken"
    err = _fails(capsys, "info", with_secret)
    assert "credentials missing or wrong" in err
    assert "s3cr3t" not in err and "t0ken" not in err


def test_a_server_that_ignores_range_is_stopped_after_a_bounded_number_of_bytes(
    http: RangeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    big = b"PK\x03\x04" + bytes(64 * MB)
    http.add("whole.pth", big, ignore_range=True)
    err = _fails(capsys, "info", http.url("whole.pth"))
    assert "ignores Range requests" in err
    assert http.log.body_bytes < 16 * MB


def test_a_response_cut_short_is_retried(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "safetensors")
    status, out, _ = _cli(capsys, "info", "--json", _serve(http, path, truncate_times=1))
    assert status == 0 and len(json.loads(out)["tensors"]) == 8


def test_responses_cut_short_again_and_again_are_a_sentence(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _serve(http, _build(tmp_path, "safetensors"), truncate_times=100)
    err = _fails(capsys, "info", url)
    assert "broke off in the middle of a read 3 times" in err


def test_a_silent_server_times_out(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKPOINT_INSPECTOR_REMOTE_TIMEOUT", "0.5")
    url = _serve(http, _build(tmp_path, "safetensors"), stall=True)
    err = _fails(capsys, "info", url)
    assert "did not answer within 0.5 seconds" in err


def test_content_that_changes_between_reads_is_never_mixed(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "zip")
    other = tmp_path / "other.pth"
    torch.save({"other": torch.zeros(3)}, other)
    replacement = other.read_bytes().ljust(path.stat().st_size, b"\0")  # the same size, another ETag
    url = _serve(http, path, replace_after=1, replacement=replacement)
    err = _fails(capsys, "info", url)
    assert "changed while it was being read" in err and "never mixed" in err


def test_loading_a_url_is_refused_with_what_to_do(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(capsys, "info", "--load", _serve(http, _build(tmp_path, "zip")))
    assert "needs the whole file" in err and "never handed a URL" in err
    assert http.log.requests == []


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        (
            "file:///tmp/model.pth",
            "is a file:// URL; open the local file by its path instead (/tmp/model.pth)",
        ),
        ("https:///model.pth", "is not a valid URL"),
        ("http://127.0.0.1:notaport/x.pth", "is not a valid URL"),
        ("hf://org", "is not a valid Hub URL"),
        ("gs://bucket/model.pth", "needs gcsfs: pip install gcsfs"),
    ],
)
def test_urls_that_cannot_be_read_are_a_sentence(
    capsys: pytest.CaptureFixture[str], url: str, sentence: str
) -> None:
    assert sentence in _fails(capsys, "info", url)


@pytest.mark.parametrize("fmt", ["zip", "safetensors"])
def test_export_from_a_url_writes_the_verified_local_copy(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    path = _build(tmp_path, fmt)
    out = tmp_path / "out" / "copy.safetensors"
    out.parent.mkdir()
    url = _serve(http, path)
    status, _, err = _cli(capsys, "export", url + "?token=s3cr3t", "-o", str(out))
    assert status == 0, err
    from safetensors.torch import load_file

    copy = load_file(out)
    assert copy.keys() == _state().keys()
    assert all(torch.equal(copy[k], v) for k, v in _state().items())
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.safetensors"]
    status, out_json, _ = _cli(capsys, "info", "--json", str(out))
    source = json.loads(out_json)["provenance"]["source"]  # where it came from, never its credentials
    assert source == {"name": path.name, "url": url, "size": path.stat().st_size}
    assert "s3cr3t" not in out.read_bytes().decode("latin-1")


def test_an_export_whose_source_breaks_off_leaves_nothing_behind(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _build(tmp_path, "safetensors")
    served = http.add(path.name, path.read_bytes())
    url = http.url(path.name)
    out = tmp_path / "out" / "copy.safetensors"
    out.parent.mkdir()
    served.truncate_times = 0
    served.replace_after, served.replacement = 4, path.read_bytes()[::-1]  # the file changes mid-export
    err = _fails(capsys, "export", url, "-o", str(out))
    assert "changed while it was being read" in err
    assert list(out.parent.iterdir()) == []


def test_a_redirect_on_the_same_host_is_followed(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(http, _build(tmp_path, "safetensors"))
    http.add("old/m.safetensors", b"", redirect="/m.safetensors")
    status, out, _ = _cli(capsys, "info", "--json", http.url("old/m.safetensors"))
    assert status == 0 and len(json.loads(out)["tensors"]) == 8


def test_a_redirect_to_another_host_over_plain_http_is_not_followed(
    http: RangeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _serve(http, _build(tmp_path, "safetensors"))
    http.add("moved.safetensors", b"", redirect=url.replace("127.0.0.1", "localhost"))
    err = _fails(capsys, "info", http.url("moved.safetensors"))
    assert "redirects to another host over plain HTTP" in err


def test_a_missing_file_system_package_names_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if the remote extra were not installed
    err = _fails(capsys, "info", "https://example.org/m.pth")
    assert "needs fsspec: pip install 'checkpoint-inspector[remote]'" in err


def test_the_python_api_opens_a_url_as_the_local_file(http: RangeServer, tmp_path: Path) -> None:
    import inspector

    path = _build(tmp_path, "zip")
    remote, local = inspector.open(_serve(http, path)), inspector.open(path)
    assert remote.tensors == local.tensors and remote.verdict == local.verdict == "safe"
    key = local.tensors[0].key
    assert (remote.values(key, (slice(0, 2),)) == local.values(key, (slice(0, 2),))).all()
    assert remote.stats(key)["mean"] == local.stats(key)["mean"]
