"""safetensors headers: every dtype the library writes is read, the others are refused by name, and
headers the reference reader refuses (UTF-16, deep nesting, lone surrogates) are refused with a
sentence, never read differently."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch as st_torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inspector.core.dtypes import DTYPES, LEGACY_DTYPES, SAFETENSORS_DTYPE, STORAGE_DTYPE, safetensors_bits
from inspector.core.errors import CheckpointError
from inspector.core.export_plan import SAFETENSORS_CODES
from inspector.core.peek import peek


def _torch_dtypes() -> list[torch.dtype]:
    return [v for v in vars(torch).values() if isinstance(v, torch.dtype)]


def _writes(dtype: torch.dtype, tmp_path: Path) -> bool:
    """Whether the installed safetensors library writes and reads back this dtype."""
    path = tmp_path / "probe.safetensors"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_file({"x": torch.zeros((2, 4), dtype=dtype)}, str(path))
            return load_file(str(path))["x"].dtype == dtype
    except Exception:
        return False


def test_every_dtype_torch_and_safetensors_share_is_read_statically(tmp_path: Path) -> None:
    shared = [d for d in set(_torch_dtypes()) if _writes(d, tmp_path)]
    names = {str(d).removeprefix("torch.") for d in shared}
    assert {"float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "complex64"} <= names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tensors = {str(d): torch.zeros((3, 4), dtype=d) for d in shared}
    path = tmp_path / "all.safetensors"
    save_file(tensors, str(path))
    loaded = load_file(str(path))
    index = peek(path)
    seen = {n.key: n.tensor for n in index.root.tensors()}
    assert set(seen) == set(loaded)
    for key, tensor in loaded.items():
        info = seen[key]
        assert info is not None
        assert (info.dtype, info.shape) == (str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape)), (
            key
        )
        assert info.nbytes == tensor.numel() * tensor.element_size(), key
    assert index.total_bytes == sum(t.numel() * t.element_size() for t in loaded.values())


def test_the_dtype_table_agrees_with_torch_and_the_safetensors_library() -> None:
    for d in _torch_dtypes():
        name = str(d).removeprefix("torch.")
        assert name in DTYPES, f"{name} is missing from the table"
        assert DTYPES[name].itemsize == d.itemsize, name
    library = {code: str(d).removeprefix("torch.") for code, d in st_torch._TYPES.items() if d is not None}
    assert library.items() <= SAFETENSORS_DTYPE.items()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage classes are deprecated
        for storage, name in STORAGE_DTYPE.items():
            if storage not in ("UntypedStorage", "TypedStorage"):
                assert str(getattr(torch, storage).dtype).removeprefix("torch.") == name, storage
    assert {"float32", "complex128", "bool"} <= LEGACY_DTYPES and "float8_e4m3fn" not in LEGACY_DTYPES
    assert SAFETENSORS_CODES["float8_e4m3fnuz"] == "F8_E4M3FNUZ"  # the exporter writes them too
    assert safetensors_bits("F4") == 4 and safetensors_bits("F6_E3M2") == 6 and safetensors_bits("C64") == 64


def _write(path: Path, header: Any, data: int, raw: bytes | None = None) -> Path:
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + bytes(data))
    return path


def _library_refuses(path: Path) -> bool:
    try:
        with safe_open(str(path), "pt") as f:
            list(f.keys())
    except Exception:
        return True
    return False


@pytest.mark.parametrize("code", ["F6_E2M3", "F6_E3M2"])
def test_a_dtype_torch_lacks_is_refused_by_its_name(tmp_path: Path, code: str) -> None:
    path = _write(
        tmp_path / "f6.safetensors", {"w": {"dtype": code, "shape": [4], "data_offsets": [0, 3]}}, 3
    )
    assert not _library_refuses(path)  # a valid file: only torch has no such dtype
    with pytest.raises(CheckpointError, match=f"{code} \\(6-bit floats\\), which torch has no dtype"):
        peek(path)


def test_f4_counts_four_bit_values(tmp_path: Path) -> None:
    good = _write(
        tmp_path / "f4.safetensors", {"w": {"dtype": "F4", "shape": [2, 6], "data_offsets": [0, 6]}}, 6
    )
    (row,) = peek(good).root.tensors()
    assert row.tensor is not None and (row.tensor.dtype, row.tensor.shape) == ("float4_e2m1fn_x2", (2, 3))
    odd = _write(
        tmp_path / "odd.safetensors", {"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2
    )
    assert _library_refuses(odd)
    with pytest.raises(CheckpointError, match="do not fill whole bytes"):
        peek(odd)


_ENTRY = {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}


def test_a_utf16_header_is_refused_as_the_library_refuses_it(tmp_path: Path) -> None:
    """``json.loads(bytes)`` would guess UTF-16 and read this header; the library requires UTF-8."""
    assert json.loads(json.dumps(_ENTRY).encode("utf-16-le")) == _ENTRY
    path = _write(tmp_path / "u16.safetensors", None, 4, json.dumps(_ENTRY).encode("utf-16-le"))
    assert _library_refuses(path)
    with pytest.raises(CheckpointError, match="safetensors header that is not valid JSON"):
        peek(path)
    raw = b'{"\xe9": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'  # Latin-1, not UTF-8
    latin = _write(tmp_path / "latin.safetensors", None, 4, raw)
    assert _library_refuses(latin)
    with pytest.raises(CheckpointError, match="not valid UTF-8"):
        peek(latin)


def test_a_deeply_nested_header_is_a_sentence(tmp_path: Path) -> None:
    for depth in (200, 100_000):
        raw = (
            b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": '
            + b"[" * depth
            + b"]" * depth
        )
        path = _write(tmp_path / f"deep{depth}.safetensors", None, 4, raw + b"}}")
        assert _library_refuses(path)
        with pytest.raises(CheckpointError, match="nested deeper than 128 levels"):
            peek(path)


def test_an_unpaired_surrogate_escape_is_refused(tmp_path: Path) -> None:
    raw = b'{"w\\ud800": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    path = _write(tmp_path / "sur.safetensors", None, 4, raw)
    assert _library_refuses(path)
    with pytest.raises(CheckpointError, match="unpaired surrogate"):
        peek(path)
    paired = _write(tmp_path / "emoji.safetensors", None, 4, raw.replace(b"\\ud800", b"\\ud83d\\ude00"))
    assert {n.key for n in peek(paired).root.tensors()} == {"w\U0001f600"}


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({**_ENTRY, "__metadata__": {"epoch": 3}}, "not a map of strings"),
        ({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "invalid shape"),
    ],
)
def test_headers_the_library_refuses_are_refused(tmp_path: Path, header: dict[str, Any], match: str) -> None:
    path = _write(tmp_path / "bad.safetensors", header, 4)
    assert _library_refuses(path)
    with pytest.raises(CheckpointError, match=match):
        peek(path)


def test_a_header_whose_length_starts_like_a_pickle_is_read_as_safetensors(tmp_path: Path) -> None:
    """A header of 128 bytes starts the file with 0x80 0x00, as a protocol-0 PROTO opcode does; the
    zero after it is no pickle opcode, so torch.load could never read the file as a pickle."""
    found = []
    for n in range(1, 200):
        path = tmp_path / f"k{n}.safetensors"
        save_file({"k" * n: torch.ones(2)}, str(path))
        if path.read_bytes()[0] == 0x80 and path.read_bytes()[1] <= 5:
            found.append((path, "k" * n))
    assert found  # the library writes such headers
    for path, key in found:
        index = peek(str(path))
        assert index.format == "safetensors"
        assert [n.key for n in index.root.tensors()] == [key]


@pytest.mark.parametrize(
    "where",
    [
        '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": NEST}',  # an entry's own key
        '"a": {"dtype": "F32", "shape": NEST, "data_offsets": [0, 4]}',  # an invalid shape
        '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": NEST',  # not an object
        '"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"m": NEST}',
        '"a": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}, "b": {"x": NEST}',  # after an error
    ],
)
def test_a_deep_header_is_refused_for_its_depth_wherever_the_depth_is(tmp_path: Path, where: str) -> None:
    """The reference reader refuses a deep header before any other check; so does this one, whether
    the nesting is in an entry's own key, a shape, a value that is not an entry or the metadata."""
    raw = ("{" + where.replace("NEST", "[" * 129 + "]" * 129) + "}").encode()
    path = _write(tmp_path / "deep.safetensors", None, 4, raw)
    assert _library_refuses(path)
    with pytest.raises(CheckpointError, match="nested deeper than 128 levels"):
        peek(path)
    shallow = _write(tmp_path / "ok.safetensors", None, 4, raw.replace(b"[" * 129, b"[" * 100).replace(
        b"]" * 129, b"]" * 100))  # fmt: skip
    try:  # read, or refused for what it is, never for its depth
        peek(shallow)
    except CheckpointError as other:
        assert "nested deeper" not in other.message


