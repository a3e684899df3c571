"""The example checkpoint the README opens: shipped, small, and what its script makes."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from inspector.core.peek import peek

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources/examples/tiny_transformer_training.pth"


def test_shipped_example_is_a_small_training_checkpoint() -> None:
    assert SHIPPED.stat().st_size < 1_000_000
    index = peek(SHIPPED)
    top = {child.name for child in index.root.children}
    assert {"model", "optimizer", "scheduler", "epoch", "args"} <= top
    keys = {n.key for n in index.root.tensors()}
    assert "model.layers.0.attn.q_proj.weight" in keys
    assert "optimizer.state.0.exp_avg" in keys


def _assert_close(made: Any, shipped: Any, where: str) -> None:
    """Same structure, same tensor shapes and dtypes, values equal within float tolerance.

    Two Adam steps on another CPU may round a few values differently (one ulp), so the values are
    compared the way a user would compare two runs, not bit for bit.
    """
    assert type(made) is type(shipped), where
    if isinstance(made, torch.Tensor):
        assert (made.shape, made.dtype) == (shipped.shape, shipped.dtype), where
        if made.is_floating_point():
            assert torch.allclose(made, shipped, rtol=1e-4, atol=1e-6), where
        else:
            assert torch.equal(made, shipped), where
    elif isinstance(made, dict):
        assert list(made) == list(shipped), where
        for key in made:
            _assert_close(made[key], shipped[key], f"{where}.{key}")
    elif isinstance(made, (list, tuple)):
        assert len(made) == len(shipped), where
        for i, (a, b) in enumerate(zip(made, shipped, strict=True)):
            _assert_close(a, b, f"{where}.{i}")
    elif isinstance(made, float):
        assert math.isclose(made, shipped, rel_tol=1e-3, abs_tol=1e-4), where
    else:
        assert made == shipped, where


def test_script_regenerates_the_same_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "example.pth"
    subprocess.run([sys.executable, str(ROOT / "resources/examples/make_example.py"), str(out)], check=True)
    made, shipped = peek(out), peek(SHIPPED)
    assert [(n.key, n.tensor.shape, n.tensor.dtype) for n in made.root.tensors() if n.tensor] == [
        (n.key, n.tensor.shape, n.tensor.dtype) for n in shipped.root.tensors() if n.tensor
    ]
    _assert_close(torch.load(out, weights_only=True), torch.load(SHIPPED, weights_only=True), "checkpoint")
