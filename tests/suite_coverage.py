"""The suite's coverage under pytest-cov (``--cov``): a table by layer at the end of the run, worker
processes included; a whole run fails when a file that must stay fully covered is not, so a safety
rule that no test runs cannot be added unnoticed. Tests marked ``timed`` run untraced.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Generator, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "inspector"
LAYERS = ("core", "engine", "gui", "cli/app")

#: The safety policy: what may reach torch and what trust means. Every line and branch of it runs.
FULLY_COVERED = ("core/safety.py", "core/globals_policy.py")

#: Set by coverage's ``patch = subprocess``: a Python process started with it measures itself.
_SUBPROCESS_CONFIG = "COVERAGE_PROCESS_CONFIG"
_DESELECTED = pytest.StashKey[int]()
_REPORT = pytest.StashKey["Report"]()


def layer_of(module: str) -> str:
    """The layer of a module given by its path under ``inspector/``: its subpackage, or ``cli/app``
    for the modules beside them."""
    parts = Path(module).parts
    return parts[0] if len(parts) > 1 else "cli/app"


@dataclass
class Tally:
    """Statements and branches of some files, and how many of each no test ran."""

    files: int = 0
    statements: int = 0
    missed_statements: int = 0
    branches: int = 0
    missed_branches: int = 0

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @classmethod
    def of_file(cls, summary: dict[str, int]) -> Tally:
        """From the ``summary`` of one file in coverage's JSON report."""
        return cls(1, summary["num_statements"], summary["missing_lines"],
                   summary.get("num_branches", 0), summary.get("missing_branches", 0))  # fmt: skip

    @property
    def percent(self) -> float:
        total = self.statements + self.branches
        return 100.0 * (total - self.missed_statements - self.missed_branches) / total if total else 100.0


@dataclass(frozen=True)
class Report:
    table: list[str]
    failures: list[str]  # one sentence per file that must stay fully covered and is not
    checked: bool  # a whole run: the failures fail it


def line_ranges(lines: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5, 9``."""
    ranges: list[list[int]] = []
    for n in sorted(lines):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def by_layer(files: dict[str, dict[str, Any]]) -> list[str]:
    """The table: per layer (and in all) files, statements and branches, what no test ran, the cover."""
    tallies = {layer: Tally() for layer in LAYERS}
    for module, data in files.items():
        tallies.setdefault(layer_of(module), Tally()).add(Tally.of_file(data["summary"]))
    total = Tally()
    for t in tallies.values():
        total.add(t)
    head = (
        f"{'layer':<10}{'files':>6}{'statements':>12}{'missed':>8}{'branches':>10}{'missed':>8}{'cover':>9}"
    )
    return [head] + [
        f"{layer:<10}{t.files:>6}{t.statements:>12}{t.missed_statements:>8}"
        f"{t.branches:>10}{t.missed_branches:>8}{t.percent:>8.1f}%"
        for layer, t in [*tallies.items(), ("total", total)]
    ]


def not_fully_covered(files: dict[str, dict[str, Any]]) -> list[str]:
    """A sentence for each file of ``FULLY_COVERED`` with a line that no test ran, or a branch not
    taken from a line that ran."""
    out = []
    for module in FULLY_COVERED:
        data = files.get(module)
        if data is None:
            out.append(f"inspector/{module} must stay fully covered, but no test imported it.")
            continue
        lines = data["missing_lines"]
        branches = [(a, b) for a, b in data.get("missing_branches", []) if a not in lines]  # partly run
        where = [f"lines {line_ranges(lines)}"] if lines else []
        where += [f"the branches {', '.join(f'{a}→{b}' for a, b in branches)}"] if branches else []
        if where:
            out.append(f"inspector/{module} must stay fully covered; no test runs {' and '.join(where)}.")
    return out


def measured_files(config: pytest.Config) -> dict[str, dict[str, Any]]:
    """What the run's combined data says of each file of the package, by its path under ``inspector/``."""
    import coverage  # only a run under pytest-cov gets here

    here = os.getcwd()
    os.chdir(config.invocation_params.dir)  # where pytest-cov resolved the data file
    try:
        cov = coverage.Coverage(config_file=config.getoption("--cov-config"))
        cov.load()
        with tempfile.TemporaryDirectory(prefix="suite-coverage-") as scratch:
            out = Path(scratch) / "coverage.json"
            cov.json_report(outfile=str(out), include=[str(PACKAGE / "*")])
            files: dict[str, dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))["files"]
    finally:
        os.chdir(here)
    base = Path(config.invocation_params.dir)
    return {(base / name).resolve().relative_to(PACKAGE).as_posix(): data for name, data in files.items()}


def _coverage_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("--cov", default=None)) and not config.getoption("--no-cov", default=False)


def _whole_run(session: pytest.Session) -> bool:
    """The suite as ``testpaths`` names it, nothing deselected: only then is coverage complete."""
    config = session.config
    return config.args_source is pytest.Config.ArgsSource.TESTPATHS and not config.stash.get(_DESELECTED, 0)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        config = items[0].config
        config.stash[_DESELECTED] = config.stash.get(_DESELECTED, 0) + len(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test that bounds the time a read takes runs untraced, here and in the processes it starts:
    tracing slows the pure-Python reader several-fold, and the bound is about the reader."""
    coverage = sys.modules.get("coverage")
    cov = coverage.Coverage.current() if coverage is not None else None
    if cov is None or item.get_closest_marker("timed") is None:
        return (yield)
    cov.stop()
    saved = os.environ.pop(_SUBPROCESS_CONFIG, None)
    try:
        return (yield)
    finally:
        if saved is not None:
            os.environ[_SUBPROCESS_CONFIG] = saved
        cov.start()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """Around pytest-cov's own wrapper, so the data of every process is combined when this reads it."""
    result = yield
    if _coverage_requested(session.config):
        files = measured_files(session.config)
        report = Report(by_layer(files), not_fully_covered(files), _whole_run(session))
        session.config.stash[_REPORT] = report
        if report.failures and report.checked:
            session.testsfailed += 1
    return result


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None:
        return
    terminalreporter.write_sep("=", "coverage by layer (statements and branches, worker processes included)")
    for line in report.table:
        terminalreporter.write_line(line)
    for sentence in report.failures:
        if report.checked:
            terminalreporter.write_line(sentence, red=True, bold=True)
        else:
            terminalreporter.write_line(f"{sentence} (checked only when the whole suite runs)")
    if not report.failures:
        terminalreporter.write_line("fully covered, as they must stay: " + ", ".join(FULLY_COVERED))