def test_the_totals_of_a_header_are_those_of_its_tree(tmp_path: Path) -> None:
    """Params, bytes and count, taken from the checked entries, are what counting the tree gives."""
    from inspector.core.model import tensor_totals

    tensors = {
        "a.w": torch.zeros(3, 5, dtype=torch.bfloat16),
        "a.b": torch.zeros(7, dtype=torch.float32),
        "c": torch.zeros(0, 4, dtype=torch.int8),
        "d.e.f.g": torch.zeros(2, 2, 2, dtype=torch.float64),
    }
    path = tmp_path / "mix.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    packed = _write(
        tmp_path / "f4.safetensors", {"w": {"dtype": "F4", "shape": [2, 6], "data_offsets": [0, 6]}}, 6
    )
    for p in (path, packed):
        index = peek(p)
        counted = tensor_totals(index.root.tensors())
        assert (index.total_params, index.total_bytes, index.tensor_count) == (
            counted.params, counted.nbytes, counted.count,
        )  # fmt: skip
    assert peek(path).total_params == 15 + 7 + 0 + 8 and peek(packed).total_bytes == 6


def _shown_read(path: Path) -> dict[str, Any] | str:
    """What the JSON report of the file shows (its rows sorted by key), or the sentence refusing it;
    the file's folder is left out."""
    from inspector.core.report import index_to_json

    try:
        index = peek(path)
    except CheckpointError as exc:
        return exc.message.replace(path.parent.name, "")
    shown = index_to_json(index)
    shown["tensors"].sort(key=lambda row: row["key"])
    del shown["path"]
    return shown


