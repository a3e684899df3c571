"""Exports: every case in every format round-trips; failures, cancels and kills leave no file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from inspector.core.export_plan import ExportPlan, KeyRule, discard_partial, map_keys
from inspector.core.peek import peek
from inspector.core.provenance import PROVENANCE_KEY
from inspector.engine import export_file, export_verification, file_safety, safetensors_writer, torch_writer
from inspector.engine.export import ExportError, export_checkpoint
from tests.checkpoints import CASE_IDS, BuiltCheckpoint, TinyNet, walk

FORMATS = ("pth", "pth-legacy", "safetensors")
SUFFIX = {"pth": ".pth", "pth-legacy": ".pth", "safetensors": ".safetensors"}


def _plan(built: BuiltCheckpoint, target: Path, fmt: str = "pth", **kw: Any) -> ExportPlan:
    return ExportPlan(str(built.path), str(target), fmt, allowed_globals=_allowed(built), **kw)


def _allowed(built: BuiltCheckpoint) -> tuple[str, ...]:
    return tuple(f"{g.__module__}.{g.__qualname__}" for g in built.safe_globals)


def _load(path: Path, built: BuiltCheckpoint) -> Any:
    with torch.serialization.safe_globals(list(built.safe_globals)):
        return torch.load(path, map_location="cpu", weights_only=True)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bits (works for dtypes torch.equal does not implement)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    raw = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in (a, b)] if a.numel() else [a, a]
    return torch.equal(raw[0], raw[1])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".export-part"))


def _expected_refusal(case_id: str, fmt: str) -> str | None:
    if case_id == "dtypes-zip" and fmt == "pth-legacy":
        return "legacy format cannot store"
    if case_id.startswith("dtypes-") and fmt == "safetensors":
        return "safetensors has no code"
    return None


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_round_trip(built_checkpoints, torch_views, tmp_path: Path, case_id: str, fmt: str) -> None:
    """Every tensor comes back bit-identical, with its saved device, sharing and the other values."""
    built = built_checkpoints[case_id]
    target = tmp_path / f"out{SUFFIX[fmt]}"
    plan = _plan(built, target, fmt)
    refusal = _expected_refusal(case_id, fmt)
    if refusal is not None:
        with pytest.raises(ExportError, match=refusal):
            export_checkpoint(plan)
        assert not target.exists() and _leftovers(tmp_path) == []
        return
    report = export_checkpoint(plan)
    assert report.target == str(target) and target.exists() and _leftovers(tmp_path) == []
    source = torch_views[case_id]
    mapping = map_keys(peek(built.path), plan)
    if fmt == "safetensors":
        with safe_open(str(target), framework="pt") as f:
            metadata = f.metadata()
            for t in mapping.tensors:
                stored = t.alias_of or t.output_key
                assert metadata.get(t.output_key) == t.alias_of or t.alias_of is None
                original = dict(walk(built.torch_load()))[t.source_path]
                assert _same(f.get_tensor(stored), original)
        return
    written_index = peek(target)
    written = dict(walk(_load(target, built)))
    original = dict(walk(built.torch_load()))
    for path, tensor in original.items():
        if isinstance(tensor, torch.Tensor):
            assert _same(written[path], tensor)
            assert written[path].requires_grad == tensor.requires_grad
            assert isinstance(written[path], torch.nn.Parameter) == isinstance(tensor, torch.nn.Parameter)
        else:
            assert path in written  # non-tensor values are kept
    tags = {n.key: n.tensor.saved_device for n in written_index.root.tensors()}
    assert tags == {t.key: t.saved_device for t in source.tensors.values()}
    shared_after = {
        frozenset(n.key for n in written_index.root.tensors() if n.tensor.storage_key == key)
        for key in {n.tensor.storage_key for n in written_index.root.tensors()}
    }
    assert {g for g in shared_after if len(g) > 1} == source.sharing()


def test_strip_prefix_loads_into_the_plain_model(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["data_parallel-zip"]
    for fmt in FORMATS:
        target = tmp_path / f"plain-{fmt}{SUFFIX[fmt]}"
        export_checkpoint(_plan(built, target, fmt, strip_prefixes=("module.",)))
        if fmt == "safetensors":
            from safetensors.torch import load_file

            state = load_file(str(target))
        else:
            state = torch.load(target, weights_only=True)
        TinyNet().load_state_dict(state, strict=True)


def test_subtree_of_a_training_checkpoint_is_the_flat_model(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["training-legacy"]
    target = tmp_path / "model.pth"
    report = export_checkpoint(_plan(built, target, subtree="model"))
    state = torch.load(target, weights_only=True)
    assert list(state) == list(TinyNet().state_dict())
    TinyNet().load_state_dict(state, strict=True)
    assert report.values_kept == [] and report.values_dropped == []


def test_dtype_conversion_leaves_ints_and_step_counters(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["training-zip"]
    target = tmp_path / "half.pth"
    export_checkpoint(_plan(built, target, dtype="bfloat16"))
    source, written = built.torch_load(), torch.load(target, weights_only=True)
    assert written["model"]["embed.weight"].dtype == torch.bfloat16
    assert torch.equal(written["model"]["embed.weight"], source["model"]["embed.weight"].bfloat16())
    assert written["model"]["norm.num_batches_tracked"].dtype == torch.int64
    assert written["optimizer"]["state"][0]["step"].dtype == source["optimizer"]["state"][0]["step"].dtype
    assert written["epoch"] == 7 and written["args"] == {"lr": 0.001, "name": "run"}


def test_dtype_conversion_keeps_views_shared(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["shared-zip"]
    target = tmp_path / "half.pth"
    export_checkpoint(_plan(built, target, dtype="float16"))
    views = torch.load(target, weights_only=True)["views"]
    assert views["t"].dtype == torch.float16
    assert views["tail"].untyped_storage().data_ptr() == views["t"].untyped_storage().data_ptr()
    assert torch.equal(views["t_T"], views["t"].t())


def test_safetensors_records_aliases_clones_and_values(built_checkpoints, tmp_path: Path) -> None:
    shared = built_checkpoints["shared-zip"]
    report = export_checkpoint(_plan(shared, tmp_path / "s.safetensors", "safetensors"))
    assert report.aliases == {"views.same": "views.t", "tied.lm_head.weight": "tied.embed.weight"}
    assert set(report.cloned) == {"views.tail", "views.t_T", "views.column"}
    with safe_open(str(tmp_path / "s.safetensors"), framework="pt") as f:
        assert f.metadata()["views.same"] == "views.t" and "views.same" not in set(f.keys())
    training = built_checkpoints["training-zip"]
    report = export_checkpoint(_plan(training, tmp_path / "t.safetensors", "safetensors"))
    with safe_open(str(tmp_path / "t.safetensors"), framework="pt") as f:
        assert f.metadata()["epoch"] == "7" and f.metadata()["format"] == "pt"
        assert '"lr": 0.001' in f.metadata()["args"]
    assert set(report.values_in_metadata) == {"optimizer.param_groups", "scheduler", "epoch", "args"}


def test_device_tags_are_the_targets(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["cuda_tagged-zip"]
    target = tmp_path / "moved.pth"
    export_checkpoint(_plan(built, target, device={"cuda:1": "cuda:0"}), devices=["cpu", "cuda:0"])
    tags = {n.key: n.tensor.saved_device for n in peek(target).root.tensors()}
    assert tags == {"encoder.weight": "cuda:0", "decoder.weight": "cuda:0", "decoder.bias": "cuda:0",
                    "cpu_buffer": "cpu"}  # fmt: skip
    export_checkpoint(_plan(built, tmp_path / "cpu.pth", device="cpu"))
    assert {n.tensor.saved_device for n in peek(tmp_path / "cpu.pth").root.tensors()} == {"cpu"}


def test_a_device_this_machine_lacks_is_refused(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["state_dict-zip"]
    with pytest.raises(ExportError, match="This machine has no cuda:3") as caught:
        export_checkpoint(_plan(built, tmp_path / "x.pth", device="cuda:3"), devices=["cpu"])
    assert caught.value.kind == "refused" and list(tmp_path.iterdir()) == []


def test_collisions_are_refused(built_checkpoints, tmp_path: Path) -> None:
    built = built_checkpoints["data_parallel-zip"]
    plan = _plan(built, tmp_path / "x.pth", renames=(KeyRule.parse_rename(r"\.(weight|bias)$=>.p"),))
    with pytest.raises(ExportError, match="Keys would become one"):
        export_checkpoint(plan)
    assert list(tmp_path.iterdir()) == []


def test_writing_over_the_source_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "model.pth"
    torch.save({"w": torch.ones(3)}, source)
    before = source.read_bytes()
    link = tmp_path / "link.pth"
    link.symlink_to(source)
    hard = tmp_path / "hard.pth"
    os.link(source, hard)
    for target in (source, link, hard, tmp_path / "." / "model.pth"):
        plan = ExportPlan(str(source), str(target), force=True)
        with pytest.raises(ExportError, match="source"):
            export_checkpoint(plan)
    assert source.read_bytes() == before and _leftovers(tmp_path) == []


def test_an_existing_target_needs_force_and_is_untouched_otherwise(tmp_path: Path) -> None:
    source = tmp_path / "model.pth"
    torch.save({"w": torch.ones(3)}, source)
    target = tmp_path / "out.pth"
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        export_checkpoint(ExportPlan(str(source), str(target)))
    assert target.read_bytes() == b"precious"
    export_checkpoint(ExportPlan(str(source), str(target), force=True))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))


@pytest.mark.parametrize("fmt", ["pth", "pth-legacy", "safetensors"])
def test_disk_full_is_a_sentence_and_leaves_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    source = tmp_path / "model.pth"
    torch.save({"a": torch.ones(1000), "b": torch.zeros(1000)}, source)
    target = tmp_path / f"out{SUFFIX[fmt]}"
    target.write_bytes(b"old contents")

    def full(*_args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer, seam = {"pth": (torch_writer, "_write_record"), "pth-legacy": (torch_writer, "write_all"),
                    "safetensors": (safetensors_writer, "write_all")}[fmt]  # fmt: skip
    monkeypatch.setattr(writer, seam, full)
    monkeypatch.setattr(safetensors_writer, "copy_range", full)
    with pytest.raises(ExportError, match="is full") as caught:
        export_checkpoint(ExportPlan(str(source), str(target), fmt, force=True))
    assert caught.value.kind == "disk-full"
    assert target.read_bytes() == b"old contents" and _leftovers(tmp_path) == []


def test_too_little_free_space_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "model.pth"
    torch.save({"a": torch.ones(1000)}, source)
    monkeypatch.setattr(file_safety.shutil, "disk_usage", lambda _p: _Usage())
    with pytest.raises(ExportError, match="is full"):
        export_checkpoint(ExportPlan(str(source), str(tmp_path / "out.pth")))
    assert list(p.name for p in tmp_path.iterdir()) == ["model.pth"]


class _Usage:
    total, used, free = 1 << 30, 1 << 30, 10


def test_a_crash_mid_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((256,), float(i)) for i in range(8)}, source)
    target = tmp_path / "out.pth"
    calls = []
    real = torch_writer._write_record

    def crash_on_third(*args: Any) -> None:
        calls.append(args[1])
        if len(calls) == 3:
            raise RuntimeError("simulated writer crash")
        real(*args)

    monkeypatch.setattr(torch_writer, "_write_record", crash_on_third)
    with pytest.raises(ExportError, match="simulated writer crash"):
        export_checkpoint(ExportPlan(str(source), str(target)))
    assert len(calls) == 3 and not target.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize(("fmt", "dtype"), [("pth", None), ("pth-legacy", None), ("safetensors", "float16")])
def test_a_byte_changed_after_it_was_written_fails_verification_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, dtype: str | None
) -> None:
    """The copy is read back from what was written, not trusted: one byte flipped once the whole
    file is written is caught (torch formats, and safetensors values converted by torch)."""
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((1024,), 1.5 + i) for i in range(4)}, source)
    # inside w2's bytes, in any format and either dtype
    pattern = torch.full((256,), 3.5, dtype=getattr(torch, dtype or "float32")).numpy().tobytes()
    target = tmp_path / f"out{SUFFIX[fmt]}"

    def flip_a_byte_of_w2(write: Any) -> Any:
        def written(*args: Any) -> Any:
            facts = write(*args)
            temp = Path(args[3])
            data = bytearray(temp.read_bytes())
            at = data.index(pattern) + 512
            data[at] ^= 0x01
            temp.write_bytes(bytes(data))
            return facts

        return written

    monkeypatch.setattr(
        export_file, "write_safetensors", flip_a_byte_of_w2(safetensors_writer.write_safetensors)
    )
    monkeypatch.setattr(torch_writer, "write_torch", flip_a_byte_of_w2(torch_writer.write_torch))
    with pytest.raises(ExportError) as caught:
        export_checkpoint(ExportPlan(str(source), str(target), fmt, dtype=dtype))
    assert caught.value.kind == "verify-failed"
    assert "values of w2 differ from the source" in caught.value.message
    assert not target.exists() and _leftovers(tmp_path) == []


def _kernel_copies(monkeypatch: pytest.MonkeyPatch, after: Any) -> None:
    """``after(out_fd, nbytes)`` once the kernel copied each tensor into a safetensors copy."""
    real = safetensors_writer.copy_range

    def copy_range(out_fd: int, in_fd: int, offset: int, count: int) -> None:
        real(out_fd, in_fd, offset, count)
        after(out_fd, count)

    monkeypatch.setattr(safetensors_writer, "copy_range", copy_range)


def test_a_byte_the_kernel_copied_wrong_fails_verification_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A safetensors copy's tensors are read back while the file is written: a byte of w2 that
    reached the file otherwise than the source holds it is caught, and the export stops there."""
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((1024,), 1.5 + i) for i in range(6)}, source)
    target = tmp_path / "out.safetensors"
    copies: list[int] = []

    def flip_in_w2(out_fd: int, count: int) -> None:
        copies.append(count)
        if len(copies) == 3:  # w2 (3.5 = 00 00 60 40): its 513th value's low byte becomes 01
            os.pwrite(out_fd, b"\x01", os.lseek(out_fd, 0, os.SEEK_CUR) - count // 2)

    _kernel_copies(monkeypatch, flip_in_w2)
    with pytest.raises(ExportError) as caught:
        export_checkpoint(ExportPlan(str(source), str(target), "safetensors", provenance=False))
    assert caught.value.kind == "verify-failed"
    assert "values of w2 differ from the source" in caught.value.message
    assert not target.exists() and _leftovers(tmp_path) == []


def test_a_safetensors_copy_is_compared_while_it_is_still_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison of the first tensors does not wait for the last one to be copied: the last
    copy waits until w0 was compared (it would wait in vain if the read-back came after the write)."""
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((4096,), float(i)) for i in range(6)}, source)
    target = tmp_path / "out.safetensors"
    compared = threading.Event()
    real_same = export_verification._same_written

    def same_written(written: Any, src: Any, t: Any) -> bool:
        ok = real_same(written, src, t)
        if t.output_key == "w0" and threading.current_thread() is not threading.main_thread():
            compared.set()
        return ok

    copies: list[int] = []

    def last_waits_for_w0(out_fd: int, count: int) -> None:
        copies.append(count)
        if len(copies) == 6 and not compared.wait(timeout=30):
            raise OSError(errno.EDEADLK, "w0 was not compared while the copy was written")

    monkeypatch.setattr(export_verification, "_same_written", same_written)
    _kernel_copies(monkeypatch, last_waits_for_w0)
    report = export_checkpoint(ExportPlan(str(source), str(target), "safetensors", provenance=False))
    assert report.tensors == 6 and len(copies) == 6
    with safe_open(str(target), framework="pt") as f:
        assert all(torch.equal(f.get_tensor(f"w{i}"), torch.full((4096,), float(i))) for i in range(6))


def test_a_tensor_that_does_not_end_where_the_header_says_fails_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes once written are never written again, so a tensor read back early is read as the
    finished file holds it: a write that leaves the file elsewhere than planned stops the export."""
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((1024,), float(i)) for i in range(4)}, source)
    target = tmp_path / "out.safetensors"

    def one_byte_back(out_fd: int, count: int) -> None:
        os.lseek(out_fd, -1, os.SEEK_CUR)

    _kernel_copies(monkeypatch, one_byte_back)
    with pytest.raises(ExportError) as caught:
        export_checkpoint(ExportPlan(str(source), str(target), "safetensors", provenance=False))
    assert "did not end where the header says" in caught.value.message
    assert not target.exists() and _leftovers(tmp_path) == []


