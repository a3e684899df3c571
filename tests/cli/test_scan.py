"""``checkpoint-inspector scan`` (and ``info``) on the hostile corpus: run as real subprocesses.

Every run must leave no marker file behind and give the documented exit code: 0 when every global
is allowed, 1 when any is unknown or dangerous, 2 when the file cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.checkpoints import BuiltCheckpoint
from tests.conftest import CliResult, CliRunner
from tests.hostile import MARKER, HostileCase, build_corpus

_EXIT = {"safe": 0, "unknown": 1, "dangerous": 1, "error": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostileCase]:
    return build_corpus(tmp_path_factory.mktemp("hostile_cli"))


@pytest.fixture(scope="module")
def runs(cli: CliRunner, corpus: dict[str, HostileCase]) -> dict[tuple[str, str], CliResult]:
    """scan, scan --json and info --json of every hostile file, all at once."""
    calls: list[tuple[str, ...]] = []
    keys: list[tuple[str, str]] = []
    for case_id, case in corpus.items():
        for mode, args in (("scan", ("scan",)), ("json", ("scan", "--json")), ("info", ("info", "--json"))):
            calls.append((*args, str(case.path)))
            keys.append((case_id, mode))
    results = cli.run_many(calls)
    return dict(zip(keys, results, strict=True))


def _case_ids() -> list[str]:
    from tests.core.test_hostile import CASE_IDS

    return list(CASE_IDS)


@pytest.mark.parametrize("case_id", _case_ids())
def test_scan_exit_code_and_verdict(
    case_id: str, corpus: dict[str, HostileCase], runs: dict[tuple[str, str], CliResult]
) -> None:
    case = corpus[case_id]
    text, as_json = runs[(case_id, "scan")], runs[(case_id, "json")]
    assert not (case.path.parent / MARKER).exists()
    assert text.returncode == _EXIT[case.verdict], text.describe()
    assert as_json.returncode == _EXIT[case.verdict], as_json.describe()
    assert "Traceback" not in text.stderr + as_json.stderr
    if case.verdict == "error":
        assert text.stdout == "" and case.error_part in text.stderr
        assert len(text.stderr.strip().splitlines()) == 1
        return
    report = json.loads(as_json.stdout)
    assert report["verdict"] == case.verdict
    assert Path(report["path"]).name == case.path.name or report["path"] == str(case.path)
    names = {g["name"]: g for g in report["globals"]}
    for name in case.dangerous:
        assert names[name]["verdict"] == "dangerous"
        assert names[name]["count"] >= 1 and names[name]["occurrences"]
        assert name in text.stdout
    assert text.stdout.splitlines()[0].endswith(
        f": {case.verdict} ({report['format']}, {len(names)} distinct global{'' if len(names) == 1 else 's'})"
    )
    if case.error_part:  # read partly: the error is told too
        assert case.error_part in report["error"] and case.error_part in as_json.stderr


@pytest.mark.parametrize("case_id", _case_ids())
def test_info_on_hostile_files_runs_nothing(
    case_id: str, corpus: dict[str, HostileCase], runs: dict[tuple[str, str], CliResult]
) -> None:
    result = runs[(case_id, "info")]
    assert not (corpus[case_id].path.parent / MARKER).exists()
    assert result.returncode in (0, 2), result.describe()
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        info = json.loads(result.stdout)
        listed = {g["name"] for g in info["globals"] if g["verdict"] == "dangerous"}
        assert set(corpus[case_id].dangerous) <= listed


def test_scan_json_globals_match_info_json(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    """The same global entries in both reports (scan sorts them worst first)."""
    path = built_checkpoints["namespace-zip"].path
    scan, info = cli.run_many([("scan", "--json", path), ("info", "--json", path)])
    assert scan.returncode == 1
    scanned = json.loads(scan.stdout)
    assert scanned["verdict"] == "unknown"
    key = lambda g: g["name"]  # noqa: E731
    assert sorted(scanned["globals"], key=key) == sorted(info.json()["globals"], key=key)


def test_clean_checkpoint_scans_safe(cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]) -> None:
    result = cli.run("scan", "--json", built_checkpoints["state_dict-zip"].path)
    assert result.returncode == 0, result.describe()
    report = json.loads(result.stdout)
    assert report["verdict"] == "safe"
    assert all(g["verdict"] == "allowed" for g in report["globals"])
    assert {"pickle", "offset", "count", "occurrences"} <= set(report["globals"][0])


def test_missing_file_exits_2(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.run("scan", tmp_path / "nope.pth")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


# -- the verdict is the safety policy's; strings from the file are printed escaped -----------------


def _scripted(path: Path) -> Path:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(
            torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())), str(path)
        )
    return path


def test_a_torchscript_archive_scans_as_data_that_holds_code(cli: CliRunner, tmp_path: Path) -> None:
    from inspector.core.safety import TORCHSCRIPT_CODE

    path = _scripted(tmp_path / "scripted.pt")
    text, as_json = cli.run_many([("scan", path), ("scan", "--json", path)])
    assert text.returncode == 0 and as_json.returncode == 0, text.describe()
    assert ": safe (torchscript, " in text.stdout.splitlines()[0]
    assert f"code: it {TORCHSCRIPT_CODE}" in text.stdout
    assert "dangerous" not in text.stdout
    report = json.loads(as_json.stdout)
    assert report["verdict"] == "safe" and report["torchscript_code"] is True


def test_scan_prints_names_from_the_file_escaped(cli: CliRunner, tmp_path: Path) -> None:
    spoof = "os\x1b[2K\r/tmp/x.pth: safe (pickle, 0 distinct globals)\x1b[8m"
    path = tmp_path / "spoof.pth"
    path.write_bytes(b"\x80\x02c" + spoof.encode() + b"\nsystem\n)R.")
    text, as_json = cli.run_many([("scan", path), ("scan", "--json", path)])
    assert text.returncode == 1, text.describe()
    assert "\x1b" not in text.stdout and "\r" not in text.stdout
    assert text.stdout.splitlines()[0].endswith(": dangerous (pickle, 1 distinct global)")
    assert "os\\x1b[2K\\r/tmp/x.pth" in text.stdout
    assert json.loads(as_json.stdout)["globals"][0]["module"] == spoof  # the JSON keeps the data


def test_an_unregistered_extension_code_is_unreadable_with_the_reason(cli: CliRunner, tmp_path: Path) -> None:
    from tests.hostile_globals import ext_pickle, in_torch_zip, write

    path = write(tmp_path / "ext.pth", in_torch_zip(ext_pickle(tmp_path, 0x1234)))
    result = cli.run("scan", path)
    assert result.returncode == 2, result.describe()
    assert "extension code 4660, which nothing has registered" in result.stderr
    assert not (tmp_path / MARKER).exists()