_F32_14 = {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 16]}


@pytest.mark.parametrize(
    ("second", "match"),
    [
        ({"dtype": "F32", "shape": [True, 4]}, "invalid shape"),  # True == 1: never taken for the shape seen
        ({"dtype": "F32", "shape": [1.0, 4]}, "invalid shape"),
        ({"dtype": "F32", "shape": [1, 4.0]}, "invalid shape"),
        (
            {"dtype": "F32", "shape": [1, 4], "data_offsets": [16, 40]},
            "is 24 bytes but its shape and dtype need 16",
        ),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [16, 16.0]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [16]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [16, True]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [-16, 0]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [32, 16]}, "points outside"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [16, 64]}, "points outside"),
        ({"dtype": "F32", "shape": [1, 4], "data_offsets": [8, 24]}, "overlaps the one before it"),
    ],
)
def test_an_entry_of_a_dtype_and_shape_seen_before_is_checked_as_the_first_one(
    tmp_path: Path, second: dict[str, Any], match: str
) -> None:
    """The checks an entry of a dtype and shape already accepted skips are those it passes: an
    entry refused after an accepted one of equal dtype and shape is refused with the sentence it
    gets when it comes first, as the library refuses it."""
    entry = {"data_offsets": [16, 32], **second}
    (tmp_path / "after").mkdir()
    (tmp_path / "first").mkdir()
    after = _write(tmp_path / "after" / "m.safetensors", {"a": _F32_14, "b": entry}, 48)
    first = _write(tmp_path / "first" / "m.safetensors", {"b": entry, "a": _F32_14}, 48)
    assert _library_refuses(after)
    with pytest.raises(CheckpointError, match=match) as refused_after:
        peek(after)
    with pytest.raises(CheckpointError) as refused_first:
        peek(first)
    assert refused_after.value.message == refused_first.value.message


