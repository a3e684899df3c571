"""``checkpoint-inspector diff A B`` and ``checkpoint-inspector stats FILE [KEY ...]``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.checkpoints import BuiltCheckpoint
from tests.conftest import CliRunner
from tests.layouts import sample_state, write_dcp, write_hf_set, write_view


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("diff")
    gen = torch.Generator().manual_seed(11)
    a = {
        "w1": torch.randn(16, 4, generator=gen),
        "w2": torch.randn(16, generator=gen),
        "w3": torch.randn(4, 4, generator=gen),
        "gone": torch.zeros(3),
        "old_name": torch.arange(5.0),
        "half": torch.randn(8, generator=gen),
    }
    b = dict(a)
    b["w1"] = a["w1"] * 1.5  # the largest change
    b["w2"] = a["w2"] + 1e-3  # a small one
    b["w3"] = a["w3"].clone()
    b["w3"][0, 0] = math.nan
    del b["gone"]
    b["new_name"] = b.pop("old_name")
    b["half"] = a["half"].half()
    paths = folder / "a.pt", folder / "b.pt", folder / "a_copy.pt"
    torch.save(a, paths[0])
    torch.save(b, paths[1])
    torch.save({k: v.clone() for k, v in a.items()}, paths[2], _use_new_zipfile_serialization=False)
    return paths


def test_diff_json_has_every_field_and_exit_1(cli: CliRunner, pair: tuple[Path, Path, Path]) -> None:
    a, b, _ = pair
    result = cli.run("diff", a, b, "--json")
    assert result.returncode == 1, result.describe()
    report = json.loads(result.stdout)
    assert report["summary"] == "3 changed, 1 dtype changed, 1 renamed?, 1 only in A"
    rows = {r["key"]: r for r in report["tensors"]}
    assert rows["w1"]["status"] == "changed"
    assert rows["w1"]["rel_l2"] == pytest.approx(0.5)
    assert rows["w1"]["cosine"] == pytest.approx(1.0)
    assert rows["w3"]["nonfinite_mismatch"] == 1
    assert rows["half"]["status"] == "dtype" and rows["half"]["dtype_b"] == "float16"
    assert rows["old_name"]["status"] == "renamed" and rows["old_name"]["key_b"] == "new_name"
    assert rows["gone"]["status"] == "only_a"
    assert set(rows["w1"]) >= {"key_a", "key_b", "shape_a", "shape_b", "dtype_a", "dtype_b", "max_abs_diff"}
    assert report["identical"] is False and report["counts"]["changed"] == 3


def test_diff_text_sorted_by_largest_change(cli: CliRunner, pair: tuple[Path, Path, Path]) -> None:
    a, b, _ = pair
    by_change, by_key = cli.run_many([("diff", a, b), ("diff", a, b, "--sort", "key")])
    assert by_change.returncode == 1, by_change.describe()

    def changed_keys(stdout: str) -> list[str]:
        return [line.split()[4] for line in stdout.splitlines() if line.startswith("changed")]

    # w3 has a NaN where A has a number (rel L2 over the rest is 0): it sorts after the real changes
    assert changed_keys(by_change.stdout) == ["w1", "w2", "w3"]
    assert "[1 NaN/Inf positions differ]" in by_change.stdout
    assert "old_name → new_name" in by_change.stdout
    assert "Summary: 3 changed, 1 dtype changed, 1 renamed?, 1 only in A" in by_change.stdout
    assert changed_keys(by_key.stdout) == ["w1", "w2", "w3"]
    lines = by_key.stdout.splitlines()
    assert lines.index(next(ln for ln in lines if "gone" in ln)) < lines.index(
        next(ln for ln in lines if ln.startswith("changed"))
    )


def test_diff_identical_exit_0_and_unreadable_exit_2(
    cli: CliRunner, pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    a, _, copy = pair
    text = tmp_path / "paths.pth"
    text.write_text("/usr/lib/python3\n")
    same, broken = cli.run_many([("diff", a, copy), ("diff", a, text)])
    assert same.returncode == 0, same.describe()
    assert "(identical)" in same.stdout
    assert broken.returncode == 2, broken.describe()
    assert "paths.pth" in broken.stderr and "Traceback" not in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def test_diff_reports_the_data_parallel_prefix(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    result = cli.run(
        "diff",
        built_checkpoints["data_parallel-zip"].path,
        built_checkpoints["state_dict-zip"].path,
        "--json",
    )
    report = json.loads(result.stdout)
    assert result.returncode == 1  # same values, but the keys differ by the prefix
    assert report["prefix_a"] == "module." and report["counts"]["equal"] == len(report["tensors"])
    assert "module." in report["prefix_note"]


def test_stats_all_and_named(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    bad = torch.ones(10)
    bad[2] = math.inf
    torch.save({"ok": torch.arange(6.0).view(2, 3), "bad": bad, "flags": torch.tensor([True, False])}, path)
    every, named, text, missing = cli.run_many(
        [
            ("stats", path, "--json"),
            ("stats", path, "ok", "--json", "--bins", "3"),
            ("stats", path),
            ("stats", path, "nope"),
        ]
    )
    assert every.returncode == 0, every.describe()
    report = every.json()
    assert report["flagged"] == ["bad"]
    rows = {r["key"]: r["stats"] for r in report["tensors"]}
    assert rows["ok"]["mean"] == 2.5 and rows["ok"]["max"] == 5.0
    assert rows["bad"]["posinf"] == 1
    assert rows["flags"]["true"] == 1
    ok = named.json()["tensors"][0]["stats"]
    assert ok["histogram"]["counts"] == [2, 2, 2]
    assert text.returncode == 0 and "1 tensor(s) hold NaN or Inf: bad" in text.stdout
    assert "std (n−1)" in text.stdout.splitlines()[0]  # the sample std, as torch.std and the window say
    assert missing.returncode == 2 and "no tensor named nope" in missing.stderr


def test_stats_of_views_that_claim_too_much_are_sentences(cli: CliRunner, tmp_path: Path) -> None:
    numel = write_view(tmp_path / "numel.pth", (1 << 40, 1 << 40, 1 << 40), (0, 0, 0))
    stride = write_view(tmp_path / "stride.pth", (4, 2), (1 << 62, 1))
    zero = tmp_path / "zero.pth"
    torch.save({"w": torch.arange(4.0).as_strided((1 << 18, 1 << 18), (0, 0))}, zero)
    results = cli.run_many([("stats", numel, "w"), ("stats", stride, "w"), ("stats", numel, "--json"),
                            ("stats", zero, "--json")])  # fmt: skip
    for result in results[:2]:
        assert result.returncode == 2, result.describe()
        assert "Traceback" not in result.stderr and "Unexpected" not in result.stderr
    assert "more than torch can address" in results[0].stderr
    assert "reach past the end of its 16-byte storage" in results[1].stderr
    row = results[2].json()["tensors"][0]
    assert "stats" not in row and "more than torch can address" in row["error"]
    stats = results[3].json()["tensors"][0]["stats"]
    assert stats["numel"] == 1 << 36 and stats["zeros"] == 1 << 36 and stats["max"] == 0.0


def test_a_view_with_a_negative_stride_is_a_sentence(cli: CliRunner, tmp_path: Path) -> None:
    """torch refuses negative strides; the direct read names the problem instead of reading backwards."""
    backwards = write_view(tmp_path / "backwards.pth", (2, 2), (-1, 1))
    result = cli.run("stats", backwards, "w")
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr and "Unexpected" not in result.stderr
    assert "negative stride or offset" in result.stderr


def test_stats_of_a_set_however_it_was_opened(cli: CliRunner, tmp_path: Path) -> None:
    state = sample_state()
    write_hf_set(tmp_path / "hf", state)
    folder = write_dcp(tmp_path / "ckpt", {"w": torch.arange(6.0).view(2, 3), "step": 1})
    hf = tmp_path / "hf"
    runs = cli.run_many([
        ("stats", hf, "--json"), ("stats", hf / "model.index.json", "--json"),
        ("stats", hf / "model-00002-of-00002.bin", "--json"), ("stats", folder, "w", "--json"),
    ])  # fmt: skip
    tables = [{r["key"]: r["stats"]["mean"] for r in run.json()["tensors"]} for run in runs[:3]]
    assert tables[0] == tables[1] == tables[2]
    assert set(tables[0]) == set(state)
    assert tables[0]["lm_head.bias"] == 2.0
    w = runs[3].json()["tensors"][0]["stats"]
    assert (w["mean"], w["max"]) == (2.5, 5.0)


def _legacy_and_safetensors(folder: Path) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    state = {
        "bf16": torch.randn(40, 7, generator=gen).to(torch.bfloat16),
        "fp8": (torch.randn(64, generator=gen) * 4).to(torch.float8_e4m3fn),
        "half_T": torch.randn(6, 9, generator=gen).half().t(),
        "c64": torch.randn(12, dtype=torch.complex64, generator=gen),
        "flags": torch.rand(30, generator=gen) < 0.5,
        "ids": torch.randint(-50, 50, (25,), generator=gen, dtype=torch.int64),
    }
    legacy = folder / "legacy.pt"
    torch.save({k: v for k, v in state.items() if k != "fp8"}, legacy, _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    single = folder / "one.safetensors"
    save_file({k: v.contiguous() for k, v in state.items() if k != "c64"}, str(single))
    return legacy, single, state


def test_stats_reads_the_bytes_without_importing_torch(cli: CliRunner, tmp_path: Path) -> None:
    """``stats`` of a zip, legacy, safetensors file or shard set needs NumPy, never torch, and its
    numbers are torch's."""
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    legacy, single, state = _legacy_and_safetensors(tmp_path)
    write_hf_set(tmp_path / "hf", sample_state())
    runs = [
        cli.probe_imports("stats", example),
        cli.probe_imports("stats", example, "model.norm.bias", "--json"),
        cli.probe_imports("stats", legacy, "--json"),
        cli.probe_imports("stats", single, "fp8", "bf16", "--json"),
        cli.probe_imports("stats", tmp_path / "hf", "--json"),
    ]
    for run in runs:
        assert run.returncode == 0, run.describe()
        assert run.torch_modules == (), run.describe()
    bias = torch.load(example, weights_only=True)["model"]["norm.bias"]
    assert runs[1].json()["tensors"][0]["stats"]["std"] == pytest.approx(bias.std().item(), rel=1e-6)
    for run in runs[2:4]:
        for row in run.json()["tensors"]:
            t = state[row["key"]]
            wide = t.to(torch.complex128).abs() if t.is_complex() else t.double()
            got = row["stats"]
            assert got["numel"] == t.numel(), row["key"]
            assert got["mean"] == pytest.approx(wide.mean().item(), rel=1e-12), row["key"]
            assert got["max"] == pytest.approx(wide.max().item(), rel=1e-12), row["key"]
            if t.numel() > 1:
                assert got["std"] == pytest.approx(wide.std().item(), rel=1e-9), row["key"]
    fp8 = next(r for r in runs[3].json()["tensors"] if r["key"] == "fp8")["stats"]
    assert sum(fp8["histogram"]["counts"]) == 64
    assert len(runs[4].json()["tensors"]) == len(sample_state())


