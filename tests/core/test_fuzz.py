"""Property-based fuzzing of the static reader on mutated real checkpoints.

Whatever the bytes, ``peek`` returns a ``CheckpointIndex`` or raises ``CheckpointError`` (one
sentence about the file), within a time bound, and never runs anything. ``FUZZ_EXAMPLES`` sets the
number of examples per test (a campaign by hand: ``FUZZ_EXAMPLES=20000 pytest tests/core/test_fuzz.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core.errors import CheckpointError
from inspector.core.model import CheckpointIndex, GlobalClass
from inspector.core.peek import peek
from tests.hostile import (
    empty_tar_records,
    end_record,
    local_records,
    tar_header,
    tar_member,
    zip64_end_record,
    zip64_locator,
    zip_entries,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,  # ms per example: every limit of the reader must hold well within this
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=EXAMPLES <= 150,  # CI runs the same examples every time; a campaign explores
)


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    pickle_span: tuple[int, int]  # where the main pickle lies inside the file


def _zip_seed(obj: object) -> Seed:
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data.pkl"))
    # the local extra field may differ from the central one: find the pickle's first bytes
    start = data.index(b"\x80\x02", info.header_offset + 30)
    return Seed("zip", data, (start, start + info.file_size))


def _legacy_seed(obj: object) -> Seed:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    end = data.rindex(b"\x80\x02]")  # the storage-keys pickle follows the object pickle
    return Seed("legacy", data, (0, end))


def _objects() -> dict[str, object]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(2, 3)).sum().backward()
    opt.step()
    shared = torch.arange(6.0)
    return {
        "state": net.state_dict(),
        "training": {
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": 3,
            "views": [shared, shared[2:], shared.view(2, 3)],
            "name": "run-1",
        },
    }


SEEDS: list[Seed] = []
for _obj in _objects().values():
    SEEDS.append(_zip_seed(_obj))
    SEEDS.append(_legacy_seed(_obj))
_PLAIN = pickle.dumps({"a": [1, 2.5, "x", (None, True)], "b": b"raw"}, protocol=2)
SEEDS.append(Seed("pickle", _PLAIN, (0, len(_PLAIN))))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "mutant.pth"


def _check(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        result = peek(path)
    except CheckpointError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(result, CheckpointIndex)


@st.composite
def _mutant(draw: st.DrawFn, inside_pickle: bool) -> bytes:
    seed = draw(st.sampled_from(SEEDS))
    data = bytearray(seed.data)
    lo, hi = seed.pickle_span if inside_pickle else (0, len(data))
    for _ in range(draw(st.integers(1, 4))):
        if hi <= lo:
            break
        pos = draw(st.integers(lo, hi - 1))
        kind = draw(st.sampled_from(["flip", "byte", "insert", "delete", "splice", "truncate", "dup"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "splice":  # bytes of another real checkpoint (a plausible opcode stream)
            other = draw(st.sampled_from(SEEDS)).data
            a = draw(st.integers(0, len(other) - 1))
            data[pos : pos + draw(st.integers(0, 32))] = other[a : a + draw(st.integers(1, 64))]
        elif kind == "dup":  # repeat a stretch (memo indices and marks get out of step)
            n = draw(st.integers(1, 64))
            data[pos:pos] = data[pos : pos + n] * draw(st.integers(1, 8))
        else:
            del data[pos:]
        hi = min(hi, len(data))
    return bytes(data)


@FUZZ
@given(data=_mutant(inside_pickle=True))
def test_mutated_pickles_give_an_index_or_a_checkpoint_error(target: Path, data: bytes) -> None:
    _check(target, data)


@FUZZ
@given(data=_mutant(inside_pickle=False))
def test_mutations_anywhere_give_an_index_or_a_checkpoint_error(target: Path, data: bytes) -> None:
    _check(target, data)


@FUZZ
@given(
    data=st.binary(max_size=512), prefix=st.sampled_from([b"", b"\x80\x02", b"\x80\x04\x95", b"PK\x03\x04"])
)
def test_random_bytes_give_an_index_or_a_checkpoint_error(target: Path, data: bytes, prefix: bytes) -> None:
    _check(target, prefix + data)


def test_seeds_are_read_cleanly(target: Path) -> None:
    """The unmutated seeds are real checkpoints the reader understands (the fuzzing starts valid)."""
    for seed in SEEDS:
        target.write_bytes(seed.data)
        index = peek(target)
        assert index.format in ("torch-zip", "torch-legacy", "pickle")
        assert seed.name == "pickle" or index.tensor_count > 0


# --- archive structure: directories, ZIP64 records, end records, tar headers -------------------------
#
# Every example is built from parts (members, directory records, end records), some of which name a
# payload. Whatever the structure, the static read must end in an index or a sentence, in time, and
# must never call the file safe when a reader could run the payload: torch's own zip reader (asked
# here for the data.pkl it would unpickle), Python's zipfile (what scanners read), or tarfile.

_PAYLOAD = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
_GOOD_PKL = next(b for n, b in zip_entries(SEEDS[0].data) if n.endswith(b"/data.pkl"))
_BODIES = {"good": _GOOD_PKL, "evil": _PAYLOAD, "version": b"3\n", "raw": b"\0" * 16}
_ZIP_NAMES = [b"archive/data.pkl", b"archive/DATA.PKL", b"archive/Data.pkl", b"archive/version",
              b"archive/data/0", b"archive/x.pkl", b"other/data.pkl", b"archive/data.pkl\0x",
              b"archive/constants.pkl", b"data.pkl"]  # fmt: skip


def _safe(path: Path) -> bool:
    """Whether the static read calls the file safe (an unreadable file never is)."""
    try:
        index = peek(path)
    except CheckpointError as exc:
        assert exc.message and "\n" not in exc.message
        return False
    return not index.differentials and all(g.verdict is GlobalClass.ALLOWED for g in index.globals)


def _torch_runs_payload(path: Path) -> bool:
    import torch

    try:
        return b"system" in bytes(torch._C.PyTorchFileReader(str(path)).get_record("data.pkl"))
    except Exception:  # torch refuses the file: it runs nothing
        return False


def _zipfile_reads_payload(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(b"system" in z.read(n) for n in z.namelist() if n.lower().endswith(".pkl"))
    except Exception:  # zipfile refuses the file (or one member): scanners built on it read nothing
        return False


_U32 = 0xFFFFFFFF


def _patch(record: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(record)
    struct.pack_into(fmt, out, offset, value & ((1 << (8 * struct.calcsize(fmt))) - 1))
    return bytes(out)


@st.composite
def _zip_structure(draw: st.DrawFn) -> bytes:
    members = draw(st.lists(st.tuples(st.sampled_from(_ZIP_NAMES), st.sampled_from(sorted(_BODIES))),
                            min_size=1, max_size=6))  # fmt: skip
    members.insert(0, (b"archive/version", "version"))
    local, central = local_records([(name, _BODIES[body]) for name, body in members])
    records = [central[i] for i in draw(st.permutations(range(len(central))))]
    for _ in range(draw(st.integers(0, 2))):  # a record twice, or pointing elsewhere, or lying about its size
        i = draw(st.integers(0, len(records) - 1))
        kind = draw(st.sampled_from(["dup", "offset", "size", "name_len", "zip64_field"]))
        if kind == "dup":
            records.append(records[i])
        elif kind == "zip64_field":  # sizes and offset saturated, the real ones in a ZIP64 field
            record = records[i]
            (csize, usize), nlen = (
                struct.unpack_from("<II", record, 20),
                struct.unpack_from("<H", record, 28)[0],
            )
            (hoff,) = struct.unpack_from("<I", record, 42)
            values = [usize, csize, hoff + draw(st.integers(-32, 32))][: draw(st.integers(0, 3))]
            extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *(max(v, 0) for v in values))
            head = _patch(
                _patch(_patch(record[:46], 20, "<Q", (1 << 64) - 1), 42, "<I", _U32), 30, "<H", len(extra)
            )
            records[i] = head + record[46 : 46 + nlen] + extra
        elif kind == "offset":
            records[i] = _patch(records[i], 42, "<I", draw(st.integers(0, len(local) + 64)))
        elif kind == "size":
            size = draw(st.integers(0, 4096))
            records[i] = _patch(_patch(records[i], 20, "<I", size), 24, "<I", size)
        else:
            records[i] = _patch(records[i], 28, "<H", draw(st.integers(0, 80)))
    cd = b"".join(records)
    count = max(0, len(records) + draw(st.integers(-1, 1)))
    cd_at = len(local)
    ending = draw(st.sampled_from(["classic", "zip64", "zip64_lying", "second_directory", "comment_end"]))
    if ending == "classic":
        return local + cd + end_record(count, len(cd), cd_at)
    if ending in ("zip64", "zip64_lying"):
        z64_at = cd_at + len(cd)
        lie = draw(st.integers(-64, 64)) if ending == "zip64_lying" else 0
        tail = zip64_end_record(count, len(cd), cd_at) + zip64_locator(max(0, z64_at + lie))
        return local + cd + tail + end_record(min(count, 0xFFFF), len(cd), cd_at)
    other = b"".join(records[::-1][: max(1, len(records) - 1)])
    other_at = cd_at + len(cd)
    if ending == "second_directory":
        return (local + cd + other + end_record(len(records) - 1 or 1, len(other), other_at)
                + end_record(count, len(cd), cd_at))  # fmt: skip
    comment = other + end_record(len(records) - 1 or 1, len(other), other_at + 22)
    return local + cd + end_record(count, len(cd), cd_at, comment)


@FUZZ
@given(data=_zip_structure())
def test_zip_structures_never_hide_a_payload_a_reader_would_run(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    safe = _safe(target)
    if _torch_runs_payload(target):
        assert not safe, "torch's reader takes a payload the static read calls safe"
    if _zipfile_reads_payload(target):
        assert not safe, "zipfile reads a payload the static read calls safe"


_TAR_NAMES = [b"pickle", b"storages", b"tensors", b"sys_info", b"x.bin", b"./pickle", b"pickle/"]


@st.composite
def _tar_structure(draw: st.DrawFn) -> bytes:
    tensors, storages = empty_tar_records()
    bodies = {
        "evil": _PAYLOAD,
        "empty": pickle.dumps({}, protocol=2),
        "tensors": tensors,
        "storages": storages,
    }
    blocks = []
    for _ in range(draw(st.integers(1, 7))):
        name = draw(st.sampled_from(_TAR_NAMES))
        kind = draw(st.sampled_from([b"0", b"0", b"0", b"1", b"2", b"5", b"x", b"g", b"L"]))
        if kind in (b"1", b"2"):
            blocks.append(tar_header(name, 0, kind, draw(st.sampled_from(_TAR_NAMES))))
        elif kind in (b"x", b"g"):
            record = b"path=" + draw(st.sampled_from(_TAR_NAMES)) + b"\n"
            blocks.append(tar_member(b"pax", b"%d %s" % (len(record) + 3, record), kind))
        elif kind == b"L":
            blocks.append(tar_member(b"././@LongLink", draw(st.sampled_from(_TAR_NAMES)) + b"\0", kind))
        else:
            blocks.append(tar_member(name, bodies[draw(st.sampled_from(sorted(bodies)))], kind))
    data = bytearray(b"".join(blocks) + b"\0" * 1024)
    if draw(st.booleans()):  # a damaged byte somewhere (a header's checksum, a size)
        data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def _tarfile_reads_payload(path: Path) -> bool:
    import tarfile

    try:
        with tarfile.open(path, "r:") as tar:
            for name in ("pickle", "storages", "tensors"):
                with contextlib.suppress(KeyError):
                    f = tar.extractfile(name)
                    if f is not None and b"system" in f.read():
                        return True
    except Exception:  # tarfile refuses the file: torch reads it as a pickle stream instead
        return b"system" in path.read_bytes()[:512]
    return False


@FUZZ
@given(data=_tar_structure())
def test_tar_structures_never_hide_a_payload_a_reader_would_run(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    safe = _safe(target)
    if _tarfile_reads_payload(target):
        assert not safe, "tarfile reads a payload the static read calls safe"
