"""Statistics and histograms of tensors of any size, computed in bounded chunks, with NumPy alone.

Every tensor is walked in blocks of at most ``chunk`` elements (views of the mapped file; a block
is copied only when upcast), so memory stays bounded whatever the tensor's size. A tensor is a
``TensorArray`` (a torch tensor is read through its storage, torch is never imported here); the
numbers are the ones torch computes in float64. Conventions:

- Floating tensors (every float8 variant and bfloat16 included) are upcast to float64 per block.
  ``min``, ``max``, ``mean``, ``std``, ``abs_mean`` and ``l2_norm`` are over the *finite* values;
  NaN, +Inf and −Inf are counted apart. ``std`` is torch's default, the sample standard deviation
  with Bessel's correction (``torch.std``, ``correction=1``; the JSON says ``"std_correction": 1``),
  so it is NaN for a single finite value, as torch's is.
- Views that repeat their storage (a stride-0, expanded dimension) are described from the stored
  elements, each counted as often as the view repeats it: the storage is read once, however large
  the view claims to be. A view whose strides overlap otherwise is walked element by element
  unless that is far more than its storage holds (``MAX_OVERLAP_FACTOR``); then it is refused.
- Complex tensors: NaN counts elements with a NaN part, +Inf those with an infinite part (and no
  NaN), and the numbers describe the magnitudes ``|z|`` (``computed_on`` says "magnitude").
- Integer and bool tensors: exact ``min``/``max`` (Python ints), float64 ``mean``/``std``/norms,
  and ``value_counts`` while the tensor has at most ``MAX_DISTINCT`` distinct values. Bool adds
  ``true``/``false``.
- Packed or opaque dtypes (float4_e2m1fn_x2, bits*) are described as their raw unsigned bytes
  (``computed_on`` names the integer type).
- JSON: non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (see ``json_float``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.errors import CheckpointError
from inspector.core.stats_options import DEFAULT_BINS as DEFAULT_BINS
from inspector.core.stats_options import MAX_BINS as MAX_BINS

from .tensor_array import NDArray, TensorArray, as_array, pattern_bits, pattern_values, value_kind

if TYPE_CHECKING:
    import torch

#: Elements per block: 4 Mi (32 MiB once upcast to float64).
CHUNK_ELEMS = 1 << 22
#: Value counts are kept for integer tensors with at most this many distinct values.
MAX_DISTINCT = 256
#: ``std`` divides by (finite values − this), as ``torch.std`` does by default.
STD_CORRECTION = 1
#: An overlapping view is walked while it has at most this many times the elements it reaches
#: (or at most ``MAX_OVERLAP_WALK`` elements in all); beyond that its statistics are refused.
MAX_OVERLAP_FACTOR = 16
MAX_OVERLAP_WALK = 1 << 26

Cancelled = Callable[[], bool]


class StatsCancelled(Exception):
    """The caller's ``cancelled`` callable said stop (checked between blocks)."""


def json_float(x: float | None) -> float | str | None:
    """A float for JSON: finite floats stay, NaN/±Inf become ``"nan"``/``"inf"``/``"-inf"``."""
    if x is None or math.isfinite(x):
        return x
    if math.isnan(x):
        return "nan"
    return "inf" if x > 0 else "-inf"


@dataclass
class Histogram:
    """Counts of finite values in equal bins; ``edges`` has one more entry than ``counts``.

    Bin ``i`` is ``[edges[i], edges[i+1])``, the last one closed, as ``numpy.histogram`` does.
    """

    edges: list[float]
    counts: list[int]

    def to_json(self) -> dict[str, Any]:
        return {"edges": [json_float(e) for e in self.edges], "counts": list(self.counts)}


