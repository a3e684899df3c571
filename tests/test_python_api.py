"""``import inspector`` as a notebook uses it, in a fresh interpreter: ``inspector.open(...)`` and
its properties import no torch; the methods that read values give what torch itself loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.checkpoints import build_namespace, build_training
from tests.conftest import REPO_ROOT

_NOTEBOOK = r"""
import json, sys
import inspector

ckpt = inspector.open(sys.argv[1])
tensors = ckpt.tensors
facts = {
    "tensors": [[t.key, list(t.shape), t.dtype, t.device, t.nbytes] for t in tensors],
    "verdict": ckpt.verdict,
    "unsafe": [g["name"] for g in ckpt.globals if g["verdict"] != "allowed"],
    "summary": ckpt.summary,
    "root_children": [c.name for c in ckpt.tree.children],
    "html": ckpt._repr_html_(),
    "torch_after_static": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
}
key = tensors[0].key
facts["stats"] = ckpt.stats(key)
facts["values"] = ckpt.values(key, (0, slice(0, 3))).tolist()
facts["torch_after_values"] = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
facts["identical_to_itself"] = ckpt.diff(sys.argv[1])["identical"]
report = ckpt.export(sys.argv[2], inspector.ExportPlan("", "", "safetensors", subtree="model"))
facts["exported"] = report["target"]
facts["public"] = sorted(inspector.__all__)
print(json.dumps(facts))
"""


def _notebook(*args: str | Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _NOTEBOOK, *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts: dict = json.loads(proc.stdout.splitlines()[-1])
    return facts


def test_a_notebook_reads_a_checkpoint_without_torch_then_reads_values(tmp_path: Path) -> None:
    built = build_training(tmp_path)
    facts = _notebook(built.path, tmp_path / "model.safetensors")
    assert facts["torch_after_static"] == []
    assert facts["torch_after_values"] == []  # statistics and values are read with NumPy alone
    loaded = torch.load(built.path, weights_only=True)
    first_key, *_ = facts["tensors"][0]
    first = loaded["model"][first_key.removeprefix("model.")]
    assert facts["tensors"][0] == [first_key, list(first.shape), "float32", "cpu", first.nbytes]
    assert len(facts["tensors"]) == facts["summary"]["tensor_count"]
    assert facts["verdict"] == "safe" and facts["unsafe"] == []
    assert facts["summary"]["format"] == "torch-zip" and facts["summary"]["model_key"] == "model"
    assert facts["root_children"] == ["model", "optimizer", "scheduler", "epoch", "args"]
    assert f"<td>{first_key}</td>" in facts["html"] and "verdict <b>safe</b>" in facts["html"]
    assert abs(facts["stats"]["mean"] - first.double().mean().item()) < 1e-6
    assert facts["values"] == first[0, :3].tolist()
    assert facts["identical_to_itself"] is True
    assert Path(facts["exported"]).is_file()
    assert facts["public"] == ["Checkpoint", "ExportPlan", "Tensor", "__version__", "open"]


def test_a_file_that_needs_globals_is_judged_and_never_run(tmp_path: Path) -> None:
    import inspector

    ckpt = inspector.open(build_namespace(tmp_path).path)
    assert ckpt.verdict == "unknown"
    assert [g["name"] for g in ckpt.globals if g["verdict"] == "unknown"] == ["argparse.Namespace"]
    assert "argparse.Namespace" not in repr(ckpt) and "unknown" in repr(ckpt)


def test_values_of_dtypes_numpy_lacks_are_what_torch_widens_them_to(tmp_path: Path) -> None:
    import inspector

    gen = torch.Generator().manual_seed(5)
    state = {
        "bf16": torch.randn(4, 6, generator=gen).to(torch.bfloat16),
        "e4m3": torch.randn(8, generator=gen).to(torch.float8_e4m3fn),
        "e5m2": torch.randn(8, generator=gen).to(torch.float8_e5m2),
        "half_T": torch.randn(3, 5, generator=gen).half().t(),
    }
    path = tmp_path / "low.pt"
    torch.save(state, path)
    ckpt = inspector.open(path)
    for key, tensor in state.items():
        got = ckpt.values(key)
        assert got.shape == tuple(tensor.shape), key
        assert torch.equal(torch.from_numpy(got), tensor.float() if key != "half_T" else tensor), key
    assert ckpt.values("bf16", (1, slice(2, 5))).tolist() == state["bf16"][1, 2:5].float().tolist()
