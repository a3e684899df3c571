"""The README's test command reports coverage by layer, worker processes included, and fails a whole
run when the safety policy is not fully covered."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.suite_coverage import by_layer, not_fully_covered

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import subprocess, sys

from inspector.core import safety  # imported: its definitions run, its rules do not


def test_the_engine_worker_starts_and_ends_on_end_of_input():
    subprocess.run([sys.executable, "-m", "inspector.engine.worker"], input=b"", check=True, timeout=300)
"""


def _summary(statements: int, missed: int, branches: int = 0, missed_branches: int = 0) -> dict[str, object]:
    return {"summary": {"num_statements": statements, "missing_lines": missed,
                        "num_branches": branches, "missing_branches": missed_branches}}  # fmt: skip


def test_the_table_counts_statements_and_branches_per_layer() -> None:
    files = {
        "core/peek.py": _summary(80, 8, 20, 2),
        "core/tree.py": _summary(20, 0),
        "engine/worker.py": _summary(50, 25),
        "gui/main_window.py": _summary(10, 10),
        "cli.py": _summary(30, 3),
        "app.py": _summary(10, 1),
    }
    rows = {line.split()[0]: line.split()[1:] for line in by_layer(files)[1:]}
    assert rows["core"] == ["2", "100", "8", "20", "2", "91.7%"]
    assert rows["engine"] == ["1", "50", "25", "0", "0", "50.0%"]
    assert rows["gui"][-1] == "0.0%"
    assert rows["cli/app"] == ["2", "40", "4", "0", "0", "90.0%"]
    assert rows["total"] == ["6", "200", "47", "20", "2", "77.7%"]


def test_a_line_or_branch_of_the_safety_policy_that_no_test_runs_is_named() -> None:
    files = {
        "core/safety.py": {
            **_summary(9, 4, 2, 2),
            "missing_lines": [3, 4, 5, 9],
            "missing_branches": [[7, 9], [9, 10]],
        },
        "core/globals_policy.py": {**_summary(5, 0), "missing_lines": [], "missing_branches": []},
    }
    assert not_fully_covered(files) == [
        "inspector/core/safety.py must stay fully covered; no test runs lines 3-5, 9 and the branches 7→9."
    ]
    del files["core/globals_policy.py"]
    assert (
        not_fully_covered(files)[1]
        == "inspector/core/globals_policy.py must stay fully covered, but no test imported it."
    )


@pytest.mark.slow
def test_a_run_under_coverage_measures_the_worker_and_fails_on_an_uncovered_safety_policy(
    tmp_path: Path,
) -> None:
    """A whole run (``testpaths``) with the project's coverage settings: the engine is measured in
    the worker process alone, and safety rules that no test runs fail the run, named."""
    if importlib.util.find_spec("pytest_cov") is None:
        pytest.fail("pytest-cov is not installed: install the test extras (pip install -e '.[test]').")
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = probe\n")
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "test_probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}  # not measured by this run
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.suite_coverage",
         "--cov", f"--cov-config={ROOT / 'pyproject.toml'}", "--cov-report="],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = result.stdout
    assert "1 passed" in out, out + result.stderr
    assert result.returncode == 1, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1]}
    assert float(rows["engine"][-1].rstrip("%")) > 0, out  # only the worker ran engine code
    assert rows["gui"][-1] == "0.0%", out
    assert "inspector/core/safety.py must stay fully covered; no test runs lines " in out


def test_ci_runs_the_readme_test_command_under_coverage() -> None:
    """``.ci/run`` runs the README's test command verbatim, and that command reports coverage."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("Run the whole test suite", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "-m pytest --cov " in f"{block} "
    assert block in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
