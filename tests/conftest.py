"""Shared fixtures: the checkpoints of ``tests.checkpoints``, built once per run; a CLI runner."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

# NumPy's BLAS as the app's processes run it (``inspector.engine``): one thread, set before the
# fixtures below import torch and NumPy, so numbers computed here add up as the worker's do.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from inspector.core.collector import release_frozen
from tests.checkpoints import BuiltCheckpoint, TorchView, build_all, write_all_broken

REPO_ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.suite_coverage"]

#: The app a test starts (in this process or a child) listens and hands files over under this name,
#: never the user's own, so a window the user has open meanwhile sees nothing of the test run; the
#: settings and the desktop database of the run live in a scratch folder for the same reason.
TEST_INSTANCE = f"checkpoint-inspector-test-{os.getpid()}"
os.environ["CHECKPOINT_INSPECTOR_INSTANCE"] = TEST_INSTANCE
_SCRATCH_HOME = tempfile.mkdtemp(prefix="checkpoint-inspector-tests-")
atexit.register(shutil.rmtree, _SCRATCH_HOME, True)
os.environ["XDG_CONFIG_HOME"] = os.path.join(_SCRATCH_HOME, "config")
os.environ["XDG_DATA_HOME"] = os.path.join(_SCRATCH_HOME, "data")

# Runs the CLI in-process under ``python -c`` and records afterwards which torch modules were
# imported, so a test can prove that ``info`` without ``--load`` never imports torch.
_IMPORT_PROBE = """
import json, runpy, sys
report, argv = sys.argv[1], sys.argv[2:]
sys.argv = ["checkpoint-inspector", *argv]
status = 0
try:
    runpy.run_module("inspector", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    sys.stdout.flush()
    with open(report, "w", encoding="utf-8") as out:
        json.dump({"status": status, "torch": sorted(
            m for m in sys.modules if m == "torch" or m.startswith("torch."))}, out)
"""


@dataclass(frozen=True)
class CliResult:
    """What one run of ``python -m inspector ...`` produced."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    torch_modules: tuple[str, ...] | None = None  # set only by ``CliRunner.probe_imports``

    def json(self) -> dict:
        assert self.returncode == 0, f"{self.args}: exit {self.returncode}\n{self.stderr}"
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"args={list(self.args)} exit={self.returncode}\n"
            f"--- stdout ---\n{self.stdout[:3000]}\n--- stderr ---\n{self.stderr[:3000]}"
        )


class CliRunner:
    """Runs the real command line as subprocesses, several at once (each may import torch)."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch
        self._probes = 0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        return env

    def run(self, *args: str | Path) -> CliResult:
        return self.run_many([args])[0]

    def run_many(self, calls: Sequence[Sequence[str | Path]]) -> list[CliResult]:
        """Run ``python -m inspector *args`` for every call, in parallel; results in call order."""
        workers = max(2, min(8, os.cpu_count() or 2))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._run_one, calls))

    def _run_one(self, args: Sequence[str | Path]) -> CliResult:
        argv = tuple(str(a) for a in args)
        proc = subprocess.run(
            [sys.executable, "-m", "inspector", *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self._env(),
            cwd=self._scratch,
            timeout=300,
            check=False,
        )
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    def probe_imports(self, *args: str | Path) -> CliResult:
        """Run the CLI in one interpreter and report which torch modules it imported."""
        self._probes += 1
        report = self._scratch / f"import_probe_{self._probes}.json"
        argv = tuple(str(a) for a in args)
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, str(report), *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self._env(),
            cwd=self._scratch,
            timeout=300,
            check=False,
        )
        assert report.exists(), f"the import probe did not finish:\n{proc.stderr}"
        facts = json.loads(report.read_text(encoding="utf-8"))
        return CliResult(argv, facts["status"], proc.stdout, proc.stderr, tuple(facts["torch"]))


@pytest.fixture(autouse=True)
def _collector_released() -> Iterator[None]:
    """A tree a test's window or ``info`` left frozen goes back to the collector after the test."""
    yield
    release_frozen()


@pytest.fixture(scope="session")
def built_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltCheckpoint]:
    """Every case of ``tests.checkpoints.CASE_IDS``, built once per test run."""
    return build_all(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def torch_views(built_checkpoints: dict[str, BuiltCheckpoint]) -> dict[str, TorchView]:
    """What torch itself loads from each built checkpoint (``map_location="cpu"``)."""
    return {case_id: built.torch_view() for case_id, built in built_checkpoints.items()}


@pytest.fixture(scope="session")
def broken_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every broken input of ``tests.checkpoints.BROKEN_WRITERS``, written once per test run."""
    return write_all_broken(tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    return CliRunner(tmp_path_factory.mktemp("cli"))
