"""A tensor's bytes as an export writes and compares them: converted to the target dtype, as
contiguous uint8, a strided view in bounded blocks so its logical size never has to fit in memory.

``array_blocks`` and ``same_bytes`` read through NumPy alone (an unconverted tensor of a direct
source); ``raw_bytes``, ``converted`` and ``output_blocks`` take torch tensors (torch converts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .stats import blocks
from .tensor_array import NDArray, TensorArray

if TYPE_CHECKING:
    import torch

#: Bytes compared at once (small enough to stay in the cache, large enough to cost no loop).
_COMPARE_BYTES = 1 << 20


def raw_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's elements as contiguous uint8 (no copy when it is contiguous already)."""
    import torch

    t = t.detach().contiguous()
    if t.numel() == 0:
        return torch.empty(0, dtype=torch.uint8)
    return t.reshape(-1).view(torch.uint8)


def converted(t: torch.Tensor, dtype: str) -> torch.Tensor:
    """``t`` in the dtype named ``dtype`` (itself, detached, when it has that dtype already)."""
    import torch

    target = getattr(torch, dtype)
    return t.detach() if t.dtype == target else t.detach().to(target)


def output_blocks(t: torch.Tensor, dtype: str) -> Iterator[torch.Tensor]:
    """The bytes of ``t`` converted to ``dtype`` in logical order, as contiguous uint8 blocks.

    A contiguous tensor is one block (no copy unless converted); a strided view (a transposed or
    expanded one) is walked in bounded blocks.
    """
    if t.is_contiguous():
        yield raw_bytes(converted(t, dtype))
        return
    for index in blocks(tuple(t.shape)):
        yield raw_bytes(converted(t[index], dtype))


def array_blocks(a: TensorArray) -> Iterator[NDArray]:
    """The bytes of ``a``'s elements in logical order, as contiguous uint8 blocks: a contiguous view
    is its own bytes (no copy), a strided one is walked in bounded blocks (as ``output_blocks``)."""
    if a.numel == 0:
        return
    if a.contiguous:
        start = a.offset * a.itemsize
        yield a.record[start : start + a.numel * a.itemsize]
        return
    bits = a.bits()
    for index in blocks(a.shape):
        yield np.ascontiguousarray(bits[index]).reshape(-1).view(np.uint8)


def same_bytes(a: NDArray, b: NDArray) -> bool:
    """Two contiguous uint8 arrays hold the same bytes (compared a cache-sized piece at a time)."""
    if a.size != b.size:
        return False
    for start in range(0, a.size, _COMPARE_BYTES):
        x, y = a[start : start + _COMPARE_BYTES], b[start : start + _COMPARE_BYTES]
        if x.size % 8 == 0:
            x, y = x.view(np.uint64), y.view(np.uint64)
        if not np.array_equal(x, y):
            return False
    return True
