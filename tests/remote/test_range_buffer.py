"""The buffer the static reader reads a remote file through: slices and seek/read like a map,
blocks fetched once, and a byte budget no file can talk it past."""

from __future__ import annotations

import pytest

from inspector.core.errors import CheckpointError
from inspector.remote.range_buffer import READ_AHEAD, RangeBuffer, Transfer

DATA = bytes(range(256)) * 16384  # 4 MiB


def _buffer(budget: int = 1 << 40) -> tuple[RangeBuffer, list[tuple[int, int]]]:
    asked: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        asked.append((start, end))
        return DATA[start:end]

    return RangeBuffer(fetch, len(DATA), "“m.pth”", Transfer(size=len(DATA)), budget), asked


def test_it_reads_like_a_map_and_a_file() -> None:
    buffer, _ = _buffer()
    assert len(buffer) == len(DATA)
    assert buffer[1000:1010] == DATA[1000:1010] and buffer[-3:] == DATA[-3:] and buffer[5] == DATA[5]
    buffer.seek(2_000_000)
    assert buffer.read(10) == DATA[2_000_000:2_000_010] and buffer.tell() == 2_000_010
    buffer.seek(-5, 2)
    assert buffer.read() == DATA[-5:]


def test_the_head_and_the_tail_cost_one_request_each_and_are_never_fetched_twice() -> None:
    buffer, asked = _buffer()
    buffer[0:4096]
    buffer[len(DATA) - 65_558 :]
    buffer[100_000:200_000]  # within the head's read-ahead
    buffer[len(DATA) - READ_AHEAD + 10 : len(DATA) - 70_000]  # within the tail's
    assert asked == [(0, READ_AHEAD), (len(DATA) - READ_AHEAD, len(DATA))]
    assert buffer.transfer.requests == 2 and buffer.transfer.fetched == 2 * READ_AHEAD


def test_a_lone_read_in_the_middle_fetches_only_its_blocks() -> None:
    buffer, asked = _buffer()
    buffer[0:8]
    buffer[2_000_000:2_000_008]  # a legacy file's storage header
    assert asked[1][1] - asked[1][0] < READ_AHEAD


def test_no_read_fetches_past_its_byte_budget() -> None:
    buffer, asked = _buffer(budget=READ_AHEAD + 1000)
    buffer[0:10]
    with pytest.raises(CheckpointError, match="would fetch more than"):
        buffer[len(DATA) - 10 :]
    assert len(asked) == 1
