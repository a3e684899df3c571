"""Compare two checkpoints tensor by tensor, streaming from both mapped files.

Keys are matched in ``inspector.core.diff``; here each common pair is walked block by block
(never a whole checkpoint, never a whole tensor upcast) for max |a−b|, relative L2 change
``‖a−b‖ / ‖a‖`` and cosine similarity; unmatched keys with one shape and dtype are compared by a
digest of their bytes to spot renames. Positions where both sides hold the same NaN/±Inf count
as equal; positions where only one side is non-finite are counted in ``nonfinite_mismatch`` and
left out of the numbers.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from inspector.core.diff import (
    STATUS_LABELS,
    STATUSES,
    KeyMatch,
    TensorSpec,
    match_keys,
    rename_candidates,
    tensor_specs,
)
from inspector.core.errors import CheckpointError

from .direct_read import TensorSource
from .sources import open_source
from .stats import CHUNK_ELEMS, Cancelled, StatsCancelled, blocks, json_float

#: (bytes done, bytes in all, key being compared)
Progress = Callable[[int, int, str], None]


@dataclass
class TensorDiff:
    """One row of a diff. ``key_a``/``key_b`` are ``None`` on the side that lacks the tensor."""

    status: str  # one of STATUSES
    key_a: str | None
    key_b: str | None
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    max_abs_diff: float | None = None
    rel_l2: float | None = None
    cosine: float | None = None
    nonfinite_mismatch: int = 0
    message: str | None = None

    @property
    def key(self) -> str:
        return self.key_a if self.key_a is not None else self.key_b or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "key": self.key,
            "key_a": self.key_a,
            "key_b": self.key_b,
            "shape_a": list(self.shape_a) if self.shape_a is not None else None,
            "shape_b": list(self.shape_b) if self.shape_b is not None else None,
            "dtype_a": self.dtype_a,
            "dtype_b": self.dtype_b,
            "max_abs_diff": json_float(self.max_abs_diff),
            "rel_l2": json_float(self.rel_l2),
            "cosine": json_float(self.cosine),
            "nonfinite_mismatch": self.nonfinite_mismatch,
            "message": self.message,
        }


@dataclass
class DiffReport:
    path_a: str
    path_b: str
    match: KeyMatch
    entries: list[TensorDiff] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for e in self.entries:
            counts[e.status] += 1
        return counts

    @property
    def identical(self) -> bool:
        """Same keys, shapes, dtypes and bytes."""
        return (
            not self.match.prefix_a
            and not self.match.prefix_b
            and all(e.status == "equal" for e in self.entries)
        )

    @property
    def summary(self) -> str:
        """``412 equal, 3 changed, 2 renamed?`` (kinds that occur, in a fixed order)."""
        counts = self.counts
        parts = [f"{counts[s]} {STATUS_LABELS[s]}" for s in STATUSES if counts[s]]
        return ", ".join(parts) or "no tensors"

    @property
    def differences(self) -> list[str]:
        """Why the checkpoints are not identical, one phrase per reason (empty when they are)."""
        counts = self.counts
        out = [f"{counts[s]:,} {'tensor' if counts[s] == 1 else 'tensors'} {_WHY[s]}"
               for s in STATUSES if s != "equal" and counts[s]]  # fmt: skip
        prefix = self.match.prefix_difference
        if prefix:
            out.append(prefix)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.path_a,
            "b": self.path_b,
            "identical": self.identical,
            "summary": self.summary,
            "differences": self.differences,
            "counts": self.counts,
            "prefix_a": self.match.prefix_a,
            "prefix_b": self.match.prefix_b,
            "prefix_note": self.match.prefix_note,
            "seconds": self.seconds,
            "tensors": [e.to_json() for e in self.entries],
        }


#: How ``differences`` words each status ("3 tensors changed values").
_WHY = {
    "changed": "changed values",
    "dtype": "changed dtype",
    "shape": "changed shape",
    "renamed": "look renamed (same values under another key)",
    "only_a": "only in A",
    "only_b": "only in B",
    "unreadable": "could not be read",
}


# -- comparing two tensors ----------------------------------------------------------------------


@dataclass
class _Sums:
    max_abs: float = 0.0
    diff_sq: float = 0.0
    a_sq: float = 0.0
    b_sq: float = 0.0
    dot: float = 0.0
    mismatch: int = 0


def _add_block(sums: _Sums, xa: np.ndarray[Any, Any], xb: np.ndarray[Any, Any]) -> None:
    finite = np.isfinite(xa) & np.isfinite(xb)
    if not finite.all():
        same = (xa == xb) | (np.isnan(xa) & np.isnan(xb))
        sums.mismatch += int((~finite & ~same).sum())
        xa, xb = xa[finite], xb[finite]
    if not len(xa):
        return
    d = np.abs(xa - xb)
    sums.max_abs = max(sums.max_abs, float(d.max()))
    sums.diff_sq += float(np.dot(d, d))
    if np.iscomplexobj(xa):
        sums.a_sq += float(np.vdot(xa, xa).real)
        sums.b_sq += float(np.vdot(xb, xb).real)
        sums.dot += float(np.vdot(xb, xa).real)
    else:
        sums.a_sq += float(np.dot(xa, xa))
        sums.b_sq += float(np.dot(xb, xb))
        sums.dot += float(np.dot(xa, xb))


def _bytes_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)))


def compare_tensors(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    chunk: int = CHUNK_ELEMS,
    cancelled: Cancelled | None = None,
) -> TensorDiff:
    """Compare two tensors of one shape (any dtypes) block by block; keys are left empty."""
    out = TensorDiff("changed", None, None, tuple(a.shape), tuple(b.shape),
                     _name(a.dtype), _name(b.dtype))  # fmt: skip
    if a.shape != b.shape:
        out.status = "shape"
        return out
    same_dtype = a.dtype == b.dtype
    bitwise = same_dtype
    complex_ = a.dtype.is_complex or b.dtype.is_complex
    wide = torch.complex128 if complex_ else torch.float64
    sums = _Sums()
    equal_so_far: list[tuple[int | slice, ...]] = []
    for index in blocks(tuple(a.shape), chunk):
        if cancelled is not None and cancelled():
            raise StatsCancelled
        ba, bb = a[index].reshape(-1), b[index].reshape(-1)
        if bitwise:
            if _bytes_equal(ba, bb):
                equal_so_far.append(index)
                continue
            bitwise = False
            for before in equal_so_far:  # their norms count too, now that the tensors differ
                same = _numeric(a[before].reshape(-1), wide)
                _add_block(sums, same, same)
            equal_so_far.clear()
        _add_block(sums, _numeric(ba, wide), _numeric(bb, wide))
    if bitwise:
        out.status = "equal"
        out.max_abs_diff = out.rel_l2 = 0.0
        out.cosine = 1.0 if a.numel() and _any_nonzero(a, chunk) else None
        return out
    out.status = "changed" if same_dtype else "dtype"
    out.max_abs_diff = sums.max_abs
    out.nonfinite_mismatch = sums.mismatch
    if sums.a_sq > 0:
        out.rel_l2 = math.sqrt(sums.diff_sq) / math.sqrt(sums.a_sq)
    else:
        out.rel_l2 = 0.0 if sums.diff_sq == 0 else math.inf
    if sums.a_sq > 0 and sums.b_sq > 0:
        out.cosine = max(-1.0, min(1.0, sums.dot / math.sqrt(sums.a_sq * sums.b_sq)))
    if out.status == "changed" and sums.mismatch == 0 and sums.diff_sq == 0:
        out.status = "equal"  # same values, different bits: -0.0 vs 0.0 or other NaN payloads
    return out


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _numeric(block: torch.Tensor, wide: torch.dtype) -> np.ndarray[Any, Any]:
    """A block as float64 / complex128 NumPy values (packed dtypes as their raw bytes)."""
    if block.dtype in _RAW:
        block = block.view(_RAW[block.dtype])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # casting complex to real drops the imaginary part
        return block.to(wide).numpy()


_RAW = {
    torch.float4_e2m1fn_x2: torch.uint8,
    torch.bits8: torch.uint8,
    torch.bits1x8: torch.uint8,
    torch.bits2x4: torch.uint8,
    torch.bits4x2: torch.uint8,
    torch.bits16: torch.uint16,
}


def _any_nonzero(t: torch.Tensor, chunk: int) -> bool:
    for index in blocks(tuple(t.shape), chunk):
        block = t[index].reshape(-1)
        raw = block.contiguous().view(torch.uint8)
        if bool(raw.any()):
            return True
    return False


def digest(t: torch.Tensor, chunk: int = CHUNK_ELEMS, cancelled: Cancelled | None = None) -> str:
    """A hash of the tensor's bytes in logical order (equal for equal values, whatever the strides)."""
    h = hashlib.blake2b(digest_size=16)
    for index in blocks(tuple(t.shape), chunk):
        if cancelled is not None and cancelled():
            raise StatsCancelled
        h.update(t[index].reshape(-1).contiguous().view(torch.uint8).numpy().data)
    return h.hexdigest()


