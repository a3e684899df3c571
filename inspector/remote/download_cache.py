"""Where whole copies of remote files are kept, and how one gets there: "Download and load".

``torch.load`` needs the file on this machine and is never handed a URL, so a remote file is
downloaded first: by ranged reads of the version its tree was read from (a new size or ETag is
refused, as the ranged reads refuse it), into a temporary file in the cache folder that is synced
and renamed into place only when complete, so a cancelled or failed download leaves nothing. A copy
of the same URL and version is used again without fetching a byte. Cache names are made from the
URL as sentences show it (no user name, password or query), so no credential reaches the disk.
The window and the command line both ask ``cache_folder`` where the folder is.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from inspector.core.errors import CheckpointError
from inspector.core.formatting import format_bytes

from .cancelling import ReadCancelled, check_cancelled
from .dcp_folders import is_dcp_folder
from .locations import RemoteLocation, parse_location
from .opening import changed, open_buffer
from .shard_sets import is_index

#: Names the cache folder instead of the platform's cache directory.
CACHE_VARIABLE = "CHECKPOINT_INSPECTOR_CACHE"
#: The window asks before downloading a file larger than this.
LARGE_DOWNLOAD = 2 << 30
CHUNK = 8 << 20  # bytes per ranged request of a download (progress is told after each)

_COPY = re.compile(r"^[0-9a-f]{20}-[^/\\]+$")  # a finished copy: digest, then the file's own name
_PART = re.compile(r"^\.[0-9a-f]{20}-.+\.part$")  # a download under way, or one a crash left

#: (bytes written, bytes in all) after each chunk.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RemoteVersion:
    """The version of a remote file its tree was read from: its size and ETag ("" if none)."""

    size: int
    etag: str = ""


@dataclass(frozen=True)
class CachedCopy:
    """A whole local copy of a remote file, and whether it was there before this download."""

    path: Path
    downloaded: datetime  # when it was written into the cache
    reused: bool

    def sentence(self) -> str:
        """“using the copy downloaded on 2026-12-01 19:40” or “downloaded into the cache folder”."""
        if self.reused:
            return f"using the copy downloaded on {self.downloaded:%Y-%m-%d %H:%M}"
        return "downloaded into the cache folder"


@dataclass(frozen=True)
class CacheContents:
    folder: Path
    count: int
    size: int


def cache_folder() -> Path:
    """The folder of downloaded checkpoints: ``$CHECKPOINT_INSPECTOR_CACHE``, else the platform's
    cache directory (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux) / checkpoint-inspector/downloads."""
    override = os.environ.get(CACHE_VARIABLE)
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "checkpoint-inspector" / "cache" / "downloads"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "checkpoint-inspector" / "downloads"
    base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return base / "checkpoint-inspector" / "downloads"


def download_refusal(url: str) -> str | None:
    """Why ``url`` cannot be downloaded and loaded (a layout of several files), or None."""
    location = parse_location(url)
    if is_index(location) or is_dcp_folder(location):
        return (
            f"{location.name} is a layout of several files (an HF shard set or a DCP folder); Download and "
            "load takes one file: download the set with its own tools (e.g. `hf download`) and open the "
            "local copy."
        )
    return None


def space_refusal(name: str, size: int, folder: Path | None = None) -> str | None:
    """Why a file of ``size`` bytes does not fit in the cache folder's free space, or None."""
    folder = folder or cache_folder()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if size <= free:
        return None
    return (
        f"{name} is {format_bytes(size)}, and the cache folder {folder} has only {format_bytes(free)} free; "
        "it was not downloaded."
    )


def cached_copy(url: str, version: RemoteVersion) -> CachedCopy | None:
    """The cache's copy of ``url`` at ``version``, if one was downloaded (a file with no ETag never
    is reused: nothing says it is the same)."""
    location = parse_location(url)
    path = cache_folder() / _copy_name(location, version)
    if not version.etag or not path.is_file() or path.stat().st_size != version.size:
        return None
    return CachedCopy(path, datetime.fromtimestamp(path.stat().st_mtime), reused=True)


def download(url: str, version: RemoteVersion | None = None, progress: Progress | None = None) -> CachedCopy:
    """The whole file at ``url`` in the cache folder (downloaded, or the copy already there).

    ``version`` is what the tree was read from: a file whose size or ETag is now another is
    refused. A sentence for every failure; nothing is left in the cache but a complete copy.
    """
    refusal = download_refusal(url)
    if refusal is not None:
        raise CheckpointError(refusal)
    location = parse_location(url)
    folder = cache_folder()
    with open_buffer(location, 1 << 62) as buffer:
        now = RemoteVersion(buffer.size, buffer.transfer.etag)
        if version is not None and (
            now.size != version.size or (version.etag and now.etag and now.etag != version.etag)
        ):
            raise changed(location.shown, "its size or ETag is not the one its tree was read from")
        found = cached_copy(url, now)
        if found is not None:
            return found
        refusal = space_refusal(location.name, now.size, folder)
        if refusal is not None:
            raise CheckpointError(refusal)
        final = folder / _copy_name(location, now)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{final.name}.", suffix=".part")
        except OSError as exc:
            raise _write_error(location, folder, exc) from None
        try:
            with os.fdopen(fd, "wb") as out:
                done = 0
                if progress is not None:
                    progress(0, now.size)
                while done < now.size:
                    check_cancelled()
                    data = buffer.read_through(done, min(now.size, done + CHUNK))
                    out.write(data)
                    done += len(data)
                    if progress is not None:
                        progress(done, now.size)
                out.flush()
                os.fsync(out.fileno())
            check_cancelled()
            os.replace(temp, final)
        except ReadCancelled:
            _remove(temp)
            raise ReadCancelled(f"Downloading {location.name} was cancelled; nothing was kept.") from None
        except OSError as exc:
            _remove(temp)
            raise _write_error(location, folder, exc) from None
        except BaseException:
            _remove(temp)
            raise
    _sync_folder(folder)
    return CachedCopy(final, datetime.fromtimestamp(final.stat().st_mtime), reused=False)


def cache_contents() -> CacheContents:
    """How many downloaded copies the cache folder holds, and their bytes."""
    folder = cache_folder()
    copies = [p for p in _entries(folder) if _COPY.match(p.name)]
    return CacheContents(folder, len(copies), sum(p.stat().st_size for p in copies))


def clear_cache() -> int:
    """Remove every downloaded copy (and any a crashed download left); returns how many copies.

    Only the cache's own files are removed, even where ``CHECKPOINT_INSPECTOR_CACHE`` names a
    folder that holds others.
    """
    removed = 0
    for path in _entries(cache_folder()):
        if _COPY.match(path.name) or _PART.match(path.name):
            removed += bool(_COPY.match(path.name))
            _remove(str(path))
    return removed


def _copy_name(location: RemoteLocation, version: RemoteVersion) -> str:
    """``<digest of URL and version>-<file name>``: the URL as shown, so no token is in it."""
    digest = hashlib.sha256(f"{location.shown}\n{version.size}\n{version.etag}".encode()).hexdigest()
    base = location.shown.rstrip("/").rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100] or "checkpoint"
    return f"{digest[:20]}-{safe}"


def _entries(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return []


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX; Windows has no directory handles to sync)."""
    if sys.platform == "win32":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_error(location: RemoteLocation, folder: Path, exc: OSError) -> CheckpointError:
    return CheckpointError(
        f"{location.name} could not be written into the cache folder {folder}: {exc.strerror or exc}."
    )
