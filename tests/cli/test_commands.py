"""What the command line does with each way of calling it: the window without a display, a mistyped
command, options in any order, values out of range, options that would be ignored, help texts."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inspector.cli import _build_parser
from tests.conftest import REPO_ROOT, CliResult, CliRunner

#: A window command that got past every check would run until closed; this ends such a run.
_WINDOW_TIMEOUT_S = 60


def _run_window_command(*args: str | Path, **env_changes: str | None) -> CliResult:
    """``python -m inspector ARGS`` with the environment changed (``None`` removes a variable)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    argv = tuple(str(a) for a in args)
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", *argv],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        timeout=_WINDOW_TIMEOUT_S,
        check=False,
    )
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


_NO_DISPLAY = {"DISPLAY": None, "WAYLAND_DISPLAY": None, "QT_QPA_PLATFORM": None}


def _one_line(result: CliResult) -> str:
    """The single line on stderr of a run that failed the documented way (exit 2, no traceback)."""
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr:\n{result.describe()}"
    return lines[0]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("commands") / "small.pt"
    torch.save({"ok": torch.arange(6.0).view(2, 3), "other": torch.zeros(4)}, path)
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides only on Linux")
def test_without_a_display_the_window_command_says_so_and_names_info_and_scan(small: Path) -> None:
    line = _one_line(_run_window_command(small, **_NO_DISPLAY))
    assert "no display" in line
    assert "checkpoint-inspector info" in line and "checkpoint-inspector scan" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb platform exists only on Linux")
def test_a_display_qt_cannot_open_is_a_sentence_not_an_abort(small: Path) -> None:
    result = _run_window_command(small, DISPLAY=":4242", WAYLAND_DISPLAY=None, QT_QPA_PLATFORM="xcb")
    assert result.returncode == 2, result.describe()  # not 134 (Qt's abort)
    assert "Reinstalling the application" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot open its window" in last and "checkpoint-inspector info" in last


@pytest.mark.parametrize(("word", "hint"), [("frobnicate", ""), ("stat", "did you mean stats")])
def test_a_mistyped_command_is_not_opened_as_a_file(small: Path, word: str, hint: str) -> None:
    line = _one_line(_run_window_command(word, small, QT_QPA_PLATFORM="offscreen"))
    assert f"{word} is not a command (info, scan, export, stats, diff)" in line
    assert f"checkpoint-inspector -- {word}" in line
    assert hint in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides only on Linux")
def test_after_a_double_dash_a_command_like_word_is_a_file_to_open() -> None:
    line = _one_line(_run_window_command("--", "frobnicate", **_NO_DISPLAY))
    assert "not a command" not in line
    assert "no display" in line  # it went on to open the window


def test_stats_takes_options_after_the_keys(cli: CliRunner, small: Path) -> None:
    after, between = cli.run_many(
        [
            ("stats", small, "ok", "--bins", "3", "--json"),
            ("stats", "--json", small, "--bins", "2", "ok", "other"),
        ]
    )
    (row,) = after.json()["tensors"]
    assert row["key"] == "ok" and row["stats"]["histogram"]["counts"] == [2, 2, 2]
    assert [r["key"] for r in between.json()["tensors"]] == ["ok", "other"]
    assert between.json()["tensors"][0]["stats"]["histogram"]["counts"] == [3, 3]


@pytest.mark.parametrize("bins", ["1000", "0", "-3", "many"])
def test_bins_outside_1_to_256_is_one_sentence(cli: CliRunner, small: Path, bins: str) -> None:
    line = _one_line(cli.run("stats", small, "ok", "--bins", bins))
    assert "--bins" in line and "1 to 256" in line


def test_a_missing_key_is_reported_without_importing_torch(cli: CliRunner, small: Path) -> None:
    result = cli.probe_imports("stats", small, "ok", "nope", "othr")
    assert result.returncode == 2, result.describe()
    assert result.torch_modules == ()
    assert "small.pt” has no tensor named nope" in result.stderr
    assert "othr" in result.stderr and "did you mean other" in result.stderr


