"""The scan of a set of paths: which files are checkpoints (told by content), each file's report,
and the set's outcome under a failure threshold. The command line, SARIF and the pre-commit hook
print what this module decides.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckpointError, DamagedCheckpointError, NotACheckpointError
from .formatting import escape_text
from .layout import LayoutKind, resolve_layout
from .model import CheckpointIndex, GlobalClass
from .peek import peek
from .report import globals_json
from .safety import judge_globals

#: Folders a walk never enters: version-control metadata, whose objects are no one's checkpoints.
SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn"})

#: What ``--fail-on`` may name: the least severe verdict that fails the set.
FAIL_ON = ("dangerous", "unknown")

_RANK = {"dangerous": 0, "unknown": 1, "allowed": 2}


@dataclass(frozen=True)
class FileScan:
    """One file's scan: its verdict and globals (worst first), or the sentence why it is unreadable.

    A file that could not be read to the end but named unsafe globals before that keeps them (and
    its verdict): "damaged" never hides "dangerous".
    """

    path: str
    format: str
    verdict: str  # "safe", "unknown", "dangerous", or "unreadable"
    torchscript_code: bool = False
    globals: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    differentials: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def unreadable(self) -> bool:
        return self.verdict == "unreadable"

    @property
    def unsafe_globals(self) -> list[dict[str, Any]]:
        return [g for g in self.globals if g["verdict"] != GlobalClass.ALLOWED.value]

    def fails(self, fail_on: str) -> bool:
        """Whether this file fails a set scanned with ``--fail-on fail_on``."""
        return self.verdict == "dangerous" or (fail_on == "unknown" and self.verdict == "unknown")

    def to_json(self) -> dict[str, Any]:
        """The object ``scan --json`` prints for one file (raw strings: JSON escapes them)."""
        report: dict[str, Any] = {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict if not self.unreadable else "error",
            "torchscript_code": self.torchscript_code,
            "globals": self.globals,
            "warnings": self.warnings,
            "differentials": self.differentials,
        }
        if self.error:
            report["error"] = self.error
        return report

    def line(self) -> str:
        """The file's one line in a scan of several: its verdict and its worst globals, escaped."""
        if self.unreadable:
            return f"{escape_text(self.path)}: unreadable ({escape_text(self.error)})"
        worst = ", ".join(escape_text(g["name"]) for g in self.unsafe_globals[:3])
        more = " …" if len(self.unsafe_globals) > 3 else ""
        named = f": {worst}{more}" if worst else ""
        return f"{escape_text(self.path)}: {self.verdict} ({self.format}, {len(self.globals)} globals){named}"


#: How a path named on the command line is read: ``peek`` for a local path; the command line passes
#: one that also reads URLs where they live.
Reader = Callable[[str], CheckpointIndex]


def scan_file(path: str, *, whole_set: bool = True, read: Reader | None = None) -> FileScan:
    """Scan one path (a file, or a layout of several files) statically; nothing runs.

    Raises ``NotACheckpointError`` for a file whose content is no checkpoint, and
    ``CheckpointError`` for one that cannot be read and named no unsafe global before failing.
    """
    error = ""
    try:
        index = read(path) if read is not None else peek(path, whole_set=whole_set)
        shown, fmt, refs, notes = index.path, str(index.format), index.globals, index.warnings
        differentials = index.differentials
    except DamagedCheckpointError as exc:
        if all(g.verdict is GlobalClass.ALLOWED for g in exc.globals) and not exc.differentials:
            raise
        shown, fmt, refs, notes, error = path, "unreadable", exc.globals, [], exc.message
        differentials = exc.differentials
    judged = judge_globals(refs, fmt, differentials)
    globals_ = sorted(globals_json(refs), key=lambda g: (_RANK.get(g["verdict"], 0), g["name"]))
    return FileScan(
        shown,
        fmt,
        judged.verdict.word,
        judged.torchscript_code,
        globals_,
        list(notes),
        list(differentials),
        error,
    )


