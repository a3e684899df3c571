"""Files people mistake for checkpoints, told by their first bytes: what each one is instead.

torch.load would still unpickle such a file from its first byte, so the static reader tries it as
a pickle before it names what the file is ("a PNG image", "a Git LFS pointer").
"""

from __future__ import annotations

import json

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


def damaged_tar(head: bytes, size: int) -> str | None:
    """A tar header tarfile refuses (its checksum is wrong): torch does not read it as a tar."""
    if len(head) >= 263 and head[257:262] == b"ustar":
        return "a damaged tar archive (its first header's checksum is wrong)"
    return None


def known_format(head: bytes, size: int) -> str | None:
    """What a file of a well-known format that is not a checkpoint is, by its magic number."""
    for magic, what in _KNOWN:
        if head.startswith(magic):
            return what
    return None


def text_kind(head: bytes, size: int = 0) -> str | None:
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


def binary_data(head: bytes, size: int) -> str:
    """Whatever is left: bytes in no format this reader knows."""
    return "binary data in no format this app recognises"