def test_the_disk_is_asked_to_write_the_copy_while_it_is_made_and_fsyncs_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing to the disk starts during the copy; the fsync, which makes it durable, comes after
    the last byte and before the rename."""
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((4096,), float(i)) for i in range(8)}, source)
    target = tmp_path / "out.safetensors"
    events: list[str] = []

    def sync_file_range(fd: int, offset: int, nbytes: int, flags: int) -> int:
        events.append("write back")
        return 0

    real_fsync, real_write, real_move = (
        file_safety.fsync_path,
        export_file.write_safetensors,
        export_file.move_into_place,
    )

    def write(*args: Any) -> Any:
        facts = real_write(*args)
        events.append("written")
        return facts

    def fsync(path: str) -> None:
        events.append(f"fsync {os.path.getsize(path)}")
        real_fsync(path)

    def move(*args: str) -> None:
        events.append("rename")
        real_move(*args)

    real_asked = file_safety.BackgroundSync.written

    def asked(self: file_safety.BackgroundSync) -> None:
        events.append("asked")
        real_asked(self)

    monkeypatch.setattr(file_safety, "_sync_file_range", lambda: sync_file_range)
    monkeypatch.setattr(file_safety.BackgroundSync, "written", asked)
    monkeypatch.setattr(file_safety, "fsync_path", fsync)
    monkeypatch.setattr(export_file, "write_safetensors", write)
    monkeypatch.setattr(export_file, "move_into_place", move)
    export_checkpoint(ExportPlan(str(source), str(target), "safetensors", provenance=False))
    fsynced = events.index(f"fsync {target.stat().st_size}")
    assert events.index("asked") < events.index("written") < fsynced < events.index("rename")
    assert "write back" in events[:fsynced] and "write back" not in events[fsynced:]


@pytest.mark.parametrize("fmt", FORMATS)
def test_cancel_mid_way_leaves_no_file(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((256,), float(i)) for i in range(8)}, source)
    target = tmp_path / f"out{SUFFIX[fmt]}"
    seen: list[tuple[int, int]] = []
    with pytest.raises(ExportError, match="cancelled") as caught:
        export_checkpoint(
            ExportPlan(str(source), str(target), fmt),
            progress=lambda done, total: seen.append((done, total)),
            cancel=lambda: len(seen) >= 3,
        )
    assert caught.value.kind == "cancelled"
    assert 0 < seen[-1][0] < seen[-1][1]  # it stopped part of the way through
    assert not target.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cancel_while_verifying_stops_before_comparing_values(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((256,), float(i)) for i in range(8)}, source)
    target = tmp_path / f"out{SUFFIX[fmt]}"
    compared: list[int] = []
    real = export_verification._same_values
    monkeypatch.setattr(export_verification, "_same_values", lambda *a: compared.append(1) or real(*a))
    seen: list[tuple[int, int]] = []
    with pytest.raises(ExportError, match="cancelled"):
        export_checkpoint(
            ExportPlan(str(source), str(target), fmt),
            progress=lambda done, total: seen.append((done, total)),
            cancel=lambda: len(seen) > 8,  # a step to begin and one per tensor: all eight are written
        )
    assert len(seen) == 9  # the copy was complete: the cancel came during verification
    assert compared == []  # ... and stopped it before the first tensor's values were compared
    assert not target.exists() and _leftovers(tmp_path) == []


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from inspector.core.export_plan import ExportPlan
    from inspector.engine.export import export_checkpoint
    source, target, temp = sys.argv[1:4]
    plan = ExportPlan.from_json({"source": source, "target": target, "temp_path": temp, "force": True})
    calls = []
    def die_half_way(done, total):
        calls.append(done)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
    export_checkpoint(plan, progress=die_half_way)
    """
)


