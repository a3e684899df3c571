"""Windows, macOS and PyInstaller recipes we cannot run here, checked by parsing them."""

from __future__ import annotations

import plistlib
import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = {"pth", "pt", "ckpt"}


def test_windows_installer_registers_every_type_with_a_progid_and_icon() -> None:
    iss = (ROOT / "packaging/windows/checkpoint-inspector.iss").read_text()
    progid = re.search(r'#define ProgId "([^"]+)"', iss)
    assert progid is not None
    registry = [line for line in iss.splitlines() if line.startswith("Root: HKA;")]
    for ext in (*EXTENSIONS, "safetensors"):
        assert any(f"Classes\\.{ext}\\OpenWithProgids" in line for line in registry), ext
    assert any("{#ProgId}\\DefaultIcon" in line for line in registry)
    command = next(line for line in registry if "{#ProgId}\\shell\\open\\command" in line)
    assert '-- ""%1""' in command  # the file is never taken for an option
    assert "ChangesAssociations=yes" in iss
    assert (ROOT / "resources/icons/checkpoint-inspector.ico").exists()


def test_macos_bundle_declares_and_opens_our_types() -> None:
    with open(ROOT / "packaging/macos/Info.plist", "rb") as f:
        plist = plistlib.load(f)
    exported = {t["UTTypeIdentifier"]: t for t in plist["UTExportedTypeDeclarations"]}
    checkpoint = exported["io.github.checkpointinspector.pytorch-checkpoint"]
    assert set(checkpoint["UTTypeTagSpecification"]["public.filename-extension"]) == EXTENSIONS
    opened = {ct for doc in plist["CFBundleDocumentTypes"] for ct in doc["LSItemContentTypes"]}
    assert opened == set(exported)
    assert all(doc["CFBundleTypeRole"] == "Viewer" for doc in plist["CFBundleDocumentTypes"])
    assert plist["CFBundleIdentifier"] == "io.github.checkpointinspector.CheckpointInspector"


def test_pyinstaller_spec_parses_and_its_data_exist() -> None:
    spec = (ROOT / "packaging/pyinstaller/checkpoint-inspector.spec").read_text()
    compile(spec, "checkpoint-inspector.spec", "exec")
    assert "inspector.engine.worker" in spec  # the worker runs from the same binary
    for folder in ("packaging/linux", "resources/icons", "packaging/pyinstaller/launch.py"):
        assert (ROOT / folder).exists()


def test_icons_exist_in_every_size_and_the_containers_parse() -> None:
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = (ROOT / f"resources/icons/checkpoint-inspector-{size}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (size, size)
    ico = (ROOT / "resources/icons/checkpoint-inspector.ico").read_bytes()
    assert struct.unpack("<HHH", ico[:6])[:2] == (0, 1) and struct.unpack("<H", ico[4:6])[0] >= 5
    icns = (ROOT / "resources/icons/checkpoint-inspector.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
