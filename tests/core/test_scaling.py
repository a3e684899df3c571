"""The static read's work grows linearly with the number of tensors: counted in function calls
(Python's and C's), which the machine's load does not change, from 1,000 to 4,000 tensors."""

from __future__ import annotations

import gc
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from inspector.core.peek import peek
from tests.call_counts import python_calls

SMALL, LARGE = 1_000, 4_000
#: Calls per tensor may vary a little (longer keys, a second memo opcode width past 256 entries);
#: a quadratic step would make 4× the tensors cost 16× the calls.
SLACK = 1.15


def _key(i: int) -> str:
    return f"blocks.{i // 100}.experts.{i % 100}.weight"


def _pth(path: Path, count: int) -> Path:
    torch.save({_key(i): torch.zeros(4) for i in range(count)}, path)
    return path


def _safetensors(path: Path, count: int) -> Path:
    header = {_key(i): {"dtype": "F32", "shape": [4], "data_offsets": [16 * i, 16 * i + 16]}
              for i in range(count)}  # fmt: skip
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(16 * count))
    return path


def _calls_of_peek(path: Path) -> int:
    """Function calls (Python and built-in) made while reading ``path``."""
    index, calls = python_calls(lambda: peek(path), c_calls=True)
    assert index.tensor_count in (SMALL, LARGE)
    return calls


@pytest.mark.parametrize("make", [_pth, _safetensors], ids=["torch zip", "safetensors"])
def test_reading_costs_the_same_per_tensor_at_four_times_the_tensors(
    tmp_path: Path, make: Callable[[Path, int], Path]
) -> None:
    small = _calls_of_peek(make(tmp_path / "small", SMALL))
    large = _calls_of_peek(make(tmp_path / "large", LARGE))
    assert large <= SLACK * (LARGE / SMALL) * small, f"{small:,} calls for {SMALL:,}, {large:,} for {LARGE:,}"


@pytest.mark.parametrize("make", [_pth, _safetensors], ids=["torch zip", "safetensors"])
def test_the_rows_of_a_read_are_not_left_to_the_young_collections(
    tmp_path: Path, make: Callable[[Path, int], Path]
) -> None:
    """The read pauses the collector; what it made stays alive, so it goes to the oldest generation
    at once: left young, the collector would walk all of it three times as it ages (6 s at 10^6)."""
    index = peek(make(tmp_path / "file", SMALL))
    young = {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}
    rows = [index.root, *index.root.walk()]
    assert not [n.key for n in rows if id(n) in young]
    assert gc.isenabled()


def test_the_records_of_a_report_are_not_left_to_the_young_collections(tmp_path: Path) -> None:
    """``info --json`` makes a record per tensor, all kept until printed: the collector does not
    walk the tree again and again while they are made."""
    from inspector.core.report import index_to_json

    report = index_to_json(peek(_safetensors(tmp_path / "file", SMALL)))
    young = {id(o) for o in gc.get_objects(0)} | {id(o) for o in gc.get_objects(1)}
    assert len(report["tensors"]) == SMALL
    assert not [r["key"] for r in report["tensors"] if id(r) in young]
    assert gc.isenabled()


def test_a_large_read_settles_the_collector_with_one_full_pass_before_it_returns(tmp_path: Path) -> None:
    """The read of a large file walks its objects once, at its end, while the window still says it
    is reading: not later, when the full pass their number calls for would stop a keystroke."""
    from inspector.core.collector import MANY_OBJECTS

    path = _safetensors(tmp_path / "large", MANY_OBJECTS // 4)  # several tracked objects per tensor
    full_passes = gc.get_stats()[2]["collections"]
    index = peek(path)
    assert gc.get_stats()[2]["collections"] == full_passes + 1
    assert sum(gc.get_count()) < gc.get_threshold()[0]  # nothing left for a later pass to catch up on
    assert index.tensor_count == MANY_OBJECTS // 4


def test_a_large_read_kept_frozen_is_walked_only_when_its_owner_lets_it_go(tmp_path: Path) -> None:
    """The window keeps a large read's objects frozen: no pass of the collector walks them while
    the tree is shown (not even the one at the read's end); when the window lets the tree go, one
    pass frees it, cycles between rows and their parents included."""
    from inspector.core.collector import MANY_OBJECTS, kept_frozen, release_frozen
    from inspector.core.model import Node

    path = _safetensors(tmp_path / "large", MANY_OBJECTS // 4)
    full_passes = gc.get_stats()[2]["collections"]
    with kept_frozen():
        index = peek(path)
    assert gc.get_stats()[2]["collections"] == full_passes
    assert gc.get_freeze_count() > index.tensor_count
    assert gc.isenabled()
    walked = {id(o) for o in gc.get_objects()}  # every generation the collector walks
    rows = {id(n) for n in index.root.walk()}
    assert not rows & walked
    del index
    release_frozen()
    assert gc.get_freeze_count() == 0
    assert not [o for o in gc.get_objects() if type(o) is Node and id(o) in rows]
    release_frozen()  # nothing kept: nothing to do
    assert gc.get_stats()[2]["collections"] == full_passes + 1


def test_info_of_a_large_file_makes_no_pass_of_the_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``info`` prints the tree and ends: the read's objects are left frozen, not walked once more."""
    from inspector.cli import main
    from inspector.core.collector import MANY_OBJECTS

    path = _safetensors(tmp_path / "large", MANY_OBJECTS // 4)
    full_passes = gc.get_stats()[2]["collections"]
    assert main(["info", "--json", str(path)]) == 0
    assert gc.get_stats()[2]["collections"] == full_passes
    assert len(json.loads(capsys.readouterr().out)["tensors"]) == MANY_OBJECTS // 4
