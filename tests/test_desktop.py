"""Linux desktop integration, installed into a scratch XDG data home and queried for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from inspector.desktop import APP_ID, PACKAGING

ROOT = Path(__file__).resolve().parents[1]


#: The host tools these tests run, and the Debian package that brings each (``.ci/run`` installs them).
HOST_TOOLS = {
    "desktop-file-validate": "desktop-file-utils",
    "appstreamcli": "appstream",
    "xmllint": "libxml2-utils",
    "xdg-mime": "xdg-utils",
    "update-mime-database": "shared-mime-info",
    "mimetype": "libfile-mimeinfo-perl",
}


def _tool(name: str) -> str:
    """The tool's path; a missing one fails the test with the package that brings it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the Debian package {HOST_TOOLS[name]} (.ci/run does)")
    return found


@pytest.fixture
def xdg(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("XDG_CURRENT_DESKTOP", None)
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", *args], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def _query(env: dict[str, str], *args: str) -> str:
    tool = _tool("xdg-mime")
    out = subprocess.run([tool, "query", *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_files_are_valid() -> None:
    subprocess.run([_tool("desktop-file-validate"), str(PACKAGING / f"{APP_ID}.desktop")], check=True)
    subprocess.run([_tool("appstreamcli"), "validate", "--no-net", str(PACKAGING / f"{APP_ID}.metainfo.xml")],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([_tool("xmllint"), "--noout", str(PACKAGING / f"{APP_ID}.mime.xml")], check=True)
    entry = (PACKAGING / f"{APP_ID}.desktop").read_text()
    assert "Exec=checkpoint-inspector -- %F" in entry
    assert "MimeType=application/x-pytorch-checkpoint;application/x-safetensors;" in entry


def test_install_claims_checkpoints_not_text_pth_and_uninstall_removes_it_all(
    tmp_path: Path, xdg: dict[str, str]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    torch.save({"w": torch.ones(2)}, files / "model.pth")
    torch.save({"w": torch.ones(2)}, files / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(2)}, files / "run.ckpt")
    torch.save({"w": torch.ones(2)}, files / "weights.pth.tar")
    (files / "site.pth").write_text("import os\n/usr/lib/python3/dist-packages\n")
    with zipfile.ZipFile(files / "notes.pth", "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    (files / "m.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")

    for tool in ("update-mime-database", "mimetype"):  # the install and xdg-mime call these
        _tool(tool)
    done = _cli(xdg, "--install-desktop")
    assert done.returncode == 0, done.stderr
    for name in ("model.pth", "legacy.pth", "run.ckpt", "weights.pth.tar"):
        assert _query(xdg, "filetype", str(files / name)) == "application/x-pytorch-checkpoint", name
    assert _query(xdg, "filetype", str(files / "site.pth")) == "text/plain"
    assert _query(xdg, "filetype", str(files / "notes.pth")) == "application/zip"
    assert _query(xdg, "filetype", str(files / "m.safetensors")) == "application/x-safetensors"
    assert _query(xdg, "default", "application/x-pytorch-checkpoint") == f"{APP_ID}.desktop"
    data = Path(xdg["XDG_DATA_HOME"])
    installed = data / "applications" / f"{APP_ID}.desktop"
    subprocess.run([_tool("desktop-file-validate"), str(installed)], check=True)
    assert (data / "icons/hicolor/256x256/apps" / f"{APP_ID}.png").exists()

    ours = {p for p in data.rglob("*") if p.is_file()} - _generated(data)
    removed = _cli(xdg, "--uninstall-desktop")
    assert removed.returncode == 0, removed.stderr
    left = {p for p in data.rglob("*") if p.is_file()} - _generated(data)
    assert left == set() and ours  # nothing of ours remains
    assert _query(xdg, "filetype", str(files / "run.ckpt")) != "application/x-pytorch-checkpoint"
    again = _cli(xdg, "--uninstall-desktop")
    assert again.returncode == 2 and "not installed" in again.stderr


def _generated(data: Path) -> set[Path]:
    """Files the database tools regenerate (caches), not files the install wrote."""
    return {p for p in data.rglob("*") if p.is_file() and (
        p.parent == data / "mime" or p.name == "mimeinfo.cache")}  # fmt: skip
