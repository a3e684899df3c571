"""Every broken input gives exit status 2 and one sentence on stderr naming the file and the fault.

The assertions check facts (the file's name, the words that say what is wrong), not whole
sentences, so the wording may improve without breaking the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.checkpoints import BROKEN_WRITERS, BuiltCheckpoint
from tests.conftest import CliResult, CliRunner

_NOT_A_CHECKPOINT = ("not a checkpoint", "not a pytorch checkpoint", "not a torch checkpoint")

#: broken input → groups of phrases; the message must contain one phrase of every group.
EXPECTED_WORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "missing": (("does not exist", "not found", "no such file"),),
    "directory": (("is a folder", "is a directory"),),
    "empty": (("empty",), ("0 bytes", "zero bytes")),
    "truncated_zip": (("truncated",),),
    "random_bytes": (
        (
            *_NOT_A_CHECKPOINT,
            "unrecognised",
            "unrecognized",
            "not a recognised",
            "not a recognized",
            "unknown format",
        ),
    ),
    "png": (("png",), ("image",), _NOT_A_CHECKPOINT),
    "path_config": (("path-configuration", "path configuration", "path config"), _NOT_A_CHECKPOINT),
    "plain_zip": (("zip",), _NOT_A_CHECKPOINT),
}


def test_every_broken_input_has_expected_words() -> None:
    assert EXPECTED_WORDS.keys() == BROKEN_WRITERS.keys()


@pytest.fixture(scope="module")
def broken_runs(cli: CliRunner, broken_inputs: dict[str, Path]) -> dict[tuple[str, str], CliResult]:
    """``info FILE`` and ``info FILE --json`` on every broken input (no torch needed)."""
    calls = {}
    for name, path in broken_inputs.items():
        calls[(name, "text")] = ("info", path)
        calls[(name, "json")] = ("info", path, "--json")
    return dict(zip(calls, cli.run_many(list(calls.values())), strict=True))


def _assert_one_sentence(result: CliResult, path: Path) -> str:
    """The run failed the documented way; returns the message, lower-cased."""
    assert result.returncode == 2, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr:\n{result.describe()}"
    assert result.stdout.strip() == "", f"nothing may go to stdout on error:\n{result.describe()}"
    assert path.name in lines[0], f"the message does not name {path.name!r}: {lines[0]!r}"
    return lines[0].lower()


@pytest.mark.parametrize("mode", ["text", "json"])
@pytest.mark.parametrize("name", list(EXPECTED_WORDS))
def test_broken_input_is_one_sentence_about_the_file(
    name: str,
    mode: str,
    broken_runs: dict[tuple[str, str], CliResult],
    broken_inputs: dict[str, Path],
) -> None:
    message = _assert_one_sentence(broken_runs[(name, mode)], broken_inputs[name])
    for group in EXPECTED_WORDS[name]:
        assert any(phrase in message for phrase in group), f"none of {group} in {message!r}"


@pytest.fixture(scope="module")
def load_runs(cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]) -> dict[str, CliResult]:
    """``info FILE --load`` (map location as saved) on files torch refuses to load as they are."""
    cases = ["cuda_tagged-zip", "cuda_tagged-legacy", "namespace-zip"]
    calls = [("info", built_checkpoints[c].path, "--load") for c in cases]
    return dict(zip(cases, cli.run_many(calls), strict=True))


@pytest.mark.parametrize("case_id", ["cuda_tagged-zip", "cuda_tagged-legacy"])
def test_cuda_checkpoint_loaded_as_saved_names_the_device_and_offers_cpu(
    case_id: str, load_runs: dict[str, CliResult], built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    message = _assert_one_sentence(load_runs[case_id], built_checkpoints[case_id].path)
    assert "cuda:1" in message
    assert "cpu" in message


def test_checkpoint_needing_other_globals_names_them(
    load_runs: dict[str, CliResult], built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    message = _assert_one_sentence(load_runs["namespace-zip"], built_checkpoints["namespace-zip"].path)
    assert "argparse.namespace" in message


def test_a_malformed_command_line_is_one_line_that_points_to_help(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    path = built_checkpoints["state_dict-zip"].path
    calls = [
        ("info",),
        ("export", path),
        ("diff", path),
        ("diff", path, path, "--sort", "size"),
        ("scan", path, "-x"),
    ]
    for result in cli.run_many(calls):
        assert result.returncode == 2, result.describe()
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.describe()
        command = result.args[0]
        assert lines[0].startswith(f"checkpoint-inspector {command}: ")
        assert f"`checkpoint-inspector {command} --help`" in lines[0]