# -- comparing two checkpoints ------------------------------------------------------------------


def diff_checkpoints(
    path_a: str,
    path_b: str,
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    chunk: int = CHUNK_ELEMS,
) -> DiffReport:
    """Compare every tensor of ``path_a`` with its counterpart in ``path_b``, one pair at a time."""
    start = time.perf_counter()
    with open_source(path_a) as ca, open_source(path_b) as cb:
        specs_a, specs_b = tensor_specs(ca.index), tensor_specs(cb.index)
        match = match_keys(specs_a, specs_b)
        report = DiffReport(ca.path, cb.path, match)
        groups = rename_candidates(match, specs_a, specs_b)
        nodes_a = ca.index.tensors_by_key()
        nodes_b = cb.index.tensors_by_key()
        total = sum(_nbytes(ca, nodes_a[k]) for k, _ in match.common)
        total += sum(_nbytes(ca, nodes_a[k]) for g in groups for k in g[0])
        total += sum(_nbytes(cb, nodes_b[k]) for g in groups for k in g[1])
        done = 0

        def step(key: str, nbytes: int) -> None:
            nonlocal done
            done += nbytes
            if progress is not None:
                progress(done, total, key)

        for key_a, key_b in match.common:
            entry = _compare_pair(ca, cb, key_a, key_b, nodes_a, nodes_b, specs_a, specs_b, chunk, cancelled)
            report.entries.append(entry)
            ca.release(nodes_a[key_a])
            cb.release(nodes_b[key_b])
            step(key_a, _nbytes(ca, nodes_a[key_a]))
        renamed_a: set[str] = set()
        renamed_b: set[str] = set()
        for keys_a, keys_b in groups:
            by_digest: dict[str, str] = {}
            for key in keys_b:
                by_digest.setdefault(_safe_digest(cb, nodes_b[key], chunk, cancelled), key)
                step(key, _nbytes(cb, nodes_b[key]))
            for key in keys_a:
                found = by_digest.pop(_safe_digest(ca, nodes_a[key], chunk, cancelled), None)
                step(key, _nbytes(ca, nodes_a[key]))
                if found is not None:
                    spec = specs_a[key]
                    report.entries.append(
                        TensorDiff(
                            "renamed", key, found, spec.shape, spec.shape, spec.dtype, spec.dtype, 0.0, 0.0
                        )
                    )
                    renamed_a.add(key)
                    renamed_b.add(found)
        for key in match.only_a:
            if key not in renamed_a:
                s = specs_a[key]
                report.entries.append(TensorDiff("only_a", key, None, s.shape, None, s.dtype, None))
        for key in match.only_b:
            if key not in renamed_b:
                s = specs_b[key]
                report.entries.append(TensorDiff("only_b", None, key, None, s.shape, None, s.dtype))
    report.seconds = time.perf_counter() - start
    return report