def test_a_killed_export_leaves_only_its_temp_file_which_the_caller_removes(tmp_path: Path) -> None:
    source = tmp_path / "model.pth"
    torch.save({f"w{i}": torch.full((4096,), float(i)) for i in range(8)}, source)
    target = tmp_path / "out.pth"
    target.write_bytes(b"old contents")
    plan = ExportPlan(str(source), str(target), force=True)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(source), str(target), plan.temp_path],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert Path(plan.temp_path).exists()  # killed mid-write: the partial file exists ...
    assert target.read_bytes() == b"old contents"  # ... but never under the target's name
    assert discard_partial(plan)  # what the engine client does once a killed worker is gone
    assert _leftovers(tmp_path) == [] and target.read_bytes() == b"old contents"


def test_unsupported_sources_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "paths.pth"
    text.write_text("import os\n/some/dir\n")
    with pytest.raises(ExportError, match="not a checkpoint"):
        export_checkpoint(ExportPlan(str(text), str(tmp_path / "o.pth")))


def test_worker_runs_exports_and_reports_progress(engine, built_checkpoints, tmp_path: Path) -> None:
    from dataclasses import replace

    from inspector.engine.protocol import ErrorKind, ExportRequest, Failure, Result

    built = built_checkpoints["training-zip"]
    target = tmp_path / "w.safetensors"
    plan = _plan(built, target, "safetensors", dtype="float16")
    answer = engine.run(ExportRequest(plan))
    assert isinstance(answer, Result), answer
    assert ExportRequest(plan).reply(answer.data).tensors > 0 and target.exists()
    progress = engine.events.progress_of(answer.job)
    assert progress and progress[-1].done == progress[-1].total > 0
    assert engine.events.ends_of(answer.job) == [answer]  # progress on the way, one answer at the end
    refused = engine.run(ExportRequest(replace(plan, temp_path="")))
    assert isinstance(refused, Failure) and refused.kind is ErrorKind.REFUSED
    assert "already exists" in refused.message


