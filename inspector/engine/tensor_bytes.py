"""A tensor's bytes as an export writes and compares them: converted to the target dtype, as
contiguous uint8, a strided view in bounded blocks so its logical size never has to fit in memory."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .stats import blocks


def raw_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's elements as contiguous uint8 (no copy when it is contiguous already)."""
    t = t.detach().contiguous()
    if t.numel() == 0:
        return torch.empty(0, dtype=torch.uint8)
    return t.reshape(-1).view(torch.uint8)


def converted(t: torch.Tensor, dtype: str) -> torch.Tensor:
    """``t`` in the dtype named ``dtype`` (itself, detached, when it has that dtype already)."""
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