def _nbytes(c: TensorSource, node: Any) -> int:
    return int(node.tensor.nbytes) if node.tensor is not None else 0


def _safe_digest(c: TensorSource, node: Any, chunk: int, cancelled: Cancelled | None) -> str:
    """The digest of a tensor, or a value unique to it when it cannot be read (never matches)."""
    try:
        return digest(c.tensor(node), chunk, cancelled)
    except CheckpointError:
        return f"unreadable:{id(node)}"
    finally:
        c.release(node)


def _compare_pair(
    ca: TensorSource,
    cb: TensorSource,
    key_a: str,
    key_b: str,
    nodes_a: dict[str, Any],
    nodes_b: dict[str, Any],
    specs_a: dict[str, TensorSpec],
    specs_b: dict[str, TensorSpec],
    chunk: int,
    cancelled: Cancelled | None,
) -> TensorDiff:
    sa, sb = specs_a[key_a], specs_b[key_b]
    if sa.shape != sb.shape:
        return TensorDiff("shape", key_a, key_b, sa.shape, sb.shape, sa.dtype, sb.dtype)
    try:
        ta, tb = ca.tensor(nodes_a[key_a]), cb.tensor(nodes_b[key_b])
    except CheckpointError as exc:
        return TensorDiff("unreadable", key_a, key_b, sa.shape, sb.shape, sa.dtype, sb.dtype,
                          message=exc.message)  # fmt: skip
    entry = compare_tensors(ta, tb, chunk=chunk, cancelled=cancelled)
    entry.key_a, entry.key_b = key_a, key_b
    return entry