_CODES = {"F32": 32, "F16": 16, "BF16": 16, "I8": 8, "U8": 8, "BOOL": 8, "F8_E4M3": 8, "I64": 64, "F4": 4}


@st.composite
def _entries(draw: st.DrawFn) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Header entries of few dtypes and shapes (repeated, empty, zero-sized, packed), their data
    laid out in order, and how long the data section is."""
    shapes = st.lists(st.integers(0, 3), max_size=3) | st.sampled_from([[2, 4], [4], [1, 2, 2]])
    specs = draw(st.lists(st.tuples(st.sampled_from(sorted(_CODES)), shapes), min_size=1, max_size=12))
    entries, offset = [], 0
    for i, (code, shape) in enumerate(specs):
        n = 1
        for s in shape:
            n *= s
        size = n * _CODES[code] // 8 + draw(st.sampled_from([0] * 12 + [1, -1]))  # a few of the wrong size
        if draw(st.integers(0, 15)) == 0:
            offset += draw(st.sampled_from([-1, 1]))  # a gap or an overlap
        entries.append(
            (f"t.{i % 3}.{i}", {"dtype": code, "shape": shape, "data_offsets": [offset, offset + size]})
        )
        offset += size
    return entries, offset


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(layout=_entries(), order=st.randoms(use_true_random=False))
def test_a_header_reads_the_same_in_any_order_of_its_entries(
    tmp_path: Path, layout: tuple[list[tuple[str, dict[str, Any]]], int], order: Any
) -> None:
    """Entries in the order of their data and the same entries in any other order give the same
    tree, report and totals, or the same refusal, and the library agrees on which files it reads;
    whether an entry's dtype and shape were seen before changes nothing either."""
    entries, data = layout
    shuffled = list(entries)
    order.shuffle(shuffled)
    for folder in ("in_order", "shuffled"):
        (tmp_path / folder).mkdir(exist_ok=True)
    in_order = _write(tmp_path / "in_order" / "m.safetensors", dict(entries), max(data, 0))
    other = _write(tmp_path / "shuffled" / "m.safetensors", dict(shuffled), max(data, 0))
    read = _shown_read(in_order)
    reshuffled = _shown_read(other)
    if isinstance(read, str) and "the data of tensor" not in read and isinstance(reshuffled, str):
        # an entry refused for itself: the first such entry in each order is named
        assert reshuffled.split(" tensor ")[0] == read.split(" tensor ")[0]
    else:
        assert reshuffled == read
    assert _library_refuses(in_order) == isinstance(read, str)
    for key, spec in entries:  # each entry alone, its dtype and shape met for the first time
        alone = {
            "dtype": spec["dtype"],
            "shape": spec["shape"],
            "data_offsets": [0, spec["data_offsets"][1] - spec["data_offsets"][0]],
        }
        size = alone["data_offsets"][1]
        if size < 0 or isinstance(read, str):
            continue
        single = _shown_read(_write(tmp_path / "alone.safetensors", {key: alone}, size))
        assert not isinstance(single, str)
        assert single["tensors"] == [r for r in read["tensors"] if r["key"] == key]