def test_export_refuses_to_allow_a_dangerous_global_before_importing_it(tmp_path: Path) -> None:
    """Export resolves allowed globals through the loader's gate, like loading does."""
    import torch

    from inspector.core.export_plan import ExportPlan
    from inspector.engine.export import ExportError, export_checkpoint

    src = tmp_path / "src.pth"
    torch.save({"w": torch.ones(2)}, src)
    plan = ExportPlan(source=str(src), target=str(tmp_path / "out.pth"), allowed_globals=("posix.system",))
    with pytest.raises(ExportError) as info:
        export_checkpoint(plan)
    assert "posix.system" in info.value.message and info.value.kind == "unsafe"
    assert not (tmp_path / "out.pth").exists()


@pytest.mark.parametrize("dtype", [None, "float16"])
def test_a_huge_stride_0_view_exports_as_its_storage_as_torch_saves_it(
    tmp_path: Path, dtype: str | None
) -> None:
    """2**38 elements viewing four stored values: written and verified through the storage, never expanded."""
    source = tmp_path / "zero.pth"
    view = torch.arange(4.0).as_strided((1 << 18, 1 << 18, 4), (0, 0, 1))
    torch.save({"w": view, "plain": torch.ones(3)}, source)
    target = tmp_path / "out.pth"
    report = export_checkpoint(ExportPlan(str(source), str(target), dtype=dtype))
    assert report.tensors == 2 and target.stat().st_size < 4096
    back = torch.load(target, weights_only=True)["w"]
    assert back.shape == view.shape and back.stride() == view.stride()
    assert torch.equal(back[12345, 678], view[12345, 678].to(back.dtype))


