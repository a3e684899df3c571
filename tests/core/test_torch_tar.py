"""The torch 0.1 tar format, read statically: the tree with shapes and dtypes, and the globals."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.model import GlobalClass, NodeKind
from inspector.core.peek import peek
from tests.layouts import write_torch_tar


def _state() -> dict[str, object]:
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    return {"model": {"w": w, "row": w[1]}, "step": torch.tensor(7), "lr": 0.1}


def test_torch_reads_the_hand_built_fixture_only_without_weights_only(tmp_path: Path) -> None:
    path = write_torch_tar(tmp_path / "old.pth", _state())
    with pytest.raises(RuntimeError, match=r"legacy \.tar format"):
        torch.load(path, weights_only=True)
    loaded = torch.load(path, weights_only=False)
    assert torch.equal(loaded["model"]["row"], torch.tensor([3.0, 4.0, 5.0]))


def test_tar_checkpoint_reads_as_a_tree_with_shapes_dtypes_and_views(tmp_path: Path) -> None:
    path = write_torch_tar(tmp_path / "old.pth", _state())
    index = peek(path)
    assert index.format == "torch-tar"
    tensors = {n.key: n.tensor for n in index.root.tensors()}
    assert tensors.keys() == {"model.w", "model.row", "step"}
    w, row, step = tensors["model.w"], tensors["model.row"], tensors["step"]
    assert w is not None and row is not None and step is not None
    assert (w.shape, w.dtype, w.stride) == ((2, 3), "float32", (3, 1))
    assert (row.shape, row.storage_offset, row.storage_key) == ((3,), 3, w.storage_key)
    assert (step.shape, step.dtype) == ((), "int64")
    assert index.total_bytes == 6 * 4 + 8  # each storage once
    lr = next(n for n in index.root.walk() if n.key == "lr")
    assert lr.kind is NodeKind.VALUE and lr.value == "0.1"
    names = {g.qualname for g in index.globals}
    assert {"torch.FloatStorage", "torch.LongStorage", "torch.FloatTensor"} <= names
    assert any("tar format" in w for w in index.warnings)


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_payload_in_the_pickle_member_is_listed_not_run(tmp_path: Path) -> None:
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00echo!q\x01\x85q\x02Rq\x03."
    count = pickle.dumps(0, protocol=2)
    path = _tar(
        tmp_path / "evil.pth", {"pickle": payload, "tensors": count, "storages": count + pickle.dumps([])}
    )
    index = peek(path)
    assert index.format == "torch-tar"
    assert [g.qualname for g in index.dangerous_globals] == ["posix.system"]


def test_a_tar_without_a_pickle_member_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = _tar(tmp_path / "notes.tar", {"readme.txt": b"hello"})
    with pytest.raises(CheckpointError, match="tar archive but not a PyTorch checkpoint"):
        peek(path)


def test_a_storage_claiming_more_than_its_member_holds_is_refused(tmp_path: Path) -> None:
    records = pickle.dumps(1, protocol=2) + pickle.dumps((1, "cpu", torch.FloatStorage), protocol=2)
    records += (1 << 40).to_bytes(8, "little") + b"\0" * 16
    count = pickle.dumps(0, protocol=2)
    path = _tar(tmp_path / "big.pth", {"pickle": pickle.dumps({}, protocol=2), "tensors": count,
                                        "storages": records})  # fmt: skip
    with pytest.raises(CheckpointError, match="declares 1,099,511,627,776 elements"):
        peek(path)


def test_globals_in_the_storage_records_are_judged(tmp_path: Path) -> None:
    records = pickle.dumps(1, protocol=2) + b"\x80\x02cbuiltins\neval\nq\x00."
    path = _tar(tmp_path / "odd.pth", {"pickle": pickle.dumps({}, protocol=2), "storages": records})
    with pytest.raises(CheckpointError) as info:
        peek(path)
    assert any(g.verdict is GlobalClass.DANGEROUS for g in getattr(info.value, "globals", []))


def _tar_variety(path: Path, fmt: int) -> Path:
    """Members of every kind tarfile writes: long names (GNU records or PAX), a global PAX header,
    folders, hard and symbolic links, empty and odd-sized files."""
    long_name = "deep/" + "x" * 150 + "/member.bin"
    with tarfile.open(path, "w", format=fmt, pax_headers={"comment": "global"} if fmt == tarfile.PAX_FORMAT
                      else None) as tar:  # fmt: skip
        for name, data in [("pickle", pickle.dumps({"a": 1}, protocol=2)), (long_name, b"z" * 700),
                           ("empty", b""), ("odd", b"1" * 513)]:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("deep")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for kind, name, target in [(tarfile.LNKTYPE, "hard", "odd"), (tarfile.SYMTYPE, "soft", "pickle")]:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = kind, target
            tar.addfile(link)
    return path


@pytest.mark.parametrize(
    "fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT], ids=["gnu", "pax", "ustar"]
)
def test_headers_are_read_as_tarfile_reads_them(tmp_path: Path, fmt: int) -> None:
    """The reader's own header parser lists the same members, names, sizes and data offsets as
    tarfile (run here on a file tarfile itself wrote, never on an untrusted one)."""
    from inspector.core.torch_tar import TarArchive

    if fmt == tarfile.USTAR_FORMAT:  # no long names in plain ustar
        path = tmp_path / "plain.tar"
        with tarfile.open(path, "w", format=fmt) as tar:
            for name in ("pickle", "tensors", "a/b"):
                info = tarfile.TarInfo(name)
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
    else:
        path = _tar_variety(tmp_path / "variety.tar", fmt)
    with tarfile.open(path) as tar:
        expected = [(m.name, m.type, m.size, m.offset_data, m.linkname) for m in tar.getmembers()]
    with path.open("rb") as f:
        archive = TarArchive(f, path.stat().st_size, path.name)
        got = [(m.name, m.type, m.size, m.offset_data, m.linkname) for m in archive.members]
    assert got == expected


def test_links_lead_where_tarfile_leads(tmp_path: Path) -> None:
    from inspector.core.torch_tar import TarArchive

    path = _tar_variety(tmp_path / "variety.tar", tarfile.PAX_FORMAT)
    with tarfile.open(path) as tar:
        hard = tar.extractfile("hard")
        soft = tar.extractfile("soft")
        assert hard is not None and soft is not None
        expected = {"hard": hard.read(), "soft": soft.read()}
    with path.open("rb") as f:
        archive = TarArchive(f, path.stat().st_size, path.name)
        for name, data in expected.items():
            member = archive.last(name)
            assert member is not None
            assert archive.read(archive._target(member), 1 << 20) == data


def test_a_symbolic_link_torch_would_extract_is_refused(tmp_path: Path) -> None:
    """torch extracts ``storages`` to a folder and opens it: a symbolic link there reads any file."""
    count = pickle.dumps(0, protocol=2)
    path = tmp_path / "link.pth"
    with tarfile.open(path, "w") as tar:
        for name, data in (("pickle", pickle.dumps({}, protocol=2)), ("tensors", count)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("storages")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(CheckpointError, match="symbolic link"):
        peek(path)


def test_a_damaged_first_header_is_read_as_torch_reads_it_then(tmp_path: Path) -> None:
    """tarfile refuses a first header whose checksum is wrong, and torch then unpickles the file
    from its first byte: a payload there is found, whatever the tar magic says."""
    path = write_torch_tar(tmp_path / "old.pth", _state())
    data = bytearray(path.read_bytes())
    payload = b"cposix\nsystem\n(S'echo'\ntR."
    data[: len(payload)] = payload  # the first member's name: the checksum no longer holds
    path.write_bytes(bytes(data))
    index = peek(path)
    assert index.format == "pickle"
    assert [g.qualname for g in index.dangerous_globals] == ["posix.system"]
