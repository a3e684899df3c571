"""The numbers ``stats`` prints are the same on every machine: they do not change with the number of
threads NumPy's BLAS would otherwise start (one per core), which add up a dot product in pieces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import REPO_ROOT


def _stats(path: Path, threads: str | None) -> dict[str, object]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    env.pop("OPENBLAS_NUM_THREADS", None)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = threads
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "stats", str(path), "w", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stats: dict[str, object] = json.loads(proc.stdout)["tensors"][0]["stats"]
    return stats


def test_the_norm_and_std_do_not_depend_on_the_machines_cores(tmp_path: Path) -> None:
    """Large enough that a BLAS of several threads splits its sums (it does from 10,000 elements)."""
    generator = torch.Generator().manual_seed(0)
    torch.save({"w": torch.randn(4_000_000, dtype=torch.float64, generator=generator)}, tmp_path / "w.pth")
    default, one = _stats(tmp_path / "w.pth", None), _stats(tmp_path / "w.pth", "1")
    assert (default["l2_norm"], default["std"], default["mean"]) == (one["l2_norm"], one["std"], one["mean"])
    assert {k: v for k, v in default.items() if k != "seconds"} == {
        k: v for k, v in one.items() if k != "seconds"
    }
