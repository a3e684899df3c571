"""Checkpoint diff: changed, removed, renamed and dtype-changed tensors; DataParallel prefixes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from inspector.engine.diff import compare_tensors, diff_checkpoints
from inspector.engine.stats import StatsCancelled
from tests.checkpoints import BuiltCheckpoint


def _base() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return {
        "embed.weight": torch.randn(50, 8, generator=gen),
        "layers.0.weight": torch.randn(8, 8, generator=gen),
        "layers.0.bias": torch.randn(8, generator=gen),
        "layers.1.weight": torch.randn(8, 8, generator=gen),
        "norm.weight": torch.ones(8),
        "head.weight": torch.randn(3, 8, generator=gen),
        "steps": torch.tensor(10),
    }


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    a = _base()
    b = dict(a)
    b["layers.0.weight"] = a["layers.0.weight"].clone()
    b["layers.0.weight"][2, 3] += 0.5  # changed
    del b["layers.1.weight"]  # removed
    b["final_norm.weight"] = b.pop("norm.weight")  # renamed
    b["head.weight"] = a["head.weight"].to(torch.bfloat16)  # dtype changed
    path_a, path_b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(a, path_a)
    torch.save(b, path_b, _use_new_zipfile_serialization=False)  # streaming works across formats
    return path_a, path_b, a, b


def test_changed_removed_renamed_and_dtype_changed(pair: tuple[Path, Path, dict, dict]) -> None:
    path_a, path_b, a, b = pair
    events: list[tuple[int, int, str]] = []
    report = diff_checkpoints(str(path_a), str(path_b), progress=lambda *e: events.append(e))
    by_status: dict[str, list[tuple[str | None, str | None]]] = {}
    for entry in report.entries:
        by_status.setdefault(entry.status, []).append((entry.key_a, entry.key_b))
    assert by_status == {
        "equal": [("embed.weight", "embed.weight"), ("layers.0.bias", "layers.0.bias"), ("steps", "steps")],
        "changed": [("layers.0.weight", "layers.0.weight")],
        "dtype": [("head.weight", "head.weight")],
        "renamed": [("norm.weight", "final_norm.weight")],
        "only_a": [("layers.1.weight", None)],
    }
    assert report.summary == "3 equal, 1 changed, 1 dtype changed, 1 renamed?, 1 only in A"
    assert not report.identical

    changed = next(e for e in report.entries if e.status == "changed")
    wa, wb = a["layers.0.weight"].double().numpy(), b["layers.0.weight"].double().numpy()
    assert changed.max_abs_diff == pytest.approx(0.5, rel=1e-6)
    assert changed.rel_l2 == pytest.approx(np.linalg.norm(wa - wb) / np.linalg.norm(wa), rel=1e-12)
    cos = float(np.dot(wa.ravel(), wb.ravel()) / (np.linalg.norm(wa) * np.linalg.norm(wb)))
    assert changed.cosine == pytest.approx(cos, rel=1e-12)

    head = next(e for e in report.entries if e.status == "dtype")
    assert (head.dtype_a, head.dtype_b) == ("float32", "bfloat16")
    ha = a["head.weight"].double()
    assert head.max_abs_diff == pytest.approx(float((ha - b["head.weight"].double()).abs().max()))
    assert head.cosine is not None and head.cosine > 0.999

    assert events and events[-1][0] == events[-1][1]  # progress reaches the total
    assert [e[0] for e in events] == sorted(e[0] for e in events)


def test_identical_copy_in_the_other_format(built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    report = diff_checkpoints(
        str(built_checkpoints["training-zip"].path), str(built_checkpoints["training-legacy"].path)
    )
    assert report.identical
    assert report.counts["equal"] == len(report.entries) > 10


def test_data_parallel_copy_is_detected_as_a_prefix(built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    report = diff_checkpoints(
        str(built_checkpoints["data_parallel-zip"].path), str(built_checkpoints["state_dict-zip"].path)
    )
    assert (report.match.prefix_a, report.match.prefix_b) == ("module.", "")
    assert report.counts["equal"] == len(report.entries)
    assert all(e.key_a == f"module.{e.key_b}" for e in report.entries)
    assert not report.identical  # the keys still differ
    assert "module." in str(report.to_json()["prefix_note"])


def test_nan_and_inf_positions() -> None:
    a = torch.tensor([1.0, math.nan, math.inf, 2.0, math.nan])
    b = torch.tensor([1.0, math.nan, math.inf, 3.0, 0.0])
    d = compare_tensors(a, b, chunk=2)
    assert d.status == "changed"
    assert d.nonfinite_mismatch == 1
    assert d.max_abs_diff == 1.0
    assert d.rel_l2 == pytest.approx(1 / math.sqrt(5))


def test_signed_zero_is_equal_and_zero_tensors_have_no_cosine() -> None:
    d = compare_tensors(torch.tensor([0.0, 1.0]), torch.tensor([-0.0, 1.0]))
    assert d.status == "equal"
    zeros = compare_tensors(torch.zeros(3), torch.zeros(3))
    assert zeros.status == "equal" and zeros.cosine is None


def test_complex_and_int() -> None:
    za = torch.tensor([1 + 1j, 2 - 1j])
    zb = torch.tensor([1 + 1j, 2 + 1j])
    d = compare_tensors(za, zb)
    assert d.max_abs_diff == pytest.approx(2.0)
    ia, ib = torch.arange(10), torch.arange(10).flip(0)
    di = compare_tensors(ia, ib, chunk=3)
    assert di.max_abs_diff == 9.0 and di.status == "changed"


def test_shape_change_and_cancel() -> None:
    assert compare_tensors(torch.zeros(2, 3), torch.zeros(3, 2)).status == "shape"
    with pytest.raises(StatsCancelled):
        compare_tensors(torch.zeros(100), torch.ones(100), chunk=10, cancelled=lambda: True)


def test_diff_and_stats_all_jobs_report_progress(engine, pair: tuple[Path, Path, dict, dict]) -> None:
    from inspector.engine.protocol import DiffRequest, Result, StatsAllRequest

    path_a, path_b, _, _ = pair
    diff = DiffRequest(str(path_a), str(path_b))
    answer = engine.run(diff)
    assert isinstance(answer, Result), answer
    assert diff.reply(answer.data).summary == "3 equal, 1 changed, 1 dtype changed, 1 renamed?, 1 only in A"
    progress = engine.events.progress_of(answer.job)
    assert progress and progress[-1].done == progress[-1].total > 0
    every_tensor = StatsAllRequest(str(path_a))
    every = engine.run(every_tensor)
    assert isinstance(every, Result)
    reply = every_tensor.reply(every.data)
    assert reply.flagged == () and len(reply.stats) == 7
    assert engine.events.progress_of(every.job)


def test_a_prefix_on_some_keys_of_one_side_pairs_them() -> None:
    """A training checkpoint against its export with ``model.`` stripped from the model part."""
    from inspector.core.diff import TensorSpec, match_keys

    model = {"embed.weight": (10, 4), "layers.0.weight": (4, 4), "layers.0.bias": (4,), "norm.bias": (4,)}
    rest = {"optimizer.state.0.exp_avg": (10, 4), "optimizer.state.1.exp_avg": (4, 4)}
    a = {f"model.{k}": TensorSpec(f"model.{k}", s, "float32") for k, s in model.items()}
    a.update({k: TensorSpec(k, s, "float32") for k, s in rest.items()})
    b = {k: TensorSpec(k, s, "float32") for k, s in {**model, **rest}.items()}
    match = match_keys(a, b)
    assert (match.prefix_a, match.prefix_b, match.only_a, match.only_b) == ("model.", "", [], [])
    assert ("model.norm.bias", "norm.bias") in match.common and len(match.common) == 6
    assert match.prefix_note is not None and "4 of the 6 keys of A" in match.prefix_note


def test_a_strip_applied_to_one_subtree_pairs_it() -> None:
    from inspector.core.diff import TensorSpec, match_keys

    keys_a = ["model.encoder.proj.weight", "model.encoder.proj.bias", "model.decoder.proj.weight"]
    keys_b = ["proj.weight", "proj.bias", "model.decoder.proj.weight"]
    match = match_keys({k: TensorSpec(k, (2,), "float32") for k in keys_a},
                       {k: TensorSpec(k, (2,), "float32") for k in keys_b})  # fmt: skip
    assert match.prefix_a == "model.encoder." and match.only_a == match.only_b == []
    assert ("model.encoder.proj.bias", "proj.bias") in match.common


def test_the_report_says_why_it_is_not_identical(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    a = _base()
    torch.save({"model": a, "step": torch.tensor(3)}, tmp_path / "a.pt")
    save_file(
        {**{k: v.contiguous() for k, v in a.items()}, "step": torch.tensor(3)},
        str(tmp_path / "b.safetensors"),
    )
    report = diff_checkpoints(str(tmp_path / "a.pt"), str(tmp_path / "b.safetensors"))
    assert report.counts["equal"] == len(a) + 1 and not report.identical
    assert report.differences == [f"{len(a)} keys of A carry “model.”, the other side's do not"]
    assert report.to_json()["differences"] == report.differences
