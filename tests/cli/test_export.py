"""``checkpoint-inspector export``: dry run, refusals as one line with exit 2, verified writes."""

from __future__ import annotations

from pathlib import Path

import torch

from inspector.core.provenance import PROVENANCE_KEY
from tests.checkpoints import TinyNet


def test_dry_run_lists_before_and_after_and_writes_nothing(cli, built_checkpoints, tmp_path: Path) -> None:
    source = built_checkpoints["data_parallel-zip"].path
    target = tmp_path / "plain.safetensors"
    result = cli.run("export", source, "-o", target, "--strip-prefix", "module.", "--dtype", "bfloat16",
                     "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.describe()
    lines = result.stdout.splitlines()
    assert "module.embed.weight → embed.weight  float32→bfloat16" in lines
    assert "module.norm.num_batches_tracked → norm.num_batches_tracked" in lines
    assert "as safetensors; nothing written (dry run)." in lines[-1] and "KiB" in lines[-1]
    assert not target.exists()


def test_export_writes_a_verified_file_that_loads(cli, built_checkpoints, tmp_path: Path) -> None:
    source = built_checkpoints["training-zip"].path
    target = tmp_path / "model.pth"
    result = cli.run("export", source, "-o", target, "--subtree", "model", "--map", "cpu=cpu")
    assert result.returncode == 0, result.describe()
    assert "verified." in result.stdout and "16 tensors" in result.stdout
    assert result.stderr == ""  # no progress bar: stderr is not a terminal
    TinyNet().load_state_dict(torch.load(target, weights_only=True), strict=True)


def test_refusals_are_one_line_with_exit_2(cli, built_checkpoints, tmp_path: Path) -> None:
    source = built_checkpoints["data_parallel-zip"].path
    existing = tmp_path / "existing.pth"
    existing.write_bytes(b"keep me")
    results = cli.run_many(
        [
            ("export", source, "-o", existing),
            ("export", source, "-o", tmp_path / "c.pth", "--rename", r"^module\.layers\.\d+=>x"),
            ("export", source, "-o", tmp_path / "d.pth", "--rename", "(=>x"),
            ("export", source, "-o", source, "--force"),
            ("export", source, "-o", tmp_path / "e.pth", "--device", "cuda:7"),
            ("export", source, "-o", tmp_path / "f.pth", "--rename", r"^module\.layers\.\d+=>x", "--dry-run"),
        ]
    )
    expected = ["already exists", "Keys would become one", "not a valid regular expression",
                "source file itself", "no cuda:7", "Keys would become one"]  # fmt: skip
    for result, words in zip(results, expected, strict=True):
        assert result.returncode == 2, result.describe()
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.describe()
        assert "Traceback" not in result.stderr
    assert existing.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.pth"]


def test_force_replaces_and_metadata_reaches_safetensors(cli, built_checkpoints, tmp_path: Path) -> None:
    from safetensors import safe_open

    source = built_checkpoints["state_dict-zip"].path
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old")
    result = cli.run("export", source, "-o", target, "--force", "--metadata", "license=mit")
    assert result.returncode == 0, result.describe()
    with safe_open(str(target), framework="pt") as f:
        metadata = f.metadata()
        assert metadata.pop(PROVENANCE_KEY) and metadata == {"format": "pt", "license": "mit"}


def test_a_safetensors_copy_of_directly_read_bytes_never_imports_torch(cli, tmp_path: Path) -> None:
    """Bytes to bytes: a zip file's tensors, a transposed view among them, reach safetensors as they are."""
    gen = torch.Generator().manual_seed(2)
    state = {
        "w": torch.randn(6, 5, generator=gen).to(torch.bfloat16),
        "w_T": torch.randn(4, 7, generator=gen).t(),
        "shared": torch.arange(12, dtype=torch.int32).view(3, 4)[1:],
        "empty": torch.zeros(0, 3),
    }
    source, target = tmp_path / "m.pt", tmp_path / "m.safetensors"
    torch.save(state, source)
    result = cli.probe_imports("export", source, "-o", target)
    assert result.returncode == 0, result.describe()
    assert result.torch_modules == (), result.describe()
    from safetensors.torch import load_file

    written = load_file(str(target))
    assert set(written) == set(state)
    for key, tensor in state.items():
        assert written[key].dtype == tensor.dtype and torch.equal(written[key], tensor), key
