"""Property-based fuzzing of the static reader on mutated real checkpoints.

Whatever the bytes, ``peek`` returns a ``CheckpointIndex`` or raises ``CheckpointError`` (one
sentence about the file), within a time bound, and never runs anything. ``FUZZ_EXAMPLES`` sets the
number of examples per test (a campaign by hand: ``FUZZ_EXAMPLES=20000 pytest tests/core/test_fuzz.py``).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core.errors import CheckpointError
from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek

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
