"""The reader's budgets grow with the bytes a file really has, never with what it claims: a
``torch.save`` of a million tensors is read, a small hostile pickle still meets the fixed limits."""

from __future__ import annotations

import pytest

from inspector.core.unpickler import Budget, Limits, SafeUnpickler


def test_small_pickles_and_files_keep_the_fixed_limits() -> None:
    assert Limits.for_pickle(0) == Limits()
    assert Limits.for_pickle(20 << 20) == Limits()  # 20 MB: what 180,000 tensors need fits the fixed limits
    small = Budget.for_file(30 << 20)
    assert (small.opcodes, small.nbytes, small.seconds, small.scan_opcodes) == (
        Budget().opcodes, Budget().nbytes, Budget().seconds, Budget().scan_opcodes,
    )  # fmt: skip


def test_a_million_tensors_pickle_gets_room_for_its_own_bytes() -> None:
    """The data.pkl of 10^6 tensors is 114 MB: 35 M opcodes, 8 M memo entries and about 2.3 GB of
    stand-ins by the reader's estimate (20 bytes per pickle byte)."""
    size = 114 << 20
    limits = Limits.for_pickle(size)
    assert limits.max_opcodes >= size and limits.max_memo >= 10_000_000
    assert limits.max_bytes >= 22 * size
    budget = Budget.for_file(312 << 20)  # the whole .pth of 10^6 small tensors
    assert budget.opcodes >= size and budget.nbytes >= limits.max_bytes


def test_growth_is_capped_whatever_the_file_size() -> None:
    huge = 1 << 40
    limits, budget = Limits.for_pickle(huge), Budget.for_file(huge)
    assert limits.max_bytes == budget.nbytes == 3 << 30
    assert limits.max_seconds <= 600 and budget.seconds <= 600


def test_explicit_limits_are_kept_as_given() -> None:
    """A caller's own limits are not scaled: a pickle over them is still refused."""
    data = b"\x80\x02]" + b"}a" * 200_000 + b"."
    with pytest.raises(Exception, match="MB"):
        SafeUnpickler(data, limits=Limits(max_bytes=1 << 20)).load()
