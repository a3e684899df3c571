"""Per-user desktop integration on Linux: the desktop entry, the file types and the icons.

``install()`` copies them under the XDG data home (``~/.local/share`` by default), records each
file it wrote in a manifest, and refreshes the MIME and desktop databases when their tools are
present. ``uninstall()`` removes exactly the files in the manifest, then refreshes again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

APP_ID = "io.github.checkpointinspector.CheckpointInspector"
MIME_TYPES = ("application/x-pytorch-checkpoint", "application/x-safetensors")
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
_ROOT = Path(__file__).resolve().parents[1]
PACKAGING = _ROOT / "packaging" / "linux"
ICONS = _ROOT / "resources" / "icons"


class DesktopError(Exception):
    """Installing or removing the desktop integration failed; the message is a sentence."""


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def _manifest(home: Path) -> Path:
    return home / "checkpoint-inspector" / "desktop-install.json"


def _exec_command() -> str:
    """The command the desktop entry runs: the bare name if it is on PATH, else its full path."""
    found = shutil.which("checkpoint-inspector")
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if found and (here is None or Path(found).resolve() == here or here.name != "checkpoint-inspector"):
        return "checkpoint-inspector"
    if here is not None and here.name == "checkpoint-inspector" and here.exists():
        return str(here)
    return f"{sys.executable} -m inspector"


def _refresh(home: Path) -> list[str]:
    """Run the database tools that exist; return what ran (for the report)."""
    ran = []
    tools = (
        ("update-mime-database", [str(home / "mime")]),
        ("update-desktop-database", [str(home / "applications")]),
    )
    for tool, args in tools:
        if shutil.which(tool):
            subprocess.run([tool, *args], check=False, capture_output=True)
            ran.append(tool)
    return ran


def install(home: Path | None = None) -> list[Path]:
    """Register the app and its file types for this user. Returns the files written."""
    home = home or data_home()
    if not (PACKAGING / f"{APP_ID}.desktop").exists():
        raise DesktopError(f"The desktop files are missing from {PACKAGING}; reinstall the app.")
    written: list[Path] = []

    def put(target: Path, text: str | None = None, source: Path | None = None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            target.write_text(text, encoding="utf-8")
        elif source is not None:
            shutil.copyfile(source, target)
        written.append(target)

    entry = (PACKAGING / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    entry = entry.replace("Exec=checkpoint-inspector ", f"Exec={_exec_command()} ")
    put(home / "applications" / f"{APP_ID}.desktop", text=entry)
    put(home / "mime" / "packages" / f"{APP_ID}.xml", source=PACKAGING / f"{APP_ID}.mime.xml")
    put(home / "metainfo" / f"{APP_ID}.metainfo.xml", source=PACKAGING / f"{APP_ID}.metainfo.xml")
    hicolor = home / "icons" / "hicolor"
    put(hicolor / "scalable" / "apps" / f"{APP_ID}.svg", source=ICONS / "checkpoint-inspector.svg")
    for mime in MIME_TYPES:
        icon = mime.replace("/", "-")
        put(hicolor / "scalable" / "mimetypes" / f"{icon}.svg", source=ICONS / "checkpoint-inspector.svg")
    for size in ICON_SIZES:
        png = ICONS / f"checkpoint-inspector-{size}.png"
        put(hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png", source=png)
        for mime in MIME_TYPES:
            put(hicolor / f"{size}x{size}" / "mimetypes" / f"{mime.replace('/', '-')}.png", source=png)
    manifest = _manifest(home)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"app_id": APP_ID, "files": [str(p) for p in written]}, indent=1))
    _refresh(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove exactly what ``install`` wrote. Returns the files removed."""
    home = home or data_home()
    manifest = _manifest(home)
    if not manifest.exists():
        raise DesktopError(f"Checkpoint Inspector is not installed for this user under {home}.")
    files = [Path(p) for p in json.loads(manifest.read_text()).get("files", [])]
    removed = []
    for path in files:
        if path.is_file() and home in path.parents:
            path.unlink()
            removed.append(path)
    manifest.unlink()
    _refresh(home)  # with mime/packages still there, the database drops our types
    # Then the folders this install created and that are now empty (never the XDG roots).
    for folder in sorted({p.parent for p in removed} | {manifest.parent}, key=lambda p: -len(p.parts)):
        while folder != home and home in folder.parents and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed
