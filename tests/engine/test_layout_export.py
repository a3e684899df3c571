"""Consolidating shard sets and DCP folders, writing HF shard sets, legacy → zip; read back equal."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from inspector.core.export_plan import ExportPlan
from inspector.core.peek import peek
from inspector.engine.export import ExportError, export_checkpoint
from inspector.engine.export_sharded import INDEX_NAME
from inspector.engine.sources import open_source
from tests.layouts import sample_state, write_dcp, write_dcp_chunks, write_hf_set


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def _assert_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_hf_set_consolidates(tmp_path: Path, fmt: str) -> None:
    state = sample_state()
    index = write_hf_set(tmp_path / "set", state)
    target = tmp_path / f"one.{fmt}"
    report = export_checkpoint(ExportPlan(source=str(index), target=str(target), format=fmt))
    assert report.tensors == len(state)
    got = torch.load(target, weights_only=True) if fmt == "pth" else _safetensors(target)
    _assert_equal(dict(got), state)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_dcp_folder_consolidates(tmp_path: Path, fmt: str) -> None:
    state = {
        "model.w": torch.randn(6, 8),
        "model.b": torch.arange(5),
        "half": torch.ones(3, dtype=torch.float16),
    }
    folder = write_dcp(tmp_path / "ckpt", {**state, "step": 3})
    target = tmp_path / f"one.{fmt}"
    export_checkpoint(ExportPlan(source=str(folder), target=str(target), format=fmt))
    got = torch.load(target, weights_only=True) if fmt == "pth" else _safetensors(target)
    _assert_equal(dict(got), state)


def _no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kw: object) -> None:
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


def test_dcp_chunks_are_read_directly_and_assembled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    b = torch.arange(5).to(torch.bfloat16)
    folder = write_dcp_chunks(tmp_path / "ckpt", {
        "w": ((4, 6), [((0, 0), w[:, :4]), ((0, 4), w[:, 4:])]),
        "b": ((5,), [((0,), b)]),
    })  # fmt: skip
    _no_torch_load(monkeypatch)
    with open_source(folder) as source:
        assert torch.equal(source.tensor(source.find("w")), w)
        single = source.tensor(source.find("b"))
        assert single.dtype == torch.bfloat16 and torch.equal(single, b)
        again = source.tensor(source.find("b"))
        assert again.data_ptr() == single.data_ptr()  # a view of the mapped data file, not a copy


def test_dcp_folder_written_by_torch_reads_every_value(tmp_path: Path) -> None:
    state = {"model.w": torch.randn(6, 8), "model.b": torch.arange(5), "half": torch.ones(3).half()}
    folder = write_dcp(tmp_path / "ckpt", {**state, "step": 3})
    with open_source(folder) as source:
        assert {n.key for n in source.tensor_nodes()} == set(state)
        for node in source.tensor_nodes():
            assert torch.equal(source.tensor(node), state[node.key]), node.key


@pytest.mark.parametrize(
    ("chunks", "match"),
    [
        (
            {"w": ((1 << 40,), [((0,), torch.ones(4), (1 << 40,))])},
            "holds float32\\[4\\], not the float32\\[1099511627776\\]",
        ),
        ({"w": ((8,), [((0,), torch.ones(4))])}, "hold 4 elements for a tensor of 8"),
        ({"w": ((6,), [((0,), torch.ones(4)), ((2,), torch.ones(2))])}, "overlap"),
    ],
    ids=["huge-claim", "gap", "overlap"],
)
def test_dcp_chunks_that_lie_are_a_sentence(tmp_path: Path, chunks: dict, match: str) -> None:
    from inspector.core.errors import CheckpointError

    folder = write_dcp_chunks(tmp_path / "ckpt", chunks)
    with open_source(folder) as source, pytest.raises(CheckpointError, match=match):
        source.tensor(source.find("w"))


def test_a_dcp_data_file_that_is_a_fifo_is_never_opened(tmp_path: Path) -> None:
    import os
    import signal

    from inspector.core.errors import CheckpointError

    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2)})
    data = next(folder.glob("*.distcp"))
    data.unlink()
    os.mkfifo(data)

    def hung(*_args: object) -> None:
        raise TimeoutError("the read blocked on the pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with open_source(folder) as source, pytest.raises(CheckpointError, match="not a regular file"):
            source.tensor(source.find("w"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("opened", ["model.index.json", ".", "model-00001-of-00002.safetensors",
                                    "model-00002-of-00002.bin"])  # fmt: skip
def test_every_way_of_opening_a_set_reads_the_same_tensors(tmp_path: Path, opened: str) -> None:
    from inspector.engine.inspect_jobs import stats_all

    state = sample_state()
    write_hf_set(tmp_path / "hf", state)
    with open_source(tmp_path / "hf" / opened) as source:
        assert source.index.format == "hf-sharded"
        assert {n.key: source.tensor(n) for n in source.tensor_nodes()}.keys() == state.keys()
        for node in source.tensor_nodes():
            assert torch.equal(source.tensor(node), state[node.key]), node.key
        rows = stats_all(source)["tensors"]
    assert all("stats" in row for row in rows), rows


@pytest.mark.parametrize("opened", [".", "model.index.json", "model-00002-of-00002.bin"])
def test_a_set_exports_however_it_was_opened(tmp_path: Path, opened: str) -> None:
    state = sample_state()
    write_hf_set(tmp_path / "hf", state)
    target = tmp_path / "one.safetensors"
    export_checkpoint(
        ExportPlan(source=str(tmp_path / "hf" / opened), target=str(target), format="safetensors")
    )
    _assert_equal(_safetensors(target), state)


def test_hf_shard_set_written_and_read_back(tmp_path: Path) -> None:
    state = sample_state()
    src = tmp_path / "src.pth"
    torch.save(state, src)
    target = tmp_path / "sharded"
    report = export_checkpoint(
        ExportPlan(source=str(src), target=str(target), format="hf-sharded", max_shard_size=150)
    )
    assert report.tensors == len(state)
    data = json.loads((target / "model.safetensors.index.json").read_text())
    shards = set(data["weight_map"].values())
    assert len(shards) > 1
    assert data["metadata"]["total_size"] == sum(t.nbytes for t in state.values())
    got: dict[str, torch.Tensor] = {}
    for shard in shards:
        got.update(_safetensors(target / shard))
    _assert_equal(got, state)
    assert peek(target).format == "hf-sharded"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_hf_shard_set_refuses_existing_target_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    target = tmp_path / "sharded"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        export_checkpoint(ExportPlan(source=str(src), target=str(target), format="hf-sharded"))
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_hf_shard_set_failure_leaves_no_partial_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspector.engine.export_sharded as sharded

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)

    def broken(*_args: object) -> None:
        raise ExportError("simulated verification failure", None, "verify-failed")

    monkeypatch.setattr(sharded, "verify_shard_set", broken)
    with pytest.raises(ExportError, match="simulated"):
        export_checkpoint(ExportPlan(source=str(src), target=str(tmp_path / "out"), format="hf-sharded",
                                     max_shard_size=100))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]


def test_legacy_converts_to_zip(tmp_path: Path) -> None:
    state = sample_state()
    src = tmp_path / "old.pth"
    torch.save(state, src, _use_new_zipfile_serialization=False)
    assert peek(src).format == "torch-legacy"
    target = tmp_path / "new.pth"
    export_checkpoint(ExportPlan(source=str(src), target=str(target), format="pth"))
    assert peek(target).format == "torch-zip"
    _assert_equal(dict(torch.load(target, weights_only=True)), state)


def test_hf_shard_set_on_a_full_disk_says_so_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import inspector.engine.export_sharded as sharded

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sharded, "fsync_dir", full)
    with pytest.raises(ExportError) as info:
        export_checkpoint(ExportPlan(source=str(src), target=str(tmp_path / "out"), format="hf-sharded"))
    assert info.value.kind == "disk-full" and "is full" in info.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]


def test_a_shard_set_export_opens_its_source_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One direct source for every shard, and torch.load never (no pickle of the file runs)."""
    import inspector.engine.sources as sources_module

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    opened: list[object] = []
    real = sources_module.open_source

    def counted(*args: Any) -> Any:
        opened.append(args)
        return real(*args)

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(sources_module, "open_source", counted)
    monkeypatch.setattr(torch, "load", no_load)
    target = tmp_path / "out"
    export_checkpoint(ExportPlan(str(src), str(target), format="hf-sharded", max_shard_size=100))
    shards = set(json.loads((target / "model.safetensors.index.json").read_text())["weight_map"].values())
    assert len(shards) >= 3 and len(opened) == 1


@pytest.mark.parametrize("layout", ["file", "shard set"])
def test_a_shard_set_export_opens_its_source_files_as_often_for_many_shards_as_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    """No shard re-reads the source: its files are opened the same number of times for one shard
    as for many."""
    if layout == "file":
        source = tmp_path / "src" / "src.pth"
        source.parent.mkdir()
        torch.save(sample_state(), source)
    else:
        source = write_hf_set(tmp_path / "src", sample_state())
    opened: list[str] = []
    real_open = builtins.open

    def counted(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path) and Path(file).resolve().parent == source.parent.resolve():
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counted)
    opens = {}
    for name, max_size in (("one", 0), ("many", 100)):
        opened.clear()
        export_checkpoint(
            ExportPlan(str(source), str(tmp_path / name), "hf-sharded", max_shard_size=max_size)
        )
        opens[name] = len(opened)
    assert len(list((tmp_path / "one").glob("*.safetensors"))) == 1
    assert len(list((tmp_path / "many").glob("*.safetensors"))) >= 3
    assert opens["one"] > 0 and opens["many"] == opens["one"]


def test_a_cancelled_shard_set_export_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    seen: list[int] = []
    with pytest.raises(ExportError, match="cancelled"):
        export_checkpoint(
            ExportPlan(str(src), str(tmp_path / "out"), format="hf-sharded", max_shard_size=100),
            progress=lambda done, _total: seen.append(done),
            cancel=lambda: len(seen) >= 3,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]


