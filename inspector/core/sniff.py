"""Deciding what a file is from its first bytes, never from its extension, in torch.load's order.

torch.load reads a file as a zip when its first four bytes are a local header, else as a tar when
``tarfile`` opens it (a first header whose checksum holds, whatever its magic), else as a stream of
pickles from its first byte. A file that looks like nothing here may still be such a stream; the
static reader tries that before it says what the file is instead.
"""

from __future__ import annotations

import enum
import json
import struct

from .torch_tar import header_checks

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")


class FileKind(enum.Enum):
    ZIP = "zip"
    LEGACY_TORCH = "torch-legacy"
    PICKLE = "pickle"
    TAR = "tar"  # the torch 0.1 format, or some other tar archive
    SAFETENSORS = "safetensors"
    EMPTY = "empty"
    NOT_CHECKPOINT = "other"


#: (magic prefix, what it is) for files people mistake for checkpoints.
_KNOWN = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file (unpack it first)"),
    (b"BZh", "a bzip2-compressed file (unpack it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (unpack it first)"),
    (b"(\xb5/\xfd", "a zstd-compressed file (unpack it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras or h5py weights)"),
    (b"\x7fELF", "a Linux executable"),
    (b"MZ", "a Windows executable"),
    (b"GGUF", "a GGUF model (llama.cpp)"),
    (b"RIFF", "a RIFF media file"),
]


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head, 0)
    if head[8:9] != b"{" or n < 2:
        return False
    # A header length past the end of the file is still a safetensors file that lies (the reader
    # says so), unless the 8 bytes are printable text that happens to precede a brace.
    return n <= size - 8 or not all(0x20 <= b < 0x7F for b in head[:8])


def _text_kind(head: bytes) -> str | None:
    """What a text file is, when it is text."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut by the end of the sample still counts as text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    stripped = text.lstrip()
    if stripped.startswith("version https://git-lfs.github.com/spec"):
        return "a Git LFS pointer, not the checkpoint itself (run `git lfs pull` to fetch it)"
    low = stripped[:200].lower()
    if low.startswith(("<!doctype html", "<html")):
        return "an HTML page (a download that returned a web page instead of the file?)"
    if stripped.startswith(("{", "[")):
        try:
            json.loads(text)
            return "a JSON file"
        except ValueError:
            pass
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if lines and all(ln.startswith("import ") or "/" in ln or "\\" in ln or ln.isidentifier()
                     for ln in lines[:20]):  # fmt: skip
        return "a Python path-configuration text file (the other meaning of .pth)"
    return "a text file"


def sniff(head: bytes, size: int) -> tuple[FileKind, str | None]:
    """The kind of file, and for non-checkpoints what it is instead ("a PNG image")."""
    if size == 0:
        return FileKind.EMPTY, None
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return FileKind.ZIP, None
    if header_checks(head[:512]):
        return FileKind.TAR, None
    if head.startswith(_LEGACY_PREFIX):
        return FileKind.LEGACY_TORCH, None
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return FileKind.PICKLE, None
    if len(head) >= 263 and head[257:262] == b"ustar":
        return FileKind.NOT_CHECKPOINT, "a damaged tar archive (its first header's checksum is wrong)"
    if _is_safetensors(head, size):
        return FileKind.SAFETENSORS, None
    for magic, what in _KNOWN:
        if head.startswith(magic):
            return FileKind.NOT_CHECKPOINT, what
    if head[:4] == b"PK\x07\x08" or head[:2] == b"PK":
        return FileKind.ZIP, None
    text = _text_kind(head)
    if text is not None:
        # Protocol 0/1 pickles are ASCII too: one that starts with an opcode and ends with "." is one
        # (the static reader tries every other text as a pickle before calling it text).
        if head[:1] in (b"(", b"c", b"}", b"]", b")", b"N") and head.rstrip().endswith(b"."):
            return FileKind.PICKLE, None
        return FileKind.NOT_CHECKPOINT, text
    if head[:1] in (b"(", b"}", b"]", b")", b"c", b"q"):
        return FileKind.PICKLE, None
    return (
        FileKind.NOT_CHECKPOINT,
        "binary data in no format this app recognises",
    )