def test_an_expanded_view_is_written_to_safetensors_block_by_block(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    base = torch.randn(7, generator=torch.Generator().manual_seed(1))
    source = tmp_path / "expanded.pth"
    torch.save({"w": base.expand(3000, 7), "t": torch.arange(12.0).view(3, 4).t()}, source)
    target = tmp_path / "out.safetensors"
    export_checkpoint(ExportPlan(str(source), str(target), "safetensors"))
    back = load_file(str(target))
    assert torch.equal(back["w"], base.expand(3000, 7).contiguous())
    assert torch.equal(back["t"], torch.arange(12.0).view(3, 4).t().contiguous())


# -- safetensors exports read the file straight, never through torch.load -------------------------


@contextlib.contextmanager
def _no_torch_load() -> Iterator[None]:
    """torch.load and torch.jit.load raise inside: nothing may unpickle the file with Python."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "load", refuse)
        patch.setattr(torch.jit, "load", refuse)
        yield


def _plain(value: Any) -> Any:
    """A loaded value as JSON sees it (tuples as lists)."""
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("case_id", [c for c in CASE_IDS if not c.startswith("dtypes-")])
def test_safetensors_export_reads_tensors_and_values_from_the_file_itself(
    built_checkpoints, tmp_path: Path, case_id: str
) -> None:
    """Without torch.load (and without allowing anything): every tensor bit-identical, and every
    value written to the metadata is the value torch would load, as JSON."""
    built = built_checkpoints[case_id]
    target = tmp_path / "out.safetensors"
    with _no_torch_load():
        report = export_checkpoint(ExportPlan(str(built.path), str(target), "safetensors"))
    assert report.target == str(target) and target.is_file()
    original = dict(walk(built.torch_load()))
    mapping = map_keys(peek(built.path), ExportPlan(str(built.path), str(target), "safetensors"))
    with safe_open(str(target), framework="pt") as f:
        metadata = f.metadata()
        for t in mapping.tensors:
            assert _same(f.get_tensor(t.alias_of or t.output_key), original[t.source_path])
    loaded = built.torch_load()
    for fate in mapping.values:
        if fate.fate == "metadata":
            value = loaded
            for part in fate.source_path:
                value = value[part] if isinstance(value, dict | list | tuple) else getattr(value, str(part))
            key = ".".join(str(p) for p in fate.source_path)
            assert json.loads(metadata[key]) == _plain(value), key
    assert sorted(report.values_in_metadata) == sorted(
        v.source_key for v in mapping.values if v.fate == "metadata"
    )


def _payload_file(folder: Path) -> tuple[Path, Path]:
    """Tensors beside a pickle that, unpickled, would run a command (touch MARKER)."""
    marker = folder / "MARKER"
    path = folder / "payload.pth"

    class _Runs:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    torch.save({"weight": torch.arange(6.0).view(2, 3), "epoch": 3, "payload": _Runs()}, path)
    return path, marker


def test_a_dangerous_file_exports_to_safetensors_without_trust_and_nothing_runs(tmp_path: Path) -> None:
    path, marker = _payload_file(tmp_path)
    target = tmp_path / "out.safetensors"
    with _no_torch_load():
        report = export_checkpoint(ExportPlan(str(path), str(target), "safetensors"))
    assert report.target == str(target) and not marker.exists()
    assert report.values_in_metadata == ["epoch"] and report.values_dropped == ["payload (not plain data)"]
    assert "its pickle is not run" in " ".join(report.summary())
    with safe_open(str(target), framework="pt") as f:
        assert torch.equal(f.get_tensor("weight"), torch.arange(6.0).view(2, 3))
        assert f.metadata().keys() - {PROVENANCE_KEY} == {"format", "epoch"} and f.metadata()["epoch"] == "3"


def test_a_dangerous_file_is_copied_to_pth_only_when_trusted(tmp_path: Path) -> None:
    path, marker = _payload_file(tmp_path)
    with pytest.raises(ExportError) as refused:
        export_checkpoint(ExportPlan(str(path), str(tmp_path / "out.pth"), "pth"))
    assert refused.value.kind == "unsafe" and "can run code" in refused.value.message
    assert not marker.exists() and not (tmp_path / "out.pth").exists()


def _scripted(folder: Path) -> tuple[Path, torch.nn.Module]:
    import warnings

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    path = folder / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net), str(path))
    return path, net


def test_a_torchscript_archive_exports_its_weights_to_safetensors(tmp_path: Path) -> None:
    path, net = _scripted(tmp_path)
    target = tmp_path / "weights.safetensors"
    with _no_torch_load():
        report = export_checkpoint(ExportPlan(str(path), str(target), "safetensors"))
    assert report.target == str(target) and target.is_file()
    assert "Only the weights are written: the archive's TorchScript code is not exported." in report.summary()
    with safe_open(str(target), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    assert {k: v.shape for k, v in stored.items()} == {k: v.shape for k, v in net.state_dict().items()}
    assert all(_same(stored[k], v) for k, v in net.state_dict().items())


def test_a_torchscript_archive_is_not_copied_to_a_torch_format(tmp_path: Path) -> None:
    path, _ = _scripted(tmp_path)
    for fmt in ("pth", "pth-legacy"):
        with pytest.raises(ExportError, match="exported as its weights only, to safetensors"):
            export_checkpoint(ExportPlan(str(path), str(tmp_path / "out.pth"), fmt, trusted=True))
    assert _leftovers(tmp_path) == [] and not (tmp_path / "out.pth").exists()


def test_a_numpy_1_file_copied_to_pth_verifies_under_the_names_it_is_written_with(tmp_path: Path) -> None:
    """The source names numpy.core.*; numpy 2 pickles the same objects as numpy._core.*: the copy
    verifies with exactly those objects allowed, under the names the copy uses."""
    import numpy as np

    from tests import hostile_globals

    path = tmp_path / "numpy1.pth"
    torch.save({"w": torch.ones(2), "mean": np.arange(3, dtype=np.float32)}, path)
    hostile_globals.rename_module(path, "numpy._core.multiarray", "numpy.core.multiarray")
    needed = tuple(dict.fromkeys(g.qualname for g in peek(str(path)).unsafe_globals))
    assert "numpy.core.multiarray._reconstruct" in needed
    target = tmp_path / "out.pth"
    report = export_checkpoint(ExportPlan(str(path), str(target), "pth", allowed_globals=needed))
    assert report.target == str(target) and target.is_file()
    written = {g.qualname for g in peek(str(target)).unsafe_globals}
    assert "numpy._core.multiarray._reconstruct" in written


def test_a_shard_set_says_its_values_are_not_written_in_the_plan_and_the_report(
    built_checkpoints, tmp_path: Path
) -> None:
    built = built_checkpoints["training-zip"]
    plan = ExportPlan(str(built.path), str(tmp_path / "set"), "hf-sharded")
    planned = map_keys(peek(built.path), plan)
    assert {v.fate for v in planned.values} == {"dropped"} and planned.values
    report = export_checkpoint(plan)
    assert report.values_in_metadata == []
    assert report.values_dropped == [
        f"{v.source_key} (a shard set holds tensors only)" for v in planned.values
    ]
