"""The histogram bins a user may ask for, known before any tensor is read (standard library only)."""

from __future__ import annotations

#: The most histogram bins a tensor's statistics are computed with.
MAX_BINS = 256
#: The bins of a histogram when the caller names no number.
DEFAULT_BINS = 128
