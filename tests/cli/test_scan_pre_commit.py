"""The ``checkpoint-scan`` pre-commit hook, run by the real ``pre-commit`` from this repository's
``.pre-commit-hooks.yaml`` as git's pre-commit hook in a scratch repository: a commit that adds a
payload is refused, a clean one goes through."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import REPO_ROOT

EVIL = b"\x80\x02cposix\nsystem\n)R."


def _pre_commit() -> str:
    found = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")
    assert found, "the pre-commit package (extra `test`) is not installed"
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    """git and pre-commit confined to the scratch folder; ``checkpoint-inspector`` on PATH is this
    checkout's, as an installed one would be."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "checkpoint-inspector"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m inspector "$@"\n', encoding="utf-8")
    tool.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        HOME=str(tmp_path),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    return env


def _git(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_hook_refuses_a_commit_with_a_payload_and_passes_a_clean_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    repo = tmp_path / "project"
    repo.mkdir()
    assert _git(repo, env, "init", "-q").returncode == 0
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        f'#!/bin/sh\nexec "{_pre_commit()}" try-repo "{REPO_ROOT}" checkpoint-scan\n', encoding="utf-8"
    )
    hook.chmod(0o755)

    torch.save({"w": torch.zeros(2)}, repo / "model.pth")
    (repo / "notes.txt").write_text("not scanned\n", encoding="utf-8")
    _git(repo, env, "add", "model.pth", "notes.txt")
    clean = _git(repo, env, "commit", "-q", "-m", "clean weights")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "scan checkpoints for pickled code" in clean.stdout + clean.stderr

    (repo / "evil.pth").write_bytes(EVIL)
    _git(repo, env, "add", "evil.pth")
    refused = _git(repo, env, "commit", "-q", "-m", "payload")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert "evil.pth: dangerous" in output and "posix.system" in output
    assert "model.pth" not in output  # only the staged file is scanned
    log = _git(repo, env, "log", "--format=%s")
    assert log.stdout.split() == ["clean", "weights"]
