"""The code files of a TorchScript archive, listed and read as text from the zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from inspector.core.errors import CheckpointError
from inspector.core.peek import peek
from inspector.core.script_code import list_code_files, read_code_file
from tests.layouts import write_torchscript


def test_code_files_are_listed_with_sizes_and_the_forward_is_readable(tmp_path: Path) -> None:
    path = write_torchscript(tmp_path / "scripted.pt")
    assert peek(path).format == "torchscript"
    files = {f.name: f for f in list_code_files(path)}
    module_file = "code/__torch__/tests/layouts.py"  # the scripted class lives in tests/layouts.py
    assert module_file in files
    assert "code/__torch__/torch/nn/modules/linear.py" in files
    assert all(name.endswith(".py") for name in files)
    with zipfile.ZipFile(path) as z:
        real = {i.filename.split("/", 1)[1]: i for i in z.infolist()}
    for name, code in files.items():
        assert code.size == real[name].file_size
        assert code.compressed == (real[name].compress_type != zipfile.ZIP_STORED)
    text = read_code_file(path, module_file)
    assert "def forward(" in text and "2.5" in text and "torch.relu" in text


def test_a_plain_torch_zip_has_no_code_files(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert list_code_files(path) == []


def test_unknown_names_and_inflation_beyond_the_cap_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_torchscript(tmp_path / "scripted.pt")
    with pytest.raises(CheckpointError, match="no code file named"):
        read_code_file(path, "code/../../etc/passwd.py")
    import inspector.core.script_code as script_code

    monkeypatch.setattr(script_code, "MAX_CODE_BYTES", 16)
    with pytest.raises(CheckpointError, match="more than"):
        read_code_file(path, "code/__torch__/tests/layouts.py")