_KILL_MID_SET = """
import os, signal, sys
from inspector.core.export_plan import ExportPlan
from inspector.engine.export import export_checkpoint
source, target, temp = sys.argv[1:4]
plan = ExportPlan(source, target, "hf-sharded", temp_path=temp, max_shard_size=100)
calls = []
def die(done, total):
    calls.append(done)
    if len(calls) == 4:
        os.kill(os.getpid(), signal.SIGKILL)
export_checkpoint(plan, progress=die)
"""


def test_a_killed_shard_set_export_leaves_only_its_temp_folder_which_the_caller_removes(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from inspector.core.export_plan import discard_partial

    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    plan = ExportPlan(str(src), str(tmp_path / "out"), "hf-sharded", max_shard_size=100)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_MID_SET, str(src), plan.target, plan.temp_path],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["src.pth", os.path.basename(plan.temp_path)])
    assert discard_partial(plan)  # what the engine client does once a killed worker is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pth"]


def _existing_set(tmp_path: Path) -> tuple[Path, Path]:
    """A source file and a target folder that already holds the user's files."""
    src = tmp_path / "src.pth"
    torch.save(sample_state(), src)
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    return src, target


def test_replacing_a_shard_set_where_folders_cannot_be_exchanged_leaves_nothing_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspector.engine.file_safety as file_safety

    src, target = _existing_set(tmp_path)
    monkeypatch.setattr(file_safety, "_exchange", lambda _a, _b: False)
    export_checkpoint(ExportPlan(str(src), str(target), "hf-sharded", force=True))
    assert sorted(p.name for p in target.iterdir()) == ["model.safetensors", "model.safetensors.index.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src.pth"]


def test_a_failed_swap_of_a_shard_set_folder_puts_the_replaced_one_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import inspector.engine.file_safety as file_safety

    src, target = _existing_set(tmp_path)
    plan = ExportPlan(str(src), str(target), "hf-sharded", force=True)
    monkeypatch.setattr(file_safety, "_exchange", lambda _a, _b: False)
    real_rename = os.rename

    def refuse_the_new_folder(a: Any, b: Any) -> None:
        if os.fspath(a) == plan.temp_path:
            raise PermissionError(13, "Permission denied", os.fspath(b))
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", refuse_the_new_folder)
    with pytest.raises(ExportError, match="permission denied"):
        export_checkpoint(plan)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src.pth"]


_KILL_MID_SWAP = """
import os, shutil, signal, sys
import inspector.engine.file_safety as file_safety
from inspector.core.export_plan import ExportPlan
from inspector.engine.export import export_checkpoint
source, target, temp, when = sys.argv[1:5]
file_safety._exchange = lambda a, b: False
real_rename, real_rmtree = os.rename, shutil.rmtree
def rename(a, b):
    real_rename(a, b)
    if when == "between renames" and os.fspath(b) != target:
        os.kill(os.getpid(), signal.SIGKILL)
def rmtree(path, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename
shutil.rmtree = rmtree
export_checkpoint(ExportPlan(source, target, "hf-sharded", temp_path=temp, force=True))
"""


@pytest.mark.parametrize(("when", "kept"), [("between renames", ["mine.txt"]),
                                            ("after both", ["model.safetensors", INDEX_NAME])])  # fmt: skip
def test_a_shard_set_killed_while_replacing_a_folder_leaves_one_folder_once_discarded(
    tmp_path: Path, when: str, kept: list[str]
) -> None:
    """Without an atomic exchange the replaced folder is moved aside first: after a kill there,
    the caller's cleanup leaves the target whole (the old folder, or the new one) and nothing hidden."""
    import os
    import signal
    import subprocess
    import sys

    from inspector.core.export_plan import discard_partial

    src, target = _existing_set(tmp_path)
    plan = ExportPlan(str(src), str(target), "hf-sharded", force=True)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_MID_SWAP, str(src), plan.target, plan.temp_path, when],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    discard_partial(plan)  # what the engine client does once a killed worker is gone
    assert sorted(p.name for p in target.iterdir()) == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src.pth"]