def test_stats_std_is_torchs(cli: CliRunner) -> None:
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    result = cli.run("stats", example, "model.norm.bias", "--json")
    stats = result.json()["tensors"][0]["stats"]
    bias = torch.load(example, weights_only=True)["model"]["norm.bias"]
    assert stats["std_correction"] == 1
    assert stats["std"] == pytest.approx(bias.std().item(), rel=1e-6)


def test_diff_of_the_example_against_its_stripped_export_pairs_every_key(
    cli: CliRunner, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"
    stripped = tmp_path / "stripped.safetensors"
    export = cli.run("export", example, "-o", stripped, "--strip-prefix", "model.")
    assert export.returncode == 0, export.describe()
    text, data = cli.run_many([("diff", example, stripped), ("diff", example, stripped, "--json")])
    assert text.returncode == 1, text.describe()
    report = json.loads(data.stdout)
    assert report["counts"]["only_a"] == report["counts"]["only_b"] == report["counts"]["renamed"] == 0
    assert report["prefix_a"] == "model." and report["counts"]["equal"] == len(report["tensors"])
    assert "Not identical: 28 keys of A carry “model.”" in text.stdout


def test_keys_from_the_file_are_shown_escaped(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "esc.pt"
    torch.save({"a\x1b[31mred\udc80": torch.ones(2), "b": torch.zeros(2)}, path)
    other = tmp_path / "other.pt"
    torch.save({"b": torch.ones(2)}, other)
    text, data, diff = cli.run_many([("stats", path), ("stats", path, "--json"), ("diff", path, other)])
    for result in (text, diff):
        assert "\x1b" not in result.stdout and "a\\x1b[31mred\\udc80" in result.stdout, result.describe()
    assert data.returncode == 0 and json.loads(data.stdout)["tensors"][0]["key"] == "a\x1b[31mred\udc80"
