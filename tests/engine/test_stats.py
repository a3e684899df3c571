"""Chunked statistics and histograms agree with NumPy on random tensors of every dtype."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.engine.stats import (
    MAX_DISTINCT,
    StatsCancelled,
    blocks,
    histogram_edges,
    tensor_stats,
)

FLOATS = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
    torch.float8_e4m3fnuz,
    torch.float8_e5m2fnuz,
    torch.float8_e8m0fnu,
)
COMPLEX = (torch.complex32, torch.complex64, torch.complex128)
INTS = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint16,
    torch.uint32,
    torch.uint64,
)
RAW = (torch.float4_e2m1fn_x2, torch.bits8, torch.bits16)
SEEDS = (0, 1, 2)
CHUNK = 1000  # small, so every tensor spans several blocks and the merging is exercised


def _random(dtype: torch.dtype, seed: int, shape: tuple[int, ...] = (61, 83)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    if dtype.is_floating_point or dtype.is_complex:
        wide = torch.complex128 if dtype.is_complex else torch.float64
        x = torch.randn(n, generator=gen, dtype=wide) * 3
        x[torch.randint(0, n, (n // 20,), generator=gen)] = 0
        x[torch.randint(0, n, (7,), generator=gen)] = math.nan
        x[torch.randint(0, n, (5,), generator=gen)] = math.inf
        x[torch.randint(0, n, (3,), generator=gen)] = -math.inf
        if dtype.is_complex:
            x[torch.randint(0, n, (4,), generator=gen)] = complex(1.0, math.inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex32 is "experimental"
            return x.to(dtype).view(shape)
    if dtype == torch.bool:
        return (torch.rand(n, generator=gen) < 0.3).view(shape)
    if dtype in (torch.uint64, torch.uint32, torch.uint16) or dtype.itemsize == 8:
        raw = torch.randint(0, 256, (n * dtype.itemsize,), dtype=torch.uint8, generator=gen)
        return raw.view(dtype).view(shape)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max + 1, (n,), dtype=torch.int64, generator=gen).to(dtype).view(shape)


def _reference(t: torch.Tensor) -> dict[str, Any]:
    """The same statistics by NumPy on the whole tensor (float8/bf16 upcast exactly first)."""
    out: dict[str, Any] = {}
    if t.dtype.is_complex:
        z = t.to(torch.complex128).numpy().ravel()
        out["nan"] = int(np.isnan(z).sum())
        out["posinf"] = int((np.isinf(z) & ~np.isnan(z)).sum())
        out["neginf"] = 0
        f = np.abs(z[np.isfinite(z)])
    elif t.dtype.is_floating_point:
        x = t.to(torch.float64).numpy().ravel()
        out["nan"] = int(np.isnan(x).sum())
        out["posinf"] = int((x == np.inf).sum())
        out["neginf"] = int((x == -np.inf).sum())
        f = x[np.isfinite(x)]
    else:
        ints = (t.view(torch.uint8) if t.dtype == torch.bool else t).contiguous().numpy().ravel()
        out.update(nan=0, posinf=0, neginf=0)
        out["min"], out["max"] = int(ints.min()), int(ints.max())
        uniq, cnt = np.unique(ints, return_counts=True)
        pairs = list(zip(uniq.tolist(), cnt.tolist(), strict=True))
        out["value_counts"] = pairs if len(uniq) <= MAX_DISTINCT else None
        f = ints.astype(np.float64)
    out["finite"] = len(f)
    out["zeros"] = int((f == 0).sum())
    if len(f):
        if "min" not in out:
            out["min"], out["max"] = float(f.min()), float(f.max())
        out["mean"] = float(f.mean())
        out["std"] = float(f.std(ddof=1)) if len(f) > 1 else math.nan  # torch.std's default
        out["abs_mean"] = float(np.abs(f).mean())
        out["l2_norm"] = float(np.linalg.norm(f))
    out["finite_values"] = f
    return out


def _check(t: torch.Tensor, bins: int = 64) -> None:
    got = tensor_stats(t, bins=bins, chunk=CHUNK)
    ref = _reference(t)
    assert got.numel == t.numel()
    for name in ("finite", "zeros", "nan", "posinf", "neginf", "min", "max"):
        assert getattr(got, name) == ref[name], name
    for name in ("mean", "std", "abs_mean", "l2_norm"):
        assert getattr(got, name) == pytest.approx(ref[name], rel=1e-9, abs=1e-12, nan_ok=True), name
    if "value_counts" in ref:
        assert got.value_counts == ref["value_counts"]
    assert got.histogram is not None
    edges = got.histogram.edges
    bins = len(got.histogram.counts)
    counts, np_edges = np.histogram(ref["finite_values"], bins=bins, range=(edges[0], edges[-1]))
    assert got.histogram.counts == counts.tolist()
    assert edges == np_edges.tolist()
    assert sum(got.histogram.counts) == ref["finite"]
    assert got.seconds > 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", FLOATS + COMPLEX, ids=str)
def test_floats_with_nan_and_inf_agree_with_numpy(dtype: torch.dtype, seed: int) -> None:
    t = _random(dtype, seed)
    stats = tensor_stats(t, bins=None, chunk=CHUNK)
    if dtype not in (torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz, torch.float8_e8m0fnu):
        assert stats.posinf > 0  # the injected infinities survived the conversion
    assert stats.nan > 0
    assert stats.has_nan_or_inf
    _check(t)
    _check(t.t())  # a transposed view walks in memory order, with the same results


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", (*INTS, torch.bool), ids=str)
def test_integers_and_bool_agree_with_numpy(dtype: torch.dtype, seed: int) -> None:
    t = _random(dtype, seed)
    _check(t)
    _check(t[3:, ::2])


@pytest.mark.parametrize("dtype", INTS, ids=str)
def test_few_distinct_values_are_counted(dtype: torch.dtype) -> None:
    t = torch.tensor([3, 1, 3, 0, 3, 1] * 500).to(dtype)
    stats = tensor_stats(t, chunk=CHUNK)
    assert stats.value_counts == [(0, 500), (1, 1000), (3, 1500)]
    assert stats.histogram is not None
    assert stats.histogram.counts == [500, 1000, 0, 1500]  # one bin per value
    _check(t)


def test_bool_counts_true_and_false() -> None:
    t = torch.tensor([True, False, True, True])
    stats = tensor_stats(t)
    assert (stats.true, stats.false) == (3, 1)
    assert stats.mean == 0.75
    assert stats.to_json()["true"] == 3


def test_uint64_beyond_int64_is_exact() -> None:
    big = torch.tensor([2**64 - 1, 2**63, 5], dtype=torch.uint64)
    stats = tensor_stats(big)
    assert (stats.min, stats.max) == (5, 2**64 - 1)


@pytest.mark.parametrize("dtype", RAW, ids=str)
def test_packed_dtypes_are_described_as_raw_bytes(dtype: torch.dtype) -> None:
    raw = torch.randint(0, 256, (4000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    t = raw.view(dtype)
    stats = tensor_stats(t, chunk=CHUNK)
    as_int = raw.view(torch.uint16) if dtype.itemsize == 2 else raw
    assert stats.computed_on == str(as_int.dtype).removeprefix("torch.")
    assert (stats.min, stats.max) == (int(as_int.numpy().min()), int(as_int.numpy().max()))
    _check(as_int)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=300),
    st.integers(min_value=1, max_value=50),
)
def test_any_float_list(values: list[float], chunk: int) -> None:
    t = torch.tensor(values, dtype=torch.float32)
    got = tensor_stats(t, bins=16, chunk=chunk)
    ref = _reference(t)
    for name in ("finite", "zeros", "nan", "posinf", "neginf", "min", "max"):
        assert getattr(got, name) == ref.get(name), name
    if ref["finite"]:
        assert got.l2_norm == pytest.approx(ref["l2_norm"], rel=1e-9)
        assert got.mean == pytest.approx(ref["mean"], rel=1e-9, abs=1e-300)
        assert got.histogram is not None
        assert sum(got.histogram.counts) == ref["finite"]
    else:
        assert got.histogram is None and got.mean is None


def test_empty_and_scalar() -> None:
    empty = tensor_stats(torch.zeros(0, 5))
    assert (empty.numel, empty.finite, empty.mean, empty.histogram) == (0, 0, None, None)
    scalar = tensor_stats(torch.tensor(-2.5))
    assert (scalar.min, scalar.max, scalar.l2_norm) == (-2.5, -2.5, 2.5)
    assert math.isnan(scalar.std)  # one value: torch.std (correction=1) is NaN too
    assert scalar.to_json()["std"] == "nan"
    assert scalar.histogram is not None and scalar.histogram.edges[0] == -3.0


def test_json_is_strict() -> None:
    stats = tensor_stats(torch.tensor([math.nan, math.inf]))
    text = json.dumps(stats.to_json(), allow_nan=False)
    assert json.loads(text)["nan"] == 1


def test_blocks_cover_every_element_once_and_stay_bounded() -> None:
    shape = (3, 7, 5000)
    seen = torch.zeros(shape, dtype=torch.int64)
    for index in blocks(shape, 1000):
        part = seen[index]
        assert part.numel() <= 1000
        part += 1
    assert bool((seen == 1).all())


def test_cancel_between_blocks() -> None:
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(StatsCancelled):
        tensor_stats(torch.zeros(10_000), chunk=1000, cancelled=cancelled)
    assert len(calls) == 3


def test_histogram_edges_for_constant_tensor() -> None:
    stats = tensor_stats(torch.full((10,), 4.0), bins=8)
    assert histogram_edges(stats, 8)[0] == 3.5
    assert stats.histogram is not None and sum(stats.histogram.counts) == 10


@pytest.fixture
def mapped_files_closed() -> Iterator[None]:
    from inspector.engine.inspect_jobs import close_mapped_files

    yield
    close_mapped_files()


def test_stats_jobs_in_the_worker(mapped_files_closed: None, tmp_path: Path) -> None:
    from inspector.engine.inspect_jobs import answer as inspect
    from inspector.engine.protocol import ErrorKind, Failure, Result, StatsAllRequest, StatsRequest
    from inspector.engine.worker import JobControl, answer

    bad = torch.randn(100, 10)
    bad[3, 4] = math.nan
    good = torch.arange(12, dtype=torch.int16).view(3, 4)
    path = tmp_path / "m.pt"
    torch.save({"enc": {"bad": bad, "bad_T": bad.t(), "good": good}, "inf": torch.tensor([math.inf])}, path)

    event = answer(StatsRequest(str(path), tensor_path=("enc", "good")), JobControl(1, lambda _event: None))
    assert isinstance(event, Result), event
    result = event.data
    assert (result["key"], result["min"], result["max"], result["numel"]) == ("enc.good", 0, 11, 12)
    assert result["histogram"]["counts"] == [1] * 12
    json.dumps(result, allow_nan=False)

    steps: list[tuple[int, int, str]] = []
    every = inspect(StatsAllRequest(str(path)), lambda *step: steps.append(step))
    assert [row["key"] for row in every["tensors"]] == ["enc.bad", "enc.bad_T", "enc.good", "inf"]
    assert every["flagged"] == ["enc.bad", "enc.bad_T", "inf"]
    assert every["tensors"][0]["stats"]["nan"] == 1
    assert every["tensors"][1]["stats"]["nan"] == 1
    assert steps[-1][0] == steps[-1][1] == every["bytes"]

    missing = answer(StatsRequest(str(path), key="nope"), JobControl(2, lambda _event: None))
    assert isinstance(missing, Failure) and missing.kind is ErrorKind.UNREADABLE
    assert "no tensor named nope" in missing.message


# -- the numbers torch gives -----------------------------------------------------------------------


def _torch_numbers(t: torch.Tensor) -> dict[str, Any]:
    """What a user computes with torch: its own reductions, in float64 (``t.double()``)."""
    x = t.double()
    finite = x[torch.isfinite(x)]
    return {
        "min": finite.min().item(), "max": finite.max().item(), "mean": finite.mean().item(),
        "std": finite.std().item(), "abs_mean": finite.abs().mean().item(),
        "l2_norm": torch.linalg.vector_norm(finite).item(), "zeros": int((x == 0).sum()),
        "nan": int(x.isnan().sum()), "posinf": int((x == math.inf).sum()),
        "neginf": int((x == -math.inf).sum()),
    }  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64,
                                   torch.uint8, torch.bool], ids=str)  # fmt: skip
def test_every_statistic_equals_torchs_own(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(5)
    if dtype.is_floating_point:
        t = (torch.randn(3001, generator=gen) * 1e-3 + 5e-4).to(dtype)
        t[::97] = 0
        t[5], t[6], t[7] = math.nan, math.inf, -math.inf
    elif dtype == torch.bool:
        t = torch.rand(3001, generator=gen) < 0.4
    else:
        t = torch.randint(0, 200, (3001,), generator=gen).to(dtype)
    got = tensor_stats(t, chunk=CHUNK).to_json()
    want = _torch_numbers(t)
    assert got["std_correction"] == 1
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-300), name
    if dtype == torch.float32:  # torch's float32 std of the finite values, within float32 rounding
        assert got["std"] == pytest.approx(t[torch.isfinite(t)].std().item(), rel=1e-5)


def test_std_of_the_example_is_torchs(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    bias = torch.load(example, weights_only=True)["model"]["norm.bias"]
    got = tensor_stats(bias)
    assert got.std == pytest.approx(bias.std().item(), rel=1e-6)
    assert got.std == pytest.approx(0.000604418, rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool], ids=str)
def test_an_expanded_view_is_described_from_its_storage(dtype: torch.dtype) -> None:
    base = torch.arange(-3, 4).to(dtype)
    view = base.expand(500, 7)  # stride 0 on the first dimension
    assert view.stride()[0] == 0
    got = tensor_stats(view, bins=16, chunk=CHUNK)
    _check(view.contiguous(), bins=16)
    want = tensor_stats(view.contiguous(), bins=16, chunk=CHUNK).to_json()
    for name in ("finite", "zeros", "min", "max", "mean", "std", "abs_mean", "l2_norm"):
        assert got.to_json()[name] == pytest.approx(want[name], rel=1e-12), name
    assert got.to_json()["value_counts"] == want["value_counts"]
    assert got.to_json()["histogram"] == want["histogram"]


def test_a_huge_stride_0_view_reads_its_storage_once() -> None:
    """2**36 elements repeating four stored values: answered without walking them."""
    view = torch.tensor([1.0, -2.0, 0.0, math.nan]).as_strided((1 << 18, 1 << 18, 4), (0, 0, 1))
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return False

    got = tensor_stats(view, bins=8, cancelled=cancelled)
    assert got.numel == 1 << 38 and got.nan == 1 << 36 and got.finite == 3 << 36
    assert (got.min, got.max, got.mean) == (-2.0, 1.0, pytest.approx(-1 / 3))
    assert got.histogram is not None and sum(got.histogram.counts) == 3 << 36
    assert len(calls) <= 4  # a block or two per pass, not 2**36 elements


def test_a_view_whose_strides_overlap_far_beyond_its_storage_is_refused() -> None:
    from inspector.core.errors import CheckpointError

    view = torch.arange(1 << 20, dtype=torch.float32).as_strided(((1 << 20) - 200, 200), (1, 1))
    with pytest.raises(CheckpointError, match="strides overlap"):
        tensor_stats(view)
    small = torch.arange(100, dtype=torch.float32).as_strided((91, 10), (1, 1))  # a sliding window
    _check(small)