def unreadable(path: str, sentence: str) -> FileScan:
    """The scan of a file that could not be read at all."""
    return FileScan(path, "unreadable", "unreadable", error=sentence)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether a path relative to the walked folder matches one of the globs (a glob without a
    slash is matched against the file's name too)."""
    base = rel.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(rel, p) or ("/" not in p and fnmatch.fnmatchcase(base, p)) for p in patterns
    )


def _set_in(folder: str) -> tuple[str, set[str]] | None:
    """The checkpoint of several files a folder holds (a DCP folder, an HF shard set): the path
    that stands for it and the files that belong to it; None for any other folder."""
    try:
        layout = resolve_layout(folder)
    except CheckpointError:
        return None
    if layout.kind is LayoutKind.DCP_FOLDER:
        return layout.path, {os.path.join(folder, n) for n in os.listdir(folder)}
    if layout.kind is LayoutKind.HF_SHARD_SET:
        return layout.path, {layout.path, *(full for _, full in layout.shard_files())}
    return None


def walk(folder: str, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Iterator[tuple[str, bool]]:
    """What to scan under ``folder`` (recursively, sorted, links not followed) that the globs keep:
    ``(path, True)`` for a DCP folder or HF shard set, read as the one checkpoint it is, and
    ``(path, False)`` for every other file, the files of such a set that it does not name included."""

    def kept(path: str) -> bool:
        rel = os.path.relpath(path, folder).replace(os.sep, "/")
        return not (include and not _matches(rel, include)) and not (exclude and _matches(rel, exclude))

    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS)
        members: set[str] = set()
        found = _set_in(root)
        if found is not None:
            unit, members = found
            if kept(unit):
                yield unit, True
        for name in sorted(files):
            full = os.path.join(root, name)
            if full in members or not kept(full) or os.path.islink(full) or not os.path.isfile(full):
                continue
            yield full, False


@dataclass
class SetScan:
    """The scans of a set of paths, and the files a walk passed over because they are no checkpoint."""

    files: list[FileScan] = field(default_factory=list)
    skipped: int = 0

    def exit_code(self, fail_on: str) -> int:
        """1 when any file fails under ``fail_on``, else 2 when any is unreadable, else 0."""
        if any(f.fails(fail_on) for f in self.files):
            return 1
        return 2 if any(f.unreadable for f in self.files) else 0

    def counts(self) -> dict[str, int]:
        words = ("safe", "unknown", "dangerous", "unreadable")
        return {w: sum(1 for f in self.files if f.verdict == w) for w in words}

    def summary(self) -> str:
        """One line: how many files were scanned, by verdict, and how many were passed over."""
        counts = self.counts()
        parts = ", ".join(f"{n} {w}" for w, n in counts.items())
        noun = "file" if len(self.files) == 1 else "files"
        skipped = f"; {self.skipped} other files skipped (not checkpoints)" if self.skipped else ""
        return f"{len(self.files)} {noun} scanned: {parts}{skipped}."


def scan_paths(
    paths: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = (), read: Reader | None = None
) -> SetScan:
    """Scan every path: a file as named (whatever it holds, read by ``read`` when given), a folder
    by walking it for the checkpoints it holds (a DCP folder or an HF set as one, every other file
    whose content is a checkpoint on its own)."""
    result = SetScan()
    for path in paths:
        if os.path.isdir(path):
            for found, whole in walk(path, include, exclude):
                try:
                    result.files.append(_scan_or_sentence(found, whole_set=whole))
                except NotACheckpointError:
                    result.skipped += 1
        else:
            try:
                result.files.append(_scan_or_sentence(path, whole_set=True, read=read))
            except NotACheckpointError as exc:
                result.files.append(unreadable(path, exc.message))
    return result


def _scan_or_sentence(path: str, *, whole_set: bool, read: Reader | None = None) -> FileScan:
    try:
        return scan_file(path, whole_set=whole_set, read=read)
    except NotACheckpointError:
        raise
    except CheckpointError as exc:
        return unreadable(path, exc.message)
