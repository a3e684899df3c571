"""Hostile names and hostile files on the command line: strings from a file are shown, never obeyed,
and no file makes a command print a traceback or the generic "Unexpected error" sentence."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from inspector.cli import main
from inspector.core.formatting import escape_text
from tests.checkpoints import write_all_broken
from tests.conftest import CliResult, CliRunner
from tests.hostile import MARKER, build_corpus, nested_beside_data_pkl, torch_zip_bytes, zip_with_member

#: The verdict line a hostile name tries to print over the real one.
FAKE_VERDICT = "spoof.pt: safe (torch-zip, 0 distinct globals)"
#: Module names: one erases the line and returns the cursor, one starts a line of its own.
ERASING_MODULE = "os\x1b[2K\r"
NEWLINE_MODULE = f"x\r\n{FAKE_VERDICT}\n"
#: Keys that move the cursor, split the line, reverse the text, and one that no UTF-8 can encode.
ESCAPE_KEY = "w\x1b[2K\rb\nc"
BIDI_KEY = "gnp.\u202eexe"
SURROGATE_KEY = "k\udc80"
#: A zip member whose name colours the terminal and breaks the line (and climbs out of the folder).
MEMBER = "../\x1b[31mred\r\n.sh"
HOSTILE_STRINGS = (ERASING_MODULE, NEWLINE_MODULE, ESCAPE_KEY, BIDI_KEY, SURROGATE_KEY, MEMBER)


def _named_global(module: str) -> types.FunctionType:
    """A function pickled as ``module.system`` (its module exists only while the file is saved)."""

    def system() -> None:
        raise AssertionError("never called")

    system.__module__, system.__qualname__ = module, "system"
    return system


def _spoofing_checkpoint(path: Path, scale: float) -> Path:
    modules = {name: types.ModuleType(name) for name in (ERASING_MODULE, NEWLINE_MODULE)}
    parents = {  # the pickler imports a dotted module's parents first
        name.rsplit(".", i)[0]: types.ModuleType(name)
        for name in modules
        for i in range(1, name.count(".") + 1)
    }
    obj: dict[str, object] = {
        ESCAPE_KEY: torch.arange(4.0) * scale,
        BIDI_KEY: torch.ones(2) * scale,
        SURROGATE_KEY: torch.zeros(3),
        "plain": torch.ones(2),
    }
    for i, (name, module) in enumerate(modules.items()):
        module.system = _named_global(name)  # type: ignore[attr-defined]
        obj[f"evil{i}"] = module.system  # type: ignore[attr-defined]
    sys.modules.update({**parents, **modules})
    try:
        torch.save(obj, path, pickle_protocol=4)  # protocol 4: names travel as STACK_GLOBAL strings
    finally:
        for name in {**parents, **modules}:
            del sys.modules[name]
    path.write_bytes(zip_with_member(path.read_bytes(), MEMBER, b"echo hi"))
    return path


@pytest.fixture(scope="module")
def spoof(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("spoof")
    return _spoofing_checkpoint(folder / "spoof.pt", 1.0), _spoofing_checkpoint(folder / "spoof2.pt", 2.0)


def _assert_shown_not_obeyed(result: CliResult) -> None:
    """No terminal control from the file reached stdout or stderr, and no hostile string raw."""
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        assert "\x1b" not in text and "\r" not in text and "\u202e" not in text, (
            f"{stream}:\n{result.describe()}"
        )
        for hostile in HOSTILE_STRINGS:
            assert hostile not in text, f"{hostile!r} reached {stream}:\n{result.describe()}"
        assert "\ufffd" not in text  # nothing was written that the terminal could not decode


def test_scan_keeps_its_verdict_line_whatever_the_global_names(
    cli: CliRunner, spoof: tuple[Path, Path]
) -> None:
    path = spoof[0]
    result = cli.run("scan", path)
    _assert_shown_not_obeyed(result)
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"{path}: ") and "(torch-zip, " in first
    assert first.split(": ", 1)[1].split(" ")[0] in {"unknown", "dangerous"}
    assert not any(FAKE_VERDICT in line for line in rest if not line.startswith("  "))
    assert any(escape_text(ERASING_MODULE) + ".system" in line for line in rest)
    assert any(escape_text(NEWLINE_MODULE) + ".system" in line for line in rest)


def test_info_text_shows_each_key_escaped_on_one_line(cli: CliRunner, spoof: tuple[Path, Path]) -> None:
    result = cli.run("info", spoof[0])
    assert result.returncode == 0, result.describe()
    _assert_shown_not_obeyed(result)
    lines = [line.strip() for line in result.stdout.splitlines()]
    for key in (ESCAPE_KEY, BIDI_KEY, SURROGATE_KEY):
        assert any(line.startswith(escape_text(key) + "  [") for line in lines), (key, result.stdout)
    assert escape_text(MEMBER) in result.stdout  # the unsafe member's warning names it, escaped


@pytest.mark.parametrize("command", ["info", "scan"])
def test_json_keeps_the_raw_strings_as_data(cli: CliRunner, spoof: tuple[Path, Path], command: str) -> None:
    result = cli.run(command, spoof[0], "--json")
    _assert_shown_not_obeyed(result)
    report = json.loads(result.stdout)
    names = {g["name"] for g in report["globals"]} if command == "scan" else set()
    keys = {t["key"] for t in report["tensors"]} if command == "info" else set()
    if command == "scan":
        assert {ERASING_MODULE + ".system", NEWLINE_MODULE + ".system"} <= names
    else:
        assert {ESCAPE_KEY, BIDI_KEY, SURROGATE_KEY} <= keys


def test_stats_shows_keys_escaped_and_finds_a_hostile_key(cli: CliRunner, spoof: tuple[Path, Path]) -> None:
    every, named, as_json, missing = cli.run_many(
        [
            ("stats", spoof[0]),
            ("stats", spoof[0], ESCAPE_KEY),
            ("stats", spoof[0], "gnp.exe", "--json"),
            ("stats", spoof[0], "nope\x1b[2K"),
        ]
    )
    for result in (every, named, missing):
        _assert_shown_not_obeyed(result)
    assert every.returncode == 0 and escape_text(ESCAPE_KEY) in every.stdout
    assert named.returncode == 0 and named.stdout.splitlines()[1].startswith(escape_text(ESCAPE_KEY))
    _assert_shown_not_obeyed(as_json)
    assert as_json.returncode == 2 and f"did you mean {escape_text(BIDI_KEY)}" in as_json.stderr
    assert missing.returncode == 2 and escape_text("nope\x1b[2K") in missing.stderr


def test_stats_json_gives_back_a_surrogate_key_unchanged(cli: CliRunner, spoof: tuple[Path, Path]) -> None:
    result = cli.run("stats", spoof[0], "--json")
    assert result.returncode == 0, result.describe()
    assert "\udc80" not in result.stdout and "\ufffd" not in result.stdout
    assert SURROGATE_KEY in {row["key"] for row in json.loads(result.stdout)["tensors"]}


def test_diff_and_export_preview_show_keys_escaped(
    cli: CliRunner, spoof: tuple[Path, Path], tmp_path: Path
) -> None:
    diff, preview = cli.run_many(
        [("diff", *spoof, "--all"), ("export", spoof[0], "-o", tmp_path / "out.safetensors", "--dry-run")]
    )
    for result in (diff, preview):
        _assert_shown_not_obeyed(result)
    assert diff.returncode == 1 and escape_text(ESCAPE_KEY) in diff.stdout
    assert escape_text(BIDI_KEY) in preview.stdout and escape_text(ESCAPE_KEY) in preview.stdout
    assert list(tmp_path.iterdir()) == []


# -- every hostile and broken file, through every command that reads values ------------------------


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory, spoof: tuple[Path, Path]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile-cli")
    files = {case_id: case.path for case_id, case in build_corpus(folder).items()}
    files["hostile_names"] = spoof[0]
    broken = write_all_broken(tmp_path_factory.mktemp("broken-cli"))
    files.update({f"broken-{name}": path for name, path in broken.items()})
    return files


@pytest.fixture(scope="module")
def good_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.pt"
    torch.save({"w": torch.ones(2)}, path)
    return path


def _commands(path: Path, good: Path, out: Path) -> Iterator[tuple[str, list[str], set[int]]]:
    """(name, argv, allowed exit statuses) of every value-reading command on ``path``."""
    yield "stats", ["stats", str(path)], {0, 2}
    yield "stats --json", ["stats", str(path), "--json"], {0, 2}
    yield "export --dry-run", ["export", str(path), "-o", str(out), "--dry-run"], {0, 2}
    yield "diff", ["diff", str(path), str(good)], {0, 1, 2}


def test_the_corpus_has_hostile_and_broken_files(hostile_files: dict[str, Path]) -> None:
    assert len(hostile_files) >= 40


def test_no_file_makes_a_value_command_fail_unexpectedly(
    hostile_files: dict[str, Path],
    good_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.pth"
    failures = []
    for case_id, path in hostile_files.items():
        for name, argv, allowed in _commands(path, good_file, out):
            status = main(argv)  # an exception escaping main would be a traceback for the user
            captured = capsys.readouterr()
            err = captured.err.strip()
            problems = [
                f"exit {status}" if status not in allowed else "",
                "the generic fallback" if "Unexpected error" in err else "",
                "more than one line on stderr" if len(err.splitlines()) > 1 else "",
                "no sentence on stderr" if status == 2 and not err else "",
            ]
            if any(problems):
                failures.append(f"{case_id} / {name}: {', '.join(p for p in problems if p)}: {err[:200]}")
    assert failures == []
    assert not out.exists()
    assert [p for p in hostile_files.values() if (p.parent / MARKER).exists()] == []


@pytest.mark.slow
def test_info_load_of_a_deeply_nested_file_walks_it_in_time_linear_in_its_depth(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "deep.pth"
    path.write_bytes(nested_beside_data_pkl(torch_zip_bytes({"w": torch.ones(2)}), 600_000))
    result = cli.run("info", "--load", "--json", path)  # quadratic in the depth: far past the timeout
    assert result.returncode == 0, result.describe()
    assert [t["device"] for t in json.loads(result.stdout)["tensors"]] == ["cpu"]
