"""The example checkpoint the README opens: shipped, small, and what its script makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_script_regenerates_the_same_tree(tmp_path: Path) -> None:
    out = tmp_path / "example.pth"
    subprocess.run([sys.executable, str(ROOT / "resources/examples/make_example.py"), str(out)], check=True)
    made, shipped = peek(out), peek(SHIPPED)
    assert [(n.key, n.tensor.shape, n.tensor.dtype) for n in made.root.tensors() if n.tensor] == [
        (n.key, n.tensor.shape, n.tensor.dtype) for n in shipped.root.tensors() if n.tensor
    ]
    fresh = torch.load(out, weights_only=True)
    assert torch.equal(
        fresh["model"]["embed_tokens.weight"],
        torch.load(SHIPPED, weights_only=True)["model"]["embed_tokens.weight"],
    )
