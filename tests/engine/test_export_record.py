"""The export's record of where it came from: the source's sha256 is computed beside the copy (not in
a pass of its own before it), written into the header the verification reads back, and a source that
cannot be read for it fails the export with a sentence and leaves nothing behind."""

from __future__ import annotations

import errno
import hashlib
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from inspector.core import provenance
from inspector.core.export_plan import ExportPlan
from inspector.core.provenance import PROVENANCE_KEY
from inspector.engine import export_file, safetensors_writer
from inspector.engine.export import ExportError, export_checkpoint


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((4096,), float(i)) for i in range(8)}, source)
    return source


def _record(target: Path) -> dict[str, object]:
    with safe_open(str(target), framework="numpy") as f:
        record: dict[str, object] = json.loads((f.metadata() or {})[PROVENANCE_KEY])
    return record


def test_the_source_is_hashed_while_its_tensors_are_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path)
    copying = threading.Event()
    real_copy, real_hash = safetensors_writer.copy_range, provenance._hash_file

    def copy(*args: int) -> None:
        copying.set()
        real_copy(*args)

    def hash_once_copying(path: str, stop: threading.Event) -> tuple[int, str]:
        if not copying.wait(timeout=30):
            raise OSError(errno.EDEADLK, "the source was hashed before any tensor was copied")
        return real_hash(path, stop)

    monkeypatch.setattr(safetensors_writer, "copy_range", copy)
    monkeypatch.setattr(provenance, "_hash_file", hash_once_copying)
    target = tmp_path / "out.safetensors"
    export_checkpoint(ExportPlan(str(source), str(target), "safetensors"))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert _record(target)["source"] == {"name": "model.pth", "size": source.stat().st_size, "sha256": digest}


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "hf-sharded"])
def test_a_source_unreadable_for_its_record_fails_the_export_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    source = _source(tmp_path)

    def unreadable(path: str, stop: threading.Event) -> tuple[int, str]:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(provenance, "_hash_file", unreadable)
    target = tmp_path / ("out" if fmt == "hf-sharded" else f"out.{fmt}")
    with pytest.raises(ExportError) as caught:
        export_checkpoint(ExportPlan(str(source), str(target), fmt))
    assert caught.value.message == (
        "“model.pth” could not be read to record where the export came from: Input/output error."
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]
    assert not any(t.name == "source sha256" for t in threading.enumerate())


def test_a_cancelled_export_stops_hashing_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _source(tmp_path)
    hashing, released = threading.Event(), threading.Event()
    real_hash = provenance._hash_file

    def slow_hash(path: str, stop: threading.Event) -> tuple[int, str]:
        hashing.set()
        stop.wait(timeout=30)  # a read that goes on until the export lets it stop
        released.set()
        return real_hash(path, stop)

    monkeypatch.setattr(provenance, "_hash_file", slow_hash)
    with pytest.raises(ExportError, match="cancelled"):
        export_checkpoint(
            ExportPlan(str(source), str(tmp_path / "out.safetensors"), "safetensors"),
            cancel=hashing.is_set,
        )
    assert released.is_set() and sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_a_digest_sealed_wrongly_is_caught_by_reading_the_header_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _source(tmp_path)
    real_pwrite = safetensors_writer.os.pwrite

    def wrong_digest(fd: int, data: bytes, offset: int) -> int:
        return real_pwrite(fd, bytes(reversed(data)), offset)  # 64 hex digits, but not the digest

    monkeypatch.setattr(safetensors_writer.os, "pwrite", wrong_digest)
    with pytest.raises(ExportError) as caught:
        export_checkpoint(ExportPlan(str(source), str(tmp_path / "out.safetensors"), "safetensors"))
    assert caught.value.kind == "verify-failed" and "metadata differs" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_the_copy_is_verified_while_the_source_is_still_being_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest is needed only for the record's few bytes: fsync and the comparison of every value
    do not wait for it."""
    source = _source(tmp_path)
    verified = threading.Event()
    real_verify, real_hash = export_file.verify_file, provenance._hash_file

    def verify(*args: object) -> None:
        real_verify(*args)  # type: ignore[arg-type]
        verified.set()

    def hash_once_verified(path: str, stop: threading.Event) -> tuple[int, str]:
        if not verified.wait(timeout=30):
            raise OSError(errno.EDEADLK, "the copy was verified only once the source was hashed")
        return real_hash(path, stop)

    monkeypatch.setattr(export_file, "verify_file", verify)
    monkeypatch.setattr(provenance, "_hash_file", hash_once_verified)
    target = tmp_path / "out.safetensors"
    export_checkpoint(ExportPlan(str(source), str(target), "safetensors"))
    assert _record(target)["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()  # type: ignore[index]


_SHA256 = hashlib.sha256


class _ChangingDigest:
    """sha256 that changes the file it hashes after its first block (grows or truncates it)."""

    def __init__(self, path: Path, change: str) -> None:
        self._digest = _SHA256()
        self._path, self._change, self._blocks = path, change, 0

    def update(self, data: memoryview) -> None:
        self._digest.update(data)
        self._blocks += 1
        if self._blocks == 1:
            with open(self._path, "r+b") as f:
                if self._change == "shrink":
                    f.truncate(len(data))
                else:
                    f.seek(0, 2)
                    f.write(b"\0" * 100)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def test_the_source_is_hashed_whole_across_many_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(bytes(range(256)) * 1000 + b"tail")
    monkeypatch.setattr(provenance, "_MAPPED_BLOCK", 4096)
    monkeypatch.setattr(provenance, "_BLOCK", 4096)
    digests = provenance.SourceDigests(str(source))
    facts = digests.facts
    assert digests.filled(json.dumps(facts)) == json.dumps(
        {**facts, "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    )


@pytest.mark.parametrize("change", ["shrink", "grow"])
def test_a_source_that_changes_size_while_it_is_hashed_fails_with_a_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A file cut short is never read past its new end (that would end the process)."""
    source = tmp_path / "model.bin"
    source.write_bytes(b"\1" * 40000)
    monkeypatch.setattr(provenance, "_MAPPED_BLOCK", 4096)
    monkeypatch.setattr(provenance.hashlib, "sha256", lambda: _ChangingDigest(source, change))
    digests = provenance.SourceDigests(str(source))
    with pytest.raises(provenance.CheckpointError, match="changed size while it was read"):
        digests.wait()
    digests.close()