@dataclass
class TensorStats:
    """What ``tensor_stats`` reports for one tensor."""

    dtype: str
    shape: list[int]
    numel: int
    kind: str  # "float", "complex", "int", "bool"
    computed_on: str | None = None  # "magnitude" for complex, "uint8"/"uint16" for raw dtypes
    finite: int = 0
    min: float | int | None = None
    max: float | int | None = None
    mean: float | None = None
    std: float | None = None
    std_correction: int = STD_CORRECTION
    abs_mean: float | None = None
    l2_norm: float | None = None
    zeros: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    true: int | None = None
    false: int | None = None
    value_counts: list[tuple[int, int]] | None = None  # (value, count), by value
    histogram: Histogram | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_nan_or_inf(self) -> bool:
        return bool(self.nan or self.posinf or self.neginf)

    @property
    def zero_share(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0

    def to_json(self) -> dict[str, Any]:
        def num(x: float | int | None) -> float | int | str | None:
            return x if x is None or isinstance(x, int) else json_float(x)

        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "numel": self.numel,
            "kind": self.kind,
            "computed_on": self.computed_on,
            "finite": self.finite,
            "min": num(self.min),
            "max": num(self.max),
            "mean": json_float(self.mean),
            "std": json_float(self.std),
            "std_correction": self.std_correction,
            "abs_mean": json_float(self.abs_mean),
            "l2_norm": json_float(self.l2_norm),
            "zeros": self.zeros,
            "zero_share": self.zero_share,
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
            "has_nan_or_inf": self.has_nan_or_inf,
            "true": self.true,
            "false": self.false,
            "value_counts": [list(vc) for vc in self.value_counts] if self.value_counts is not None else None,
            "histogram": self.histogram.to_json() if self.histogram is not None else None,
            "seconds": self.seconds,
        }


# -- walking a tensor in blocks -----------------------------------------------------------------


