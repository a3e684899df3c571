"""torch.save's zip archive and TorchScript's, read as torch reads them: the tree from the
data.pkl torch takes, the globals of every pickle any zip reader could take in the archive.

torch.load reads a file as a zip exactly when its first four bytes are a local header. Records
are found as torch finds them (in the first record's folder, names matched as its zip reader
matches them); every way another reader would read the archive otherwise is a differential.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, BinaryIO

from .errors import CheckpointError, DamagedCheckpointError
from .formats import Format
from .model import CheckpointIndex, GlobalClass
from .reading import (
    MAX_ARCHIVE_PICKLE_BYTES,
    MAX_PICKLE_BYTES,
    FileReader,
    OpenedFile,
    ReadState,
    limited,
)
from .safety import TORCHSCRIPT_CODE, in_format
from .torch_pickle import StorageRef
from .unpickler import NeedMoreData
from .ziparchive import ZipArchive, ZipMember

MAX_COMPRESSED_PICKLE = 64 << 20  # torch never compresses a pickle; inflate at most this much
LOCAL_HEADER = b"PK\x03\x04"
_EOCD = b"PK\x05\x06"


class TorchZipReader(FileReader):
    """A zip archive torch reads as one: torch.save's, or TorchScript's (a variant of it)."""

    formats = (Format.TORCH_ZIP, Format.TORCHSCRIPT)

    def probe(self, head: bytes, size: int) -> bool:
        return head[:4] == LOCAL_HEADER

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        try:
            archive = ZipArchive(file.f, file.size, state.name)
        except CheckpointError:
            _scan_other_zip_readers(file.f, file.size, state, warnings)
            raise
        fmt, top = read_archive(archive, state, warnings)
        return state.index(file, fmt, top, warnings)


def _find_data_pkl(archive: ZipArchive) -> tuple[str, str] | None:
    """(prefix, member name) of the archive's data.pkl, whatever its top-level folder is called
    (the first one, for readers other than torch's, which takes the first record's folder)."""
    candidates = [m.name for m in archive.members if m.name.endswith("data.pkl")
                  and m.name.count("/") <= 1 and os.path.basename(m.name) == "data.pkl"]  # fmt: skip
    if not candidates:
        return None
    name = candidates[0]
    return name[: -len("data.pkl")], name


def _is_pickle_member(name: str) -> bool:
    """A member some reader would unpickle, by its name (torch's reader ignores case)."""
    tail = name[-10:]
    if "." not in tail:  # each ending below has one; a storage record's name has none
        return False
    tail = tail.lower()
    if tail.endswith((".pkl", ".pickle", ".debug_pkl")):
        return True
    return tail.endswith(".metadata") and (len(name) == 9 or name[-10] in "/\\")


def _member_key(m: ZipMember) -> tuple[int, int, int, int]:
    """Two records with this key are the same bytes read the same way (scanned once)."""
    return (m.header_offset, m.compressed_size, m.size, m.method)


def _read_member(archive: ZipArchive, member: ZipMember, what: str, state: ReadState | None = None) -> bytes:
    """A pickle member's bytes: stored ones up to 1 GiB, compressed ones (torch never writes those)
    only up to a small cap, so a zip bomb costs nothing; all of an archive's pickles together
    share one allowance of bytes."""
    if state is not None:
        if state.archive_bytes_left < min(member.size, MAX_PICKLE_BYTES):
            raise CheckpointError(
                f"{archive.display_name}: {what} was not read, since the archive's pickles together "
                f"exceed the {MAX_ARCHIVE_PICKLE_BYTES >> 20:,} MB this reader reads."
            )
        state.archive_bytes_left -= min(member.size, MAX_PICKLE_BYTES)
    if member.method != 0:
        if member.size > MAX_COMPRESSED_PICKLE:
            raise CheckpointError(
                f"{archive.display_name}: {what} is compressed and declares {member.size:,} bytes; "
                "torch never compresses its pickles, so it is not inflated."
            )
        return archive.read(member, MAX_COMPRESSED_PICKLE)
    return archive.read(member, MAX_PICKLE_BYTES)


def _check_members(archive: ZipArchive, prefix: str, is_script: bool, warnings: list[str]) -> None:
    """Warnings about member names and encodings torch never writes."""
    unsafe: list[str] = []
    packed: list[str] = []
    locked: list[str] = []
    code_prefix = prefix + "code/"
    for m in archive.members:
        n = m.name
        if "." in n or n[:1] in ("/", "\\") or (len(n) > 1 and n[1] == ":"):
            parts = n.replace("\\", "/").split("/")
            if n.startswith(("/", "\\")) or ".." in parts or (len(n) > 1 and n[1] == ":"):
                unsafe.append(n)
        if m.flags & 0x61:  # encrypted (the flags ZipMember.encrypted reads)
            locked.append(n)
        elif m.method != 0 and not (is_script and n.startswith(code_prefix)):
            packed.append(f"{n} ({m.size:,} bytes)")
    warnings.extend(limited([f"the archive has a member with an unsafe path: {n}" for n in unsafe],
                             "members with unsafe paths"))  # fmt: skip
    if locked:
        shown = ", ".join(locked[:5]) + (" …" if len(locked) > 5 else "")
        warnings.append(f"{len(locked)} member(s) are encrypted, which torch never writes: {shown}")
    if packed:
        shown = ", ".join(packed[:5]) + (" …" if len(packed) > 5 else "")
        warnings.append(f"{len(packed)} member(s) are compressed, which torch.save never does: {shown}")
    dups = sorted(set(archive.duplicates))
    if dups:
        shown = ", ".join(dups[:5]) + (" …" if len(dups) > 5 else "")
        warnings.append(f"the archive has {len(dups)} member name(s) twice: {shown}")


def _shown_names(members: list[ZipMember], limit: int = 3) -> str:
    return ", ".join(m.name for m in members[:limit]) + (" …" if len(members) > limit else "")


def _torch_data_pkl(archive: ZipArchive) -> tuple[str, ZipMember | None]:
    """(display prefix, record) of the data.pkl torch reads: the first record's folder, the name
    matched as torch's reader matches it; for other readers' views, the first */data.pkl."""
    if archive.reader == "torch" and archive.members:
        folder = archive.folder
        first = archive.members[0].name
        prefix = first[: first.index("/") + 1] if "/" in first else ""
        if folder:
            return prefix, archive.locate(folder + b"/data.pkl")
        return prefix, None
    found = _find_data_pkl(archive)
    if found is None:
        return "", None
    return found[0], archive.locate(found[1])


def _zip_differentials(archive: ZipArchive, prefix: str, pkl: ZipMember, state: ReadState) -> list[ZipMember]:
    """Sentences for every way another reader would read this archive otherwise; the records it
    would read as pickles that torch would not."""
    diffs = state.differentials
    extra: list[ZipMember] = []
    for alt in archive.alternatives:
        theirs = alt.by_name.get(prefix + "data.pkl")
        if theirs is None or _member_key(theirs) != _member_key(pkl):
            diffs.append(f"{alt.reason}: it would read a different data.pkl than torch (the one shown)")
        else:
            diffs.append(alt.reason)
        extra.extend(m for m in alt.members if _is_pickle_member(m.name))
    groups = [g for g in archive.case_aliases() if not any(m is pkl for m in g)]
    if groups:
        names = ", ".join(" / ".join(m.name for m in g[:3]) for g in groups[:3])
        diffs.append(
            f"member names repeat or differ only in case ({names}): torch matches names ignoring "
            "case and takes one of them, other readers may take another"
        )
    others = [m for m in archive.members if m.name[-8:].lower() == "data.pkl" and m is not pkl
              and os.path.basename(m.name.lower()) == "data.pkl"
              and m.name.lower() != pkl.name.lower()]  # fmt: skip
    if others:
        diffs.append(
            f"the archive holds data.pkl in more than one place ({pkl.name}, {_shown_names(others)}): "
            "torch reads the one in the first record's folder, readers that pick another read another pickle"
        )
    return extra


def read_archive(archive: ZipArchive, state: ReadState, warnings: list[str]) -> tuple[Format, Any]:
    """A torch zip or TorchScript archive: the tree from the data.pkl torch reads, the globals of
    every pickle any zip reader could read in it."""
    prefix, pkl = _torch_data_pkl(archive)
    torch_view = archive.reader == "torch"
    if torch_view and archive.members and not archive.folder:
        warnings.append(
            "torch.load refuses this archive: its first member "
            f"({archive.members[0].name}) is not in a folder"
        )
    outside = archive.outside_folder() if torch_view and archive.folder else []
    if outside:
        warnings.append(
            f"torch.load refuses this archive: {len(outside):,} member(s) lie outside its folder "
            f"{prefix} ({_shown_names(outside)})"
        )
    if pkl is None:
        found = _find_data_pkl(archive) if torch_view else None
        if found is not None:  # a data.pkl torch would not take: shown, but torch cannot load the file
            prefix, pkl = found[0], archive.by_name[found[1]]
    if pkl is None:
        names = {m.name.split("/", 1)[-1] for m in archive.members}
        if any(_is_pickle_member(m.name) for m in archive.members):
            scan_member_pickles(archive, "", state, warnings, skip=None)
            dangerous = sorted({g.qualname for g in state.globals if g.verdict is GlobalClass.DANGEROUS})
            if dangerous:
                raise CheckpointError(
                    f"{state.name} is a zip archive but not a PyTorch checkpoint, and its pickles "
                    f"reference dangerous globals: {', '.join(dangerous[:5])}."
                )
        if any(n.startswith(".data/") or n.endswith(".py") for n in names) and "version" not in names:
            raise CheckpointError(
                f"{state.name} is a torch.package archive or a zip of code, not a checkpoint "
                "made by torch.save."
            )
        raise CheckpointError(
            f"{state.name} is a zip archive but not a PyTorch checkpoint (it has no data.pkl)."
        )
    pkl_name = pkl.name
    extra = _zip_differentials(archive, prefix, pkl, state) if torch_view else []
    same_name = archive.same_name(pkl) if torch_view else [m for m in archive.members if m.name == pkl_name]
    if len(same_name) > 1:
        for i, m in enumerate(same_name, 1):
            with contextlib.suppress(CheckpointError):  # the refusal below says enough
                state.scan_only(_read_member(archive, m, pkl_name, state), 0, f"{pkl_name} (copy {i})",
                                 warnings)  # fmt: skip
        scan_member_pickles(archive, prefix, state, warnings, skip=None, also=extra)
        if len({m.name for m in same_name}) == 1:
            message = f"{state.name} has two members named {pkl_name}; a reader could pick either, so it is "
            message += "refused."
        else:
            message = (
                f"{state.name} has members named {_shown_names(same_name)}, which torch's reader does not "
                "tell apart (it ignores case); a reader could pick either, so it is refused."
            )
        state.differentials.append(
            f"two or more records are named {pkl_name} (ignoring case): torch takes one of them, other "
            "readers may take another"
        )
        raise DamagedCheckpointError(message, None, list(state.globals), state.differentials)
    overlaps = archive.overlapping() if torch_view else []
    if overlaps:
        scan_member_pickles(archive, prefix, state, warnings, skip=None, also=extra)
        m, other = overlaps[0]
        state.differentials.append(
            f"members overlap ({m.name} starts inside {other}): the same bytes are read as two members"
        )
        raise DamagedCheckpointError(
            f"{state.name} has members whose bytes overlap ({m.name} starts inside {other}); that is a "
            "zip bomb or a file that different readers read differently, so it is refused.",
            None, list(state.globals), state.differentials,
        )  # fmt: skip
    others = [m.name for m in archive.members if m.name.endswith("data.pkl")
              and os.path.basename(m.name) == "data.pkl" and m.name != pkl_name]  # fmt: skip
    if others:
        warnings.append(
            f"the archive holds {len(others) + 1} data.pkl files ({pkl_name}, {', '.join(others[:3])}); "
            f"the tree shows {pkl_name}, the globals of all are listed"
        )
    code_folder = prefix + "code/"
    code = [m.name for m in archive.members if m.name.startswith(code_folder) and m.name.endswith(".py")]
    is_script = _has_constants(archive, prefix) or bool(code)
    _check_members(archive, prefix, is_script, warnings)
    if archive.prefix_offset:
        warnings.append(f"{archive.prefix_offset:,} bytes of other data come before the zip archive")
    data = _read_member(archive, pkl, pkl_name, state)
    try:
        top, _ = state.unpickle(data, 0, "data.pkl")
    except NeedMoreData:
        raise CheckpointError(
            f"{state.name} is damaged: its data.pkl stops in the middle of the object."
        ) from None
    except CheckpointError:
        with contextlib.suppress(CheckpointError):
            scan_member_pickles(archive, prefix, state, warnings, skip=pkl, also=extra)
        raise
    del data
    _check_zip_storages(archive, prefix, state.torch.storages, warnings)
    scan_member_pickles(archive, prefix, state, warnings, skip=pkl, also=extra)
    if is_script:
        shown = ", ".join(c[len(prefix) :] for c in code[:3]) + (" …" if len(code) > 3 else "")
        what = f"{len(code)} code file(s): {shown}" if code else "a constants.pkl"
        warnings.append(f"this TorchScript archive ({what}) {TORCHSCRIPT_CODE}")
        # Its pickles are read by TorchScript's own unpickler, for which its class names are data.
        state.globals[:] = in_format(state.globals, Format.TORCHSCRIPT)
        return Format.TORCHSCRIPT, top
    return Format.TORCH_ZIP, top


def _has_constants(archive: ZipArchive, prefix: str) -> bool:
    """torch.load takes a zip for TorchScript when its list of records (names cut at a NUL, as C
    strings are) holds ``constants.pkl``."""
    if archive.reader != "torch":
        return (prefix + "constants.pkl") in archive.by_name
    if b"constants.pkl" not in b"/".join([m.raw for m in archive.members]):  # one search, in C
        return False
    wanted = archive.folder + b"/constants.pkl"
    return any(
        b"constants.pkl" in m.raw and m.raw.split(b"\0", 1)[0][:511] == wanted for m in archive.members
    )


def scan_member_pickles(
    archive: ZipArchive,
    prefix: str,
    state: ReadState,
    warnings: list[str],
    skip: ZipMember | str | None,
    also: list[ZipMember] | None = None,
) -> None:
    """Read every other pickle member (constants.pkl, debug pickles, stray .pkl files, and those
    only other readers would see) for its globals, each stretch of bytes once; what cannot be
    read is listed as unread, so the file is never shown as safe."""
    seen: set[tuple[int, int, int, int]] = set()
    if isinstance(skip, ZipMember):
        seen.add(_member_key(skip))
    for m in [*archive.members, *(also or [])]:
        if not _is_pickle_member(m.name) or m.name == skip:
            continue
        key = _member_key(m)
        if key in seen:
            continue
        seen.add(key)
        which = m.name[len(prefix) :] if prefix and m.name.startswith(prefix) else m.name
        try:
            data = _read_member(archive, m, which, state)
        except CheckpointError as exc:
            warnings.append(f"{which} was not read ({exc.message})")
            state.unread.append(f"{which} was not read ({exc.message.rstrip('.')})")
            continue
        if data:
            state.scan_only(data, 0, which, warnings)


def _scan_other_zip_readers(f: BinaryIO, size: int, state: ReadState, warnings: list[str]) -> None:
    """torch cannot read this zip's directory; Python's zipfile may: the pickles it would read are
    scanned for their globals, so a damaged archive that names a payload is not merely unreadable."""
    try:
        archive = ZipArchive.as_zipfile_reads_it(f, size, state.name)
    except CheckpointError:
        return
    if any(_is_pickle_member(m.name) for m in archive.members):
        state.differentials.append(
            "torch cannot read this zip's directory, but Python's zipfile (and the scanners built on "
            "it) can, and would read the pickles listed"
        )
        with contextlib.suppress(CheckpointError):
            scan_member_pickles(archive, "", state, warnings, skip=None)


def appended_zip(f: BinaryIO, size: int, name: str) -> ZipArchive | None:
    """The zip archive at the end of a file that starts as something else, as zip readers that
    search for the directory see it."""
    tail_len = min(size, (1 << 16) + 22)
    f.seek(size - tail_len)
    if _EOCD not in f.read(tail_len):
        return None
    try:
        archive = ZipArchive.as_zipfile_reads_it(f, size, name)
    except CheckpointError:
        return None
    return archive if archive.members else None


def _check_zip_storages(
    archive: ZipArchive, prefix: str, storages: dict[str, StorageRef], warnings: list[str]
) -> None:
    """Every storage the pickle names has its record, located as torch locates it, long enough."""
    missing: list[str] = []
    short: list[str] = []
    exact = archive.by_name
    fast = archive.reader != "torch" or not archive.case_aliases()
    folder = archive.folder
    records = prefix + "data/"
    for key, st in storages.items():
        name = records + key
        member = exact.get(name) if fast and name.isascii() else None
        if member is None and archive.reader == "torch":
            member = archive.locate(folder + b"/data/" + key.encode("utf-8", "surrogatepass"))
        if member is None:
            missing.append(key)
        elif member.size < st.nbytes:
            short.append(f"storage record data/{key} holds {member.size:,} bytes but declares {st.nbytes:,}")
    warnings.extend(limited(short, "storage records are shorter than they declare"))
    if missing:
        shown = ", ".join(f"data/{k}" for k in missing[:5]) + (" …" if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} storage record(s) are missing from the archive: {shown}")
