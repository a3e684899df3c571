"""A watched static read tells its watcher its stages and how much of its pickle it has read, and
ends at once where the watcher stops it (a cancelled or closed tab's read of a large file)."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from inspector.core import read_progress
from inspector.core.peek import peek
from inspector.core.read_progress import PICKLE, START, TREE, ReadStopped, watched
from inspector.core.report import index_to_json
from inspector.core.torch_pickle import StorageRef, TensorRef
from inspector.core.tree import TreeBuilder
from inspector.core.unpickler import PDict

COUNT = 3_000  # about 100,000 opcodes: six reports of the pickle at least


def _pth(path: Path, count: int = COUNT) -> Path:
    torch.save({f"layers.{i // 10}.w{i % 10}": torch.zeros(2) for i in range(count)}, path)
    return path


def _data_pkl_size(path: Path) -> int:
    with zipfile.ZipFile(path) as z:
        return next(i.file_size for i in z.infolist() if i.filename.endswith("/data.pkl"))


def test_a_watched_read_reports_its_stages_in_order_and_the_bytes_of_its_pickle(tmp_path: Path) -> None:
    path = _pth(tmp_path / "model.pth")
    seen: list[tuple[str, int, int]] = []
    with watched(lambda stage, done, total: seen.append((stage, done, total))):
        index = peek(path)
    assert index.tensor_count == COUNT
    stages = [s for s, _, _ in seen]
    assert stages[0] == START and TREE in stages
    assert stages.index(TREE) > max(i for i, s in enumerate(stages) if s == PICKLE)
    pickle = [(done, total) for s, done, total in seen if s == PICKLE]
    assert len(pickle) >= 5
    assert {total for _, total in pickle} == {_data_pkl_size(path)}
    done = [d for d, _ in pickle]
    assert done == sorted(done) and len(set(done)) == len(done) and 0 < done[-1] < pickle[0][1]


def test_a_read_nobody_watches_reports_nothing_and_reads_the_same(tmp_path: Path) -> None:
    path = _pth(tmp_path / "model.pth")
    plain = index_to_json(peek(path))
    with watched(lambda *_: None):
        assert index_to_json(peek(path)) == plain
    assert read_progress._WATCHER.get() is None


@pytest.mark.parametrize("at", [START, PICKLE])
def test_the_watcher_stops_the_read_where_it_is(tmp_path: Path, at: str) -> None:
    """Stopped at the first report of a stage: ``ReadStopped`` comes out of the read, not a
    sentence about the file, and nothing after it was reported."""
    path = _pth(tmp_path / "model.pth")
    seen: list[str] = []

    def stop(stage: str, done: int, total: int) -> None:
        seen.append(stage)
        if stage == at:
            raise ReadStopped

    with watched(stop), pytest.raises(ReadStopped):
        peek(path)
    assert seen[-1] == at and seen.count(at) == 1 and TREE not in seen


def test_the_watcher_is_told_of_the_tree_as_it_lays_out_rows_and_stops_it_there() -> None:
    """40,000 rows: told of a few times (every few MB of rows), each time further; stopped at the
    first, the build goes no further."""
    storages = [StorageRef(str(i), "float32", "cpu", 2) for i in range(40_000)]
    top = PDict([(f"w{i}", TensorRef(st, 0, (2,), (1,), "float32", "cpu")) for i, st in enumerate(storages)])
    told: list[int] = []
    with watched(lambda stage, done, total: told.append(done) if stage == TREE and done else None):
        root = TreeBuilder().build(top)
    assert len(root.children) == 40_000
    assert len(told) >= 2 and told == sorted(set(told)) and told[-1] < 40_000
    rows: list[int] = []

    def stop(stage: str, done: int, total: int) -> None:
        if stage == TREE and done:
            rows.append(done)
            raise ReadStopped

    builder = TreeBuilder()
    with watched(stop), pytest.raises(ReadStopped):
        builder.build(top)
    assert rows == told[:1] and builder.rows == told[0]


def test_a_safetensors_read_is_watched_too(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    seen: list[str] = []
    with watched(lambda stage, done, total: seen.append(stage)):
        assert peek(path).tensor_count == 1
    assert seen[0] == START and seen[-1] == TREE