def blocks(shape: tuple[int, ...], max_elems: int = CHUNK_ELEMS) -> Iterator[tuple[int | slice, ...]]:
    """Index expressions that cover a tensor of ``shape`` in logical order, each ≤ ``max_elems``.

    Two tensors of one shape get the same blocks, so they can be walked side by side.
    """
    if not shape:
        yield ()
        return
    inner = math.prod(shape[1:])
    if inner == 0 or shape[0] == 0:
        return
    if inner <= max_elems:
        rows = max(1, max_elems // inner)
        for i in range(0, shape[0], rows):
            yield (slice(i, min(i + rows, shape[0])),)
        return
    for i in range(shape[0]):
        for rest in blocks(shape[1:], max_elems):
            yield (i, *rest)


def memory_order(a: NDArray) -> NDArray:
    """The same elements with dimensions ordered by stride, so a transposed view walks contiguously."""
    if a.ndim < 2 or a.flags.c_contiguous:
        return a
    strides: tuple[int, ...] = a.strides
    order = sorted(range(a.ndim), key=lambda d: (-strides[d], d))
    return a.transpose(order)


def flat_blocks(
    a: NDArray, max_elems: int = CHUNK_ELEMS, cancelled: Cancelled | None = None
) -> Iterator[NDArray]:
    """1-D blocks of ``a`` (views where the memory allows, small copies otherwise)."""
    for index in blocks(a.shape, max_elems):
        if cancelled is not None and cancelled():
            raise StatsCancelled
        yield a[index].reshape(-1)


# -- statistics ---------------------------------------------------------------------------------


def _into(buffer: NDArray, block: NDArray) -> NDArray:
    """``block`` copied (and converted) into the front of a reused flat buffer.

    Reusing one buffer avoids faulting in fresh pages for every block, which costs more than
    the arithmetic.
    """
    out = buffer[: block.size]
    if block.dtype.names:  # complex32: two float16 halves
        out.real, out.imag = block["real"], block["imag"]
    else:
        np.copyto(out, block, casting="unsafe")
    return out


class _Moments:
    """Per-block sums merged (Chan et al.) into count, mean, M2, |x| sum, x² sum and extremes."""

    def __init__(self, repeat: int = 1) -> None:
        self.repeat = repeat  # how often the view repeats each element that is added
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.zeros = 0

    def add_finite(self, x: NDArray, scratch: NDArray) -> None:
        """Add a contiguous float64 block of finite values (``scratch`` is as long or longer)."""
        n = len(x)
        if not n:
            return
        s1 = float(x.sum())
        s2 = float(np.dot(x, x))
        mean = s1 / n
        m2 = s2 - s1 * mean
        if not (math.isfinite(m2) and m2 > 1e-6 * s2):  # cancellation (or overflow): the slow, exact way
            d = np.subtract(x, mean, out=scratch[:n])
            m2 = float(np.dot(d, d))
        self.abs_sum += float(np.abs(x, out=scratch[:n]).sum())
        self.sq_sum += s2
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        self.zeros += n - int(np.count_nonzero(x))
        self._merge(n, mean, m2)

    def add_table(self, values: NDArray, counts: NDArray) -> None:
        """Add distinct finite ``values`` with their ``counts`` (counts > 0)."""
        n = int(counts.sum())
        if not n:
            return
        c = counts.astype(np.float64)
        mean = float(np.dot(values, c)) / n
        d = values - mean
        self.abs_sum += float(np.dot(np.abs(values), c))
        self.sq_sum += float(np.dot(values * values, c))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        self.zeros += int(counts[values == 0].sum())
        self._merge(n, mean, float(np.dot(d * d, c)))

    def _merge(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def fill(self, out: TensorStats) -> None:
        k = self.repeat
        n = self.n * k
        out.finite = n
        out.zeros += self.zeros * k
        if n:
            out.min, out.max = self.min, self.max
            out.mean = self.mean
            dof = n - out.std_correction
            out.std = math.sqrt(max(self.m2 * k / dof, 0.0)) if dof > 0 else math.nan
            out.abs_mean = self.abs_sum / self.n
            out.l2_norm = math.sqrt(self.sq_sum * k)


def _wide_buffer(kind: str, a: NDArray, chunk: int) -> NDArray:
    """A reused float64 (complex128) buffer for the blocks of ``a``."""
    return np.empty(min(chunk, a.size), dtype=np.complex128 if kind == "complex" else np.float64)


def _wide_pass(
    a: NDArray, out: TensorStats, chunk: int, cancelled: Cancelled | None, repeat: int = 1
) -> None:
    """float32/float64/complex: each block upcast into a reused float64 (complex128) buffer."""
    moments = _Moments(repeat)
    complex_ = out.kind == "complex"
    buf = _wide_buffer(out.kind, a, chunk)
    scratch = np.empty(len(buf), dtype=np.float64)
    for block in flat_blocks(a, chunk, cancelled):
        x = _into(buf, block)
        if complex_:
            finite = np.isfinite(x)
            nan = int(np.isnan(x).sum())
            out.nan += nan
            out.posinf += len(x) - int(finite.sum()) - nan
            values = np.abs(x[finite] if out.nan or out.posinf else x)
            moments.add_finite(values, scratch)
            continue
        if math.isfinite(float(np.dot(x, x))):
            moments.add_finite(x, scratch)
            continue
        finite = np.isfinite(x)
        out.nan += int(np.isnan(x).sum())
        out.posinf += int((x == math.inf).sum())
        out.neginf += int((x == -math.inf).sum())
        moments.add_finite(np.ascontiguousarray(x[finite]), scratch)
    out.nan, out.posinf, out.neginf = out.nan * repeat, out.posinf * repeat, out.neginf * repeat
    moments.fill(out)


def _pattern_counts(a: NDArray, chunk: int, cancelled: Cancelled | None) -> NDArray:
    """How often each bit pattern occurs in a 1- or 2-byte array (one bincount per block)."""
    raw = pattern_bits(a)
    size = 1 << (8 * raw.dtype.itemsize)
    counts = np.zeros(size, dtype=np.int64)
    for block in flat_blocks(raw, chunk, cancelled):
        counts += np.bincount(block, minlength=size)
    return counts


def _table_pass(
    a: NDArray, dtype: str, out: TensorStats, chunk: int, cancelled: Cancelled | None, repeat: int = 1
) -> _Table:
    counts = _pattern_counts(a, chunk, cancelled) * repeat
    values = pattern_values(dtype)
    present = counts > 0
    values, counts = values[present], counts[present]
    finite = np.isfinite(values)
    out.nan = int(counts[np.isnan(values)].sum())
    out.posinf = int(counts[values == math.inf].sum())
    out.neginf = int(counts[values == -math.inf].sum())
    values, counts = values[finite], counts[finite]
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    moments = _Moments()
    moments.add_table(values, counts)
    moments.fill(out)
    if out.kind != "float":
        out.min = int(values.min()) if len(values) else None
        out.max = int(values.max()) if len(values) else None
        if len(values) <= MAX_DISTINCT:
            out.value_counts = [
                (int(v), int(c)) for v, c in zip(values.tolist(), counts.tolist(), strict=True)
            ]
    return _Table(values, counts)


@dataclass
class _Table:
    """The distinct finite values of a tensor with their counts (sorted when from ints)."""

    values: NDArray
    counts: NDArray


def _int_pass(a: NDArray, out: TensorStats, chunk: int, cancelled: Cancelled | None, repeat: int = 1) -> None:
    """4- and 8-byte integers: exact extremes in NumPy, float64 moments, counts while few distinct."""
    moments = _Moments(repeat)
    n_max = min(chunk, a.size)
    buf = np.empty(n_max, dtype=np.float64)
    scratch = np.empty(n_max, dtype=np.float64)
    lo_all: int | None = None
    hi_all: int | None = None
    counts: dict[int, int] | None = {}
    for block in flat_blocks(a, chunk, cancelled):
        arr = np.ascontiguousarray(block)
        lo, hi = int(arr.min()), int(arr.max())
        lo_all = lo if lo_all is None else min(lo_all, lo)
        hi_all = hi if hi_all is None else max(hi_all, hi)
        x = buf[: len(arr)]
        np.copyto(x, arr, casting="unsafe")
        moments.add_finite(x, scratch)
        if counts is not None:
            if hi - lo < 1 << 16:
                shifted = (arr - arr.dtype.type(lo)).astype(np.int64)
                found = np.bincount(shifted)
                (nz,) = np.nonzero(found)
                pairs = zip((nz + lo).tolist(), found[nz].tolist(), strict=True)
            else:
                uniq, cnt = np.unique(arr, return_counts=True)
                pairs = zip(uniq.tolist(), cnt.tolist(), strict=True)
            for value, count in pairs:
                counts[value] = counts.get(value, 0) + count
            if len(counts) > MAX_DISTINCT:
                counts = None
    moments.fill(out)
    out.min, out.max = lo_all, hi_all
    if counts is not None:
        out.value_counts = sorted((v, c * repeat) for v, c in counts.items())


def tensor_stats(
    t: TensorArray | torch.Tensor,
    *,
    bins: int | None = DEFAULT_BINS,
    chunk: int = CHUNK_ELEMS,
    cancelled: Cancelled | None = None,
) -> TensorStats:
    """Statistics of ``t`` (and a histogram of ``bins`` bins, ≤ 256; ``None`` for none).

    ``t`` is read through NumPy (a torch tensor's storage too). Raises ``StatsCancelled`` when
    ``cancelled()`` turns true between blocks.
    """
    start = time.perf_counter()
    array = as_array(t)
    kind, raw = value_kind(array.dtype)
    out = TensorStats(dtype=array.dtype, shape=list(array.shape), numel=array.numel, kind=kind)
    a = array.bits()
    if raw is not None:
        out.computed_on = raw
    elif kind == "complex":
        out.computed_on = "magnitude"
    a, repeat = stored_elements(a)
    walk = memory_order(a)
    table: _Table | None = None
    if out.numel:
        _check_walk(walk)
    if out.numel == 0:
        pass
    elif kind != "complex" and a.dtype.itemsize <= 2:
        table = _table_pass(walk, raw or array.dtype, out, chunk, cancelled, repeat)
    elif kind in ("float", "complex"):
        _wide_pass(walk, out, chunk, cancelled, repeat)
    else:
        _int_pass(walk, out, chunk, cancelled, repeat)
    if kind == "bool":
        counts = dict(out.value_counts or [])
        out.true, out.false = counts.get(1, 0), counts.get(0, 0)
        out.min = bool(out.min) if out.min is not None else None
        out.max = bool(out.max) if out.max is not None else None
    if bins and out.finite:
        if table is not None:
            out.histogram = _table_histogram(table, out, bins)
        else:
            out.histogram = histogram(a, out, bins, chunk=chunk, cancelled=cancelled, repeat=repeat)
    out.seconds = time.perf_counter() - start
    return out


def stored_elements(a: NDArray) -> tuple[NDArray, int]:
    """``a`` with every stride-0 (expanded) dimension cut to one element, and how many times the
    view repeats each remaining element: the statistics of the view, read from its storage once."""
    repeat = 1
    index: list[slice] = []
    for size, stride in zip(a.shape, a.strides, strict=True):
        if stride == 0 and size > 1:
            repeat *= size
            index.append(slice(0, 1))
        else:
            index.append(slice(None))
    return (a[tuple(index)] if repeat > 1 else a), repeat


def _check_walk(a: NDArray) -> None:
    """Refuse a view whose overlapping strides make it many times larger than what it reaches."""
    n = a.size
    if n <= MAX_OVERLAP_WALK:
        return
    size = a.dtype.itemsize
    reach = sum((s - 1) * (stride // size) for s, stride in zip(a.shape, a.strides, strict=True)) + 1
    if n > MAX_OVERLAP_FACTOR * reach:
        raise CheckpointError(
            f"This view's strides overlap: it shows {n:,} values made of {reach:,} stored ones, so its "
            "statistics are not computed."
        )


# -- histograms ---------------------------------------------------------------------------------


def histogram_edges(stats: TensorStats, bins: int) -> NDArray:
    """Bin edges over the finite range: one bin per value for integers spanning ≤ ``MAX_BINS``."""
    low, high = stats.min, stats.max
    assert low is not None and high is not None, "histograms are made of tensors with finite values"
    lo, hi = float(low), float(high)
    if stats.kind in ("int", "bool") and (high - low) < MAX_BINS:
        bins = int(high - low) + 1
        lo, hi = lo - 0.5, hi + 0.5
    elif lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    bins = max(1, min(bins, MAX_BINS))
    return np.linspace(lo, hi, bins + 1)


def _bin_index(x: NDArray, edges: NDArray) -> NDArray:
    """The bin of each finite float64 value, by ``numpy.histogram``'s own arithmetic."""
    n = len(edges) - 1
    lo = float(edges[0])
    span = float(edges[-1]) - lo
    if math.isfinite(span) and bool((edges[1:] > edges[:-1]).all()):
        idx = ((x - lo) / span * n).astype(np.int64)
        idx[idx == n] = n - 1
        idx -= (x < edges[idx]).astype(np.int64)
        idx += ((x >= edges[idx + 1]) & (idx != n - 1)).astype(np.int64)
        return idx
    # a range too wide (or too narrow) for float64 arithmetic: look the edges up
    found: NDArray = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n - 1)
    return found


def _table_histogram(table: _Table, stats: TensorStats, bins: int) -> Histogram:
    edges = histogram_edges(stats, bins)
    idx = _bin_index(table.values, edges)
    counts = np.bincount(idx, weights=table.counts, minlength=len(edges) - 1)
    return Histogram(edges=edges.tolist(), counts=[int(c) for c in counts])


def histogram(
    a: NDArray,
    stats: TensorStats,
    bins: int = DEFAULT_BINS,
    *,
    chunk: int = CHUNK_ELEMS,
    cancelled: Cancelled | None = None,
    repeat: int = 1,
) -> Histogram:
    """A second pass over ``a`` (stored bits, stride-0 dimensions cut): counts of its finite values
    in the bins ``histogram_edges`` chose.

    Bin assignment repeats ``numpy.histogram``'s arithmetic, so the counts agree with it exactly.
    """
    edges = histogram_edges(stats, bins)
    n = len(edges) - 1
    counts = np.zeros(n, dtype=np.int64)
    lo, hi = float(edges[0]), float(edges[-1])
    # numpy.histogram refuses ranges too wide for float64 or too narrow for distinct edges
    ordinary = math.isfinite(hi - lo) and bool((np.diff(edges) > 0).all())
    complex_ = stats.kind == "complex"
    buf = _wide_buffer(stats.kind, a, chunk)
    for block in flat_blocks(memory_order(a), chunk, cancelled):
        x = _into(buf, block)
        if complex_:
            x = np.abs(x[np.isfinite(x)])
        elif stats.nan or stats.posinf or stats.neginf:
            x = x[np.isfinite(x)]
        if not x.size:
            continue
        if ordinary:
            counts += np.histogram(x, bins=n, range=(lo, hi))[0]
        else:
            counts += np.bincount(_bin_index(x, edges), minlength=n)
    return Histogram(edges=edges.tolist(), counts=(counts * repeat).tolist())
