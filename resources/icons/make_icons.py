"""Renders checkpoint-inspector.svg to the PNG sizes desktops ask for, plus the Windows .ico and
macOS .icns containers (both hold PNG images). Run: python make_icons.py"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(HERE / "checkpoint-inspector.svg"))
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        image.save(str(HERE / f"checkpoint-inspector-{size}.png"))
    write_ico(HERE / "checkpoint-inspector.ico", (16, 24, 32, 48, 64, 128, 256))
    write_icns(HERE / "checkpoint-inspector.icns")
    del app
    return 0


def write_ico(path: Path, sizes: tuple[int, ...]) -> None:
    """An ICO file whose entries are PNG images (Windows Vista and later read these)."""
    images = [(size, (HERE / f"checkpoint-inspector-{size}.png").read_bytes()) for size in sizes]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, png in images:
        dim = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset + len(blobs))
        blobs += png
    path.write_bytes(header + entries + blobs)


def write_icns(path: Path) -> None:
    """An ICNS file with PNG entries (ic07 128 px, ic08 256 px, ic09 512 px)."""
    chunks = b""
    for kind, size in ((b"ic07", 128), (b"ic08", 256), (b"ic09", 512)):
        png = (HERE / f"checkpoint-inspector-{size}.png").read_bytes()
        chunks += kind + struct.pack(">I", 8 + len(png)) + png
    path.write_bytes(b"icns" + struct.pack(">I", 8 + len(chunks)) + chunks)


if __name__ == "__main__":
    sys.exit(main())
