"""The layer rules (README, "Layout") and the code style hold for the whole package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_layer_contracts_hold() -> None:
    """core imports neither torch nor Qt; the engine no Qt; the GUI never torch."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_modules_of_core_and_of_the_engine_import_one_another_without_cycles() -> None:
    """An acyclic contract per layer, kept: a module's helpers live below it, never in a module
    that imports it back (lazily or not)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    acyclic = {a for c in contracts if c["type"] == "acyclic_siblings" for a in c["ancestors"]}
    assert {"inspector.core", "inspector.engine"} <= acyclic
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", "inspector", "tests", "resources")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_with_the_project_configuration() -> None:
    """``mypy`` as configured in pyproject.toml, over the whole package, finds no issue."""
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues found" in result.stdout


def test_the_project_mypy_configuration_is_strict_in_every_layer(tmp_path: Path) -> None:
    """An unannotated function and a ``type: ignore`` that names no error code are reported in core,
    the engine, the GUI and the top-level modules (``cli.py``, ``app.py``) alike."""
    probes = [tmp_path / "inspector" / layer / "probe.py" for layer in ("core", "engine", "gui", "")]
    for probe in probes:
        probe.parent.mkdir(parents=True, exist_ok=True)
        for package in (probe.parent, tmp_path / "inspector"):
            (package / "__init__.py").touch()
        probe.write_text('def double(x):\n    return x * 2\n\n\ncount: int = "one"  # type: ignore\n')
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), *map(str, probes)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    for probe in probes:
        where = str(probe.relative_to(tmp_path))
        assert f"{where}:1: error: Function is missing a type annotation" in result.stdout, result.stdout
        assert f"{where}:5: error: " in result.stdout and "[ignore-without-code]" in result.stdout


def test_core_never_imports_torch_or_qt_at_runtime() -> None:
    """Importing the static reader and reading a file pulls in neither torch nor Qt."""
    code = (
        "import sys, inspector.core.peek, inspector.core.report, inspector.cli;"
        "bad = [m for m in ('torch', 'PySide6', 'numpy') if m in sys.modules];"
        "print(bad)"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
