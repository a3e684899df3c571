"""The command line asks the same safety policy as the window: ``info --load`` and ``export`` never
hand a dangerous file or a TorchScript archive to torch without ``--trust``, and ``--allow-global``
refuses an alias of a dangerous callable, naming what it really is; a safetensors copy reads the
file straight, so it needs no trust and runs nothing. Run as real subprocesses."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.peek import peek
from inspector.core.safety import TORCHSCRIPT_CODE, verdict_of
from tests.checkpoints import BuiltCheckpoint
from tests.conftest import CliRunner
from tests.hostile_globals import (
    ALIASES,
    FORGED_DTYPES,
    RAW_MEMORY_ARRAYS,
    forged_numpy_array,
    marker,
    raw_memory_array,
)


class _CopiesFile:
    """A harmless payload: unpickling it copies a small file to MARKER (``shutil.copyfile``)."""

    def __init__(self, source: Path, target: Path) -> None:
        self.source = source
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (shutil.copyfile, (str(self.source), str(self.target)))


def _copier(folder: Path) -> Path:
    source = folder / "source.txt"
    source.write_text("copied only by a trusted load\n")
    path = folder / "copier.pth"
    torch.save({"weight": torch.ones(2, 3), "payload": _CopiesFile(source, marker(folder))}, path)
    return path


#: A NUL cannot be passed on a command line; the engine's tests allow that name directly.
_TYPABLE = [case for case in ALIASES if "\x00" not in case.qualname]


def test_export_never_allows_an_alias_and_names_what_it_is(cli: CliRunner, tmp_path: Path) -> None:
    calls, folders = [], []
    for i, case in enumerate(_TYPABLE):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        folders.append(folder)
        path = case.build(folder)
        calls.append(("export", path, "-o", folder / "out.pth", "--allow-global", case.qualname))
    for case, folder, result in zip(_TYPABLE, folders, cli.run_many(calls), strict=True):
        assert result.returncode == 2, result.describe()
        assert "cannot be allowed for “alias.pth”" in result.stderr
        assert case.real in result.stderr
        assert "Pass --trust" in result.stderr and "Traceback" not in result.stderr
        assert not (folder / "out.pth").exists() and not marker(folder).exists()


def test_a_dangerous_file_is_loaded_by_the_command_line_only_with_trust(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = _copier(tmp_path)
    out = tmp_path / "out.pth"
    info, export = cli.run_many([("info", "--load", path), ("export", path, "-o", out)])
    for result in (info, export):
        assert result.returncode == 2, result.describe()
        assert "references shutil.copyfile, which can run code" in result.stderr
        assert "not handed to torch unless you trust the file. Pass --trust" in result.stderr
    assert not out.exists() and not marker(tmp_path).exists()

    trusted = cli.run("info", "--json", "--load", "--trust", path)
    assert trusted.returncode == 0, trusted.describe()
    assert marker(tmp_path).read_text() == "copied only by a trusted load\n"  # only trust ran it
    devices = {t["key"]: t["device"] for t in json.loads(trusted.stdout)["tensors"]}
    assert devices == {"weight": "cpu"}
    marker(tmp_path).unlink()
    exported = cli.run("export", path, "-o", out, "--trust")
    assert exported.returncode == 0, exported.describe()
    assert "verified" in exported.stdout and out.exists()


def test_info_load_of_a_torchscript_archive_says_it_holds_code(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(path))
    result = cli.run("info", "--load", path)
    assert result.returncode == 2, result.describe()
    assert f"“scripted.pt” {TORCHSCRIPT_CODE}" in result.stderr and "Pass --trust" in result.stderr
    assert cli.run("info", "--load", "--trust", path).returncode == 0


def test_info_load_allows_exactly_the_listed_globals(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    path = built_checkpoints["namespace-zip"].path
    refused, allowed = cli.run_many(
        [("info", "--load", path), ("info", "--load", "--json", path, "--allow-global", "argparse.Namespace")]
    )
    assert refused.returncode == 2 and "needs argparse.Namespace" in refused.stderr
    assert "weights_only=False will likely succeed" not in refused.stderr  # never torch's own paragraph
    assert allowed.returncode == 0, allowed.describe()
    assert all(t["device"] == "cpu" for t in json.loads(allowed.stdout)["tensors"])


@pytest.mark.parametrize("case", ["state_dict-zip", "namespace-zip", "training-legacy"])
def test_scan_and_the_policy_agree(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint], case: str
) -> None:
    path = built_checkpoints[case].path
    scanned = cli.run("scan", "--json", path)
    assert json.loads(scanned.stdout)["verdict"] == verdict_of(peek(str(path))).verdict.word


def test_help_documents_the_trust_flag(cli: CliRunner) -> None:
    info, export = cli.run_many([("info", "--help"), ("export", "--help")])
    for result in (info, export):
        assert "--trust" in result.stdout and "weights_only=False" in result.stdout
    assert "--allow-global" in export.stdout
    said = " ".join(export.stdout.split())  # argparse wraps its lines
    assert "pickle is never run and neither --allow-global nor --trust is needed" in said


def test_a_safetensors_copy_of_a_dangerous_file_needs_no_trust_and_runs_nothing(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = _copier(tmp_path)
    out = tmp_path / "weights.safetensors"
    refused, copied = cli.run_many(
        [("export", path, "-o", tmp_path / "out.pth"), ("export", path, "-o", out)]
    )
    assert refused.returncode == 2 and "A safetensors copy needs no trust" in refused.stderr
    assert copied.returncode == 0, copied.describe()
    assert "verified." in copied.stdout and "its pickle is not run" in copied.stdout
    assert "Not written: payload (not plain data)" in copied.stdout
    assert not marker(tmp_path).exists()
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        assert torch.equal(f.get_tensor("weight"), torch.ones(2, 3))


def test_export_of_a_torchscript_archive_writes_its_weights_only(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(path))
    dry, weights, copy = cli.run_many(
        [("export", path, "-o", tmp_path / "w.safetensors", "--dry-run"),
         ("export", path, "-o", tmp_path / "w.safetensors"),
         ("export", path, "-o", tmp_path / "w.pth", "--trust")]
    )  # fmt: skip
    assert dry.returncode == 0 and "TorchScript code is not exported" in dry.stdout, dry.describe()
    assert weights.returncode == 0, weights.describe()
    assert "verified." in weights.stdout and "TorchScript code is not exported" in weights.stdout
    assert copy.returncode == 2 and "exported as its weights only, to safetensors" in copy.stderr
    assert not (tmp_path / "w.pth").exists()


def test_allowing_what_the_scan_lists_never_hands_torch_a_numpy_array_over_memory_it_does_not_own(
    cli: CliRunner, tmp_path: Path
) -> None:
    calls, paths = [], []
    builders = [(forged_numpy_array, case) for case in FORGED_DTYPES]
    for i, (build, case) in enumerate([*builders, *((raw_memory_array, c) for c in RAW_MEMORY_ARRAYS)]):
        folder = tmp_path / f"case{i}"
        folder.mkdir()
        path = build(folder, case)
        allow = [arg for g in peek(str(path)).unsafe_globals for arg in ("--allow-global", g.qualname)]
        paths.append(path)
        calls += [("info", "--load", path, *allow), ("export", path, "-o", folder / "out.pth", *allow)]
    for i, result in enumerate(cli.run_many(calls)):
        assert result.returncode == 2, result.describe()  # a segfault of numpy is -11
        assert "numpy" in result.stderr and "not handed to torch unless you trust" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (paths[i // 2].parent / "out.pth").exists()