def test_options_that_would_be_ignored_are_refused(cli: CliRunner, small: Path, tmp_path: Path) -> None:
    pth, folder_like = tmp_path / "one.pth", tmp_path / "y.safetensors"
    map_location, no_mmap, shard_size, shard_file, shard_file_dry = cli.run_many(
        [
            ("info", small, "--map-location", "cpu"),
            ("info", small, "--no-mmap"),
            ("export", small, "-o", pth, "--max-shard-size", "1MB"),
            ("export", small, "-o", folder_like, "--format", "hf-sharded"),
            ("export", small, "-o", folder_like, "--format", "hf-sharded", "--dry-run"),
        ]
    )
    assert "--map-location" in _one_line(map_location) and "--load" in _one_line(map_location)
    assert "--no-mmap" in _one_line(no_mmap) and "--load" in _one_line(no_mmap)
    assert "hf-sharded" in _one_line(shard_size)
    for result in (shard_file, shard_file_dry):
        line = _one_line(result)
        assert "folder" in line and "y.safetensors" in line
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder named like a file


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", ["info", "scan", "export", "stats", "diff"])
def test_every_option_of_every_command_has_help(command: str) -> None:
    parser = _subcommands()[command]
    undocumented = [a.option_strings or [a.dest] for a in parser._actions if not (a.help or "").strip()]
    assert undocumented == []
    assert parser.format_help().count("\n") > 5


_OPEN_PROBE = r"""
import json, sys
import inspector.app

def run_gui(paths, argv, new_window=False):
    later = ("inspector.scan_cli", "inspector.export_cli", "inspector.inspect_cli")
    print(json.dumps({"paths": paths, "new_window": new_window,
                      "parsers": sorted(m for m in later if m in sys.modules)}))
    return 0

inspector.app.run_gui = run_gui
from inspector.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("options", [[], ["--new-window"]], ids=["double-click", "--new-window"])
def test_opening_a_file_builds_the_subcommands_parsers_only_for_options(
    small: Path, tmp_path: Path, options: list[str]
) -> None:
    """A double-click starts the window without the parsers of ``info``, ``scan``, ``export`` …"""
    probe = tmp_path / "probe.py"
    probe.write_text(_OPEN_PROBE)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.run(
        [sys.executable, str(probe), *options, str(small)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    import json

    opened = json.loads(proc.stdout)
    assert opened["paths"] == [str(small)] and opened["new_window"] is bool(options)
    # --new-window is an option: the whole parser reads it (its --help lists every subcommand)
    assert opened["parsers"] == (
        [] if not options else ["inspector.export_cli", "inspector.inspect_cli", "inspector.scan_cli"]
    )


@pytest.mark.parametrize(
    ("command", "module"),
    [("info", None), ("scan", "inspector.scan_cli"), ("export", "inspector.export_cli"),
     ("stats", "inspector.inspect_cli"), ("diff", "inspector.inspect_cli")],
)  # fmt: skip
def test_a_command_builds_only_its_own_parser(command: str, module: str | None) -> None:
    """``stats`` or ``export`` parses its options without importing the other commands' modules
    (``scan``'s alone cost a tenth of ``stats``' start-up); its parser is the one ``--help`` shows."""
    code = (
        "import json, sys\n"
        "from inspector.cli import _build_parser, _command_parser\n"
        f"parser = _command_parser({command!r})\n"
        "later = ('inspector.scan_cli', 'inspector.export_cli', 'inspector.inspect_cli')\n"
        "print(json.dumps({'imported': [m for m in later if m in sys.modules], 'prog': parser.prog,\n"
        f"                  'same': parser.format_help() == _build_parser()._subparsers._group_actions[0]"
        f".choices[{command!r}].format_help()}}))\n"
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    import json

    facts = json.loads(proc.stdout)
    assert facts["prog"] == f"checkpoint-inspector {command}" and facts["same"] is True
    # (the whole parser, built after it for the comparison, imports the rest only then)
    assert facts["imported"] == ([module] if module else [])
