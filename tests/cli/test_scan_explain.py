"""``scan --explain``: the code it prints loads the file safely when run as written in a fresh
interpreter (the globals the file needs allowed, ``(object, "name")`` where the file names the
object otherwise), restores a training checkpoint's parts, and is withheld for a dangerous file."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.checkpoints import build_namespace, build_training
from tests.conftest import CliRunner
from tests.hostile import torch_zip_bytes, zip_replacing_data_pkl

#: Stands in for the user's model, optimizer and scheduler: records what ``load_state_dict`` got.
_PRELUDE = """
import json
restored = {}
class _Part:
    def __init__(self, name):
        self.name = name
    def load_state_dict(self, state):
        restored[self.name] = sorted(str(k) for k in state)
model, optimizer, scheduler = _Part("model"), _Part("optimizer"), _Part("scheduler")
"""
_EPILOGUE = """
keys = sorted(str(k) for k in ckpt) if isinstance(ckpt, dict) else None
print(json.dumps({"keys": keys, "restored": restored, "epoch": globals().get("epoch")}))
"""


def _old_numpy_names(directory: Path, fmt: str = "zip") -> Path:
    """An array checkpoint as numpy 1.x pickles it: ``numpy.core.multiarray._reconstruct``, a name
    numpy 2 keeps only as an alias of ``numpy._core``, so the allowlist needs the pair."""
    source = torch_zip_bytes({"a": np.arange(4, dtype=np.int64), "w": torch.ones(2)})
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    assert b"cnumpy._core.multiarray\n_reconstruct\n" in pkl
    path = directory / "numpy1.pt"
    path.write_bytes(zip_replacing_data_pkl(source, pkl.replace(b"numpy._core.", b"numpy.core.")))
    return path


def _numpy_array(directory: Path, fmt: str = "zip") -> Path:
    path = directory / "arrays.pt"
    torch.save({"a": np.arange(4, dtype=np.int64), "w": torch.ones(2)}, path)
    return path


def _training_with_args(directory: Path, fmt: str = "zip") -> Path:
    built = build_training(directory, fmt)
    ckpt = torch.load(built.path, weights_only=True)
    ckpt["args"] = argparse.Namespace(lr=0.1)
    path = directory / f"training_args_{fmt}.ckpt"
    torch.save(ckpt, path)
    return path


FIXTURES: dict[str, Callable[[Path, str], Path]] = {
    "namespace-zip": lambda d, f: build_namespace(d, "zip").path,
    "namespace-legacy": lambda d, f: build_namespace(d, "legacy").path,
    "numpy-arrays": _numpy_array,
    "numpy-1.x-names": _old_numpy_names,
    "training-with-args": _training_with_args,
}


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PRELUDE + code + _EPILOGUE],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("case", list(FIXTURES))
def test_the_printed_code_loads_the_file_in_a_fresh_interpreter(
    cli: CliRunner, tmp_path: Path, case: str
) -> None:
    path = FIXTURES[case](tmp_path, "zip")
    explained = cli.run("scan", "--explain", path, "--map-location", "cpu")
    assert explained.returncode == 0, explained.describe()
    code = explained.stdout
    assert "torch.serialization.safe_globals([" in code and "weights_only=True" in code
    assert 'map_location="cpu"' in code
    bare = _run(f"import torch\nckpt = torch.load({str(path)!r}, weights_only=True)\n", tmp_path)
    assert bare.returncode != 0, "the fixture must need globals outside torch's weights-only set"
    ran = _run(code, tmp_path)
    assert ran.returncode == 0, f"{code}\n--- stderr ---\n{ran.stderr[-3000:]}"
    loaded = json.loads(ran.stdout.splitlines()[-1])
    expected = torch.load(path, weights_only=False)
    assert loaded["keys"] == sorted(str(k) for k in expected)
    if "optimizer" in expected:
        assert loaded["restored"]["model"] == sorted(expected["model"])
        assert loaded["restored"]["optimizer"] == ["param_groups", "state"]
        assert loaded["restored"]["scheduler"] == sorted(expected["scheduler"])
        assert loaded["epoch"] == expected["epoch"]


def test_a_name_numpy_2_keeps_as_an_alias_is_allowed_as_a_pair(cli: CliRunner, tmp_path: Path) -> None:
    code = cli.run("scan", "--explain", _old_numpy_names(tmp_path)).stdout
    assert '(numpy.core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct")' in code
    assert "import numpy.core.multiarray" in code
    assert "map_location" not in code  # as saved, unless the user chose otherwise
    assert "mmap=True" in code


def test_a_training_checkpoint_without_globals_gets_its_restore_lines(cli: CliRunner, tmp_path: Path) -> None:
    built = build_training(tmp_path, "legacy")
    result = cli.run("scan", "--explain", built.path, "--no-mmap")
    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines() == [
        "import torch",
        "",
        f"ckpt = torch.load({json.dumps(str(built.path))}, weights_only=True)",
        "",
        'model.load_state_dict(ckpt["model"])',
        'optimizer.load_state_dict(ckpt["optimizer"])',
        'scheduler.load_state_dict(ckpt["scheduler"])',
        'epoch = ckpt["epoch"]',
    ]


def test_a_dangerous_file_gets_no_code_only_the_sentence_why(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(torch_zip_bytes({"w": torch.zeros(1)}))
    source = path.read_bytes()
    path.write_bytes(
        zip_replacing_data_pkl(source, b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.")
    )
    result = cli.run("scan", "--explain", path)
    assert result.returncode == 1, result.describe()
    assert "torch.load" not in result.stdout and "import" not in result.stdout
    assert result.stdout.startswith("“evil.pth” references posix.system, which can run code")
    assert len(result.stdout.strip().splitlines()) == 1


def test_explain_options_are_refused_without_explain(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.run("scan", tmp_path / "x.pt", "--map-location", "cpu")
    assert result.returncode == 2 and "only changes the code --explain writes" in result.stderr
