"""The static read ("peek"): a file's whole tree in milliseconds, importing and executing nothing."""

from __future__ import annotations

import contextlib
import gc
import os
import stat
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from .errors import CheckpointError
from .globals_policy import classify, implied_globals, torch_lookup
from .layout import LayoutKind, resolve_layout
from .model import CheckpointIndex, GlobalClass, GlobalRef, Node, tensor_totals
from .safety import TORCHSCRIPT_CODE, in_format
from .sniff import LEGACY_MAGIC, FileKind, sniff
from .torch_pickle import StorageRef, TorchPickleReader
from .tree import TreeBuilder
from .unpickler import Budget, Global, Limits, NeedMoreData, PickleError, SafeUnpickler
from .ziparchive import ZipArchive, ZipMember

MAX_PICKLE_BYTES = 1 << 30  # a data.pkl above 1 GiB is not something torch.save writes
MAX_COMPRESSED_PICKLE = 64 << 20  # torch never compresses a pickle; inflate at most this much
MAX_LISTED_PER_GLOBAL = 1000  # occurrences of one global listed one by one; the rest are counted
MAX_DISTINCT_GLOBALS = 10_000  # distinct globals listed; past it only dangerous ones are added
MAX_ARCHIVE_PICKLE_BYTES = 2 << 30  # bytes of pickle members read from one archive, all together
MAX_WARNINGS_OF_A_KIND = 20
_FIRST_READ = 16 << 20
_EOCD = b"PK\x05\x06"
_LOCAL = b"PK\x03\x04"


#: Functions that unpickle their bytes argument: a payload can hide a second pickle inside the first.
_NESTED_LOADS = frozenset(
    {"pickle.loads", "_pickle.loads", "pickle._loads", "dill.loads", "dill._dill.loads",
     "cloudpickle.loads", "torch.load", "torch.serialization.load", "marshal.loads"}
)  # fmt: skip
_MAX_NESTING = 4


class DamagedCheckpointError(CheckpointError):
    """The file could not be read to the end, but its pickles referenced these globals before that.

    ``scan`` still reports them: a damaged file that names ``os.system`` is dangerous, not just unreadable.
    """

    def __init__(
        self,
        message: str,
        details: str | None,
        globals_: list[GlobalRef],
        differentials: list[str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.globals = globals_
        self.differentials = list(differentials or [])


class ReaderOutOfMemory(CheckpointError):
    """The read ran out of memory: the machine's, or the limit a confined reader runs under."""


def display_name(path: str) -> str:
    return f"“{os.path.basename(os.path.normpath(path)) or path}”"


class _Reader:
    """Shared state of one peek: the globals seen and the torch hooks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.globals: list[GlobalRef] = []
        self.torch = TorchPickleReader()
        self._listed: dict[tuple[str, str, str], tuple[int, GlobalClass]] = {}
        self.unlisted = 0  # occurrences beyond MAX_LISTED_PER_GLOBAL of one global
        self.nested_warnings: list[str] = []
        self._depth = 0
        self.storage_spans: dict[str, tuple[int, int]] = {}
        self.byteorder = "little"
        self.budget = Budget()  # shared by every pickle of the file
        self.differentials: list[str] = []  # how other readers would read the file otherwise
        self.unread: list[str] = []  # parts that were never looked at: the file is not shown as safe
        self.archive_bytes_left = MAX_ARCHIVE_PICKLE_BYTES

    def reset(self) -> None:
        """Start over on the same file (a longer read of it): the time already spent still counts."""
        self.globals.clear()
        self._listed.clear()
        self.unlisted = 0
        self.nested_warnings.clear()
        self.torch = TorchPickleReader()
        self.storage_spans = {}
        self.byteorder = "little"
        self.budget = Budget(deadline=self.budget.deadline)
        self.differentials.clear()
        self.unread.clear()
        self.archive_bytes_left = MAX_ARCHIVE_PICKLE_BYTES

    def damaged(self, exc: CheckpointError) -> CheckpointError:
        """The error to raise for a file that could not be read to the end: with the globals and
        differentials met before, so "damaged" never hides "dangerous"."""
        if isinstance(exc, DamagedCheckpointError):
            return exc
        if self.globals or self.differentials:
            return DamagedCheckpointError(exc.message, exc.details, list(self.globals), self.differentials)
        return exc

    def record(self, g: Global, which: str) -> None:
        """List one occurrence; past the caps only dangerous globals not yet listed are added."""
        key = (g.module, g.name, which)
        seen = self._listed.get(key)
        if seen is None:
            verdict = classify(g.module, g.name)
            if len(self._listed) >= MAX_DISTINCT_GLOBALS and verdict is not GlobalClass.DANGEROUS:
                self.unlisted += 1
                return
            self._listed[key] = (1, verdict)
        elif seen[0] < MAX_LISTED_PER_GLOBAL:
            verdict = seen[1]
            self._listed[key] = (seen[0] + 1, verdict)
        else:
            self.unlisted += 1
            return
        module, name = torch_lookup(g.module, g.name)  # the name torch looks up, judged as written too
        written = g.qualname if (module, name) != (g.module, g.name) else ""
        self.globals.append(GlobalRef(module, name, verdict, which, g.offset, written))

    def unpickle(
        self, data: bytes, start: int, which: str, limits: Limits | None = None, *, torch: bool = True
    ) -> tuple[Any, int]:
        """One pickle of ``data`` from ``start``: (object, end offset); its globals are recorded."""
        hooks = self.torch if torch else TorchPickleReader()

        def reduce_hook(func: Any, args: Any) -> Any:
            if (
                isinstance(func, Global)
                and func.qualname in _NESTED_LOADS
                and isinstance(args, tuple)
                and args
                and isinstance(args[0], (bytes, bytearray))
                and self._depth < _MAX_NESTING
            ):
                self._depth += 1
                try:
                    self.scan_only(bytes(args[0]), 0, f"{which} › pickle passed to {func.qualname}",
                                   self.nested_warnings)  # fmt: skip
                finally:
                    self._depth -= 1
            if isinstance(func, Global):  # what torch needs for this call, named or not
                for module, name in implied_globals(func.qualname, args):
                    self.record(Global(module, name, func.offset), which)
            return hooks.reduce_hook(func, args)

        up = SafeUnpickler(
            data, start, name=which, on_global=lambda g: self.record(g, which),
            reduce_hook=reduce_hook, persistent_load=hooks.persistent_load, limits=limits,
            budget=self.budget,
        )  # fmt: skip
        try:
            return up.load()
        except PickleError as exc:
            error = _UnpickleError(f"{self.name} cannot be read: {exc.message}", exc.details)
            error.unscanned, error.inner = exc.unscanned, exc.message.rstrip(".")
            raise error from None

    def scan_only(self, data: bytes, start: int, which: str, warnings: list[str]) -> int | None:
        """Read a further pickle for its globals only; a damaged one is a warning. Its end, or None.

        A pickle a limit of this reader stopped before its end (even for the globals-only scan)
        counts as unread: the file is then never shown as safe.
        """
        try:
            _, end = self.unpickle(data, start, which, Limits(max_bytes=128 << 20), torch=False)
        except NeedMoreData:
            warnings.append(f"{which} stops in the middle of a pickle (its globals so far are listed)")
            return None
        except _UnpickleError as exc:
            warnings.append(f"{which} could not be read to the end ({exc.message})")
            if exc.unscanned:
                self.unread.append(exc.inner)
            return None
        except CheckpointError as exc:
            warnings.append(f"{which} could not be read to the end ({exc.message})")
            return None
        return end


class _UnpickleError(CheckpointError):
    """A pickle of the file could not be read; ``unscanned`` when part of it was never looked at."""

    unscanned = False
    inner = ""  # the reason, without the file's name


def _limited(items: list[str], what: str) -> list[str]:
    """The first few warnings of one kind, and a count of the rest."""
    if len(items) <= MAX_WARNINGS_OF_A_KIND:
        return items
    rest = len(items) - MAX_WARNINGS_OF_A_KIND
    return [*items[:MAX_WARNINGS_OF_A_KIND], f"{rest:,} more {what}"]


def _os_error(name: str, exc: OSError) -> CheckpointError:
    """The sentence for a file the system would not let us stat or read."""
    if isinstance(exc, FileNotFoundError):
        return CheckpointError(f"{name} does not exist.")
    if isinstance(exc, PermissionError):
        return CheckpointError(f"{name} cannot be read: permission denied.")
    if isinstance(exc, IsADirectoryError):
        return CheckpointError(f"{name} is a folder, not a checkpoint file.")
    return CheckpointError(f"{name} cannot be read: {exc.strerror or exc}.")


def _peek(path: str | os.PathLike[str], whole_set: bool = True) -> CheckpointIndex:
    p = os.fspath(path)
    name = display_name(p)
    layout = resolve_layout(p, whole_set=whole_set)
    if layout.kind is LayoutKind.DCP_FOLDER:
        from .layouts import peek_dcp

        return peek_dcp(layout.path, _Reader)
    if layout.kind is LayoutKind.HF_SHARD_SET:
        from .layouts import peek_hf_index

        return peek_hf_index(layout, lambda shard: _peek(shard, whole_set=False))
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _os_error(name, exc) from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{name} is not a regular file (a pipe or a device), so it is not read.")
    size = st.st_size
    if size == 0:
        raise CheckpointError(f"{name} is empty (0 bytes), not a checkpoint.")
    try:
        with open(p, "rb") as f:
            head = f.read(4096)
            kind, what = sniff(head, size)
            reader = _Reader(name)
            warnings: list[str] = []
            try:
                fmt, top = _read_format(f, p, size, kind, what, reader, warnings)
            except CheckpointError as exc:
                raise reader.damaged(exc) from None
            if reader.unread:
                raise DamagedCheckpointError(
                    f"{name} could not be read in full, so it is not shown as safe: {reader.unread[0]}.",
                    None, list(reader.globals), reader.differentials,
                )  # fmt: skip
            if fmt == "safetensors":
                assert isinstance(top, CheckpointIndex)
                return top
    except MemoryError:
        raise ReaderOutOfMemory(f"{name} needs more memory to read than this machine has.") from None
    except OSError as exc:
        raise _os_error(name, exc) from None
    warnings.extend(reader.nested_warnings)
    warnings.extend(reader.torch.all_problems())
    if reader.unlisted:
        warnings.append(
            f"the pickles reference globals {reader.unlisted:,} more times than are listed one by one"
        )
    builder = TreeBuilder()
    root = builder.build(top)
    warnings.extend(builder.warnings)
    index = _finish(p, fmt, root, reader.globals, size, warnings)
    index.storage_spans, index.byteorder = reader.storage_spans, reader.byteorder
    index.differentials = reader.differentials
    return index


def _read_format(
    f: BinaryIO, p: str, size: int, kind: FileKind, what: str | None, reader: _Reader, warnings: list[str]
) -> tuple[str, Any]:
    """(format, top object) of the file, in torch.load's order: a zip when it starts with a local
    header, else a tar when tarfile would open it, else a stream of pickles from its first byte.
    Whatever the first bytes look like, the pickles torch would run there are read (safetensors:
    its index)."""
    name = reader.name
    if kind is FileKind.ZIP and _starts_with_local_header(f):
        try:
            archive = ZipArchive(f, size, name)
        except CheckpointError:
            _scan_other_zip_readers(f, size, reader, warnings)
            raise
        return _peek_archive(archive, reader, warnings)
    if kind is FileKind.SAFETENSORS:
        from .safetensors_header import peek_safetensors

        return "safetensors", peek_safetensors(f, p, size, name)
    if kind is FileKind.TAR:
        from .torch_tar import NotATar, peek_torch_tar

        try:
            fmt, top = peek_torch_tar(f, size, reader, warnings)
        except NotATar:  # tarfile would not open it either: torch reads it as a pickle stream
            what = "a tar archive whose headers tarfile cannot read"
        except CheckpointError:
            _scan_stream_behind_tar(f, size, reader)
            raise
        else:
            _scan_stream_behind_tar(f, size, reader)
            return fmt, top
    if kind is FileKind.LEGACY_TORCH:
        fmt, top = _peek_legacy(f, size, reader, warnings)
    elif kind is FileKind.PICKLE:
        fmt, top = _peek_pickle(f, size, reader, warnings)
    else:
        fmt, top = _peek_other(f, size, kind, what, reader, warnings)
        if fmt == "polyglot":
            return fmt, top
    appended = _appended_zip(f, size, name)
    if appended is not None:
        warnings.append(
            "a zip archive is appended to the pickle (a polyglot file): torch.load reads "
            "the pickle, other tools may read the zip; the globals of both are listed"
        )
        _scan_member_pickles(appended, "", reader, warnings, skip=None)
    return fmt, top


def _peek_other(
    f: BinaryIO, size: int, kind: FileKind, what: str | None, reader: _Reader, warnings: list[str]
) -> tuple[str, Any]:
    """A file that does not look like a checkpoint: torch.load would still unpickle it from its
    first byte, so it is a pickle when it reads as one (to its end, or naming a global before it
    fails); otherwise it is what it looks like, or a polyglot with a zip archive appended."""
    name = reader.name
    if _may_be_pickle(f):
        try:
            return _peek_pickle(f, size, reader, warnings)
        except CheckpointError:
            if reader.globals:
                raise
        reader.reset()
    if kind is FileKind.ZIP:
        warnings.append(
            "this zip archive does not start with a local file header, so torch.load does not read it "
            "as a zip; zip readers that search for the directory do"
        )
        return "polyglot", _peek_archive(ZipArchive.as_zipfile_reads_it(f, size, name), reader, warnings)[1]
    archive = _appended_zip(f, size, name)
    if archive is None:
        raise CheckpointError(f"{name} is {what}, not a checkpoint.")
    warnings.append(
        f"this file is {what} with a zip archive appended (a polyglot file): torch.load "
        "cannot open it, but zip readers can; the archive was read without running anything"
    )
    _, top = _peek_archive(archive, reader, warnings)
    return "polyglot", top


def _may_be_pickle(f: BinaryIO) -> bool:
    """Whether the file's first 64 KiB read as a pickle (to its end, or naming a global, or still
    going): most files that are not one fail on their first bytes, before a longer read."""
    f.seek(0)
    head = f.read(1 << 16)
    named: list[Global] = []
    try:
        SafeUnpickler(head, on_global=named.append, limits=Limits(max_opcodes=100_000)).load()
    except NeedMoreData:
        return True
    except PickleError as exc:  # malformed: a pickle only if it named a global before; or a limit hit
        return bool(named) or exc.unscanned
    return True


def _starts_with_local_header(f: BinaryIO) -> bool:
    """torch.load reads a file as a zip exactly when its first four bytes are a local header."""
    f.seek(0)
    return f.read(4) == _LOCAL


def _scan_stream_behind_tar(f: BinaryIO, size: int, reader: _Reader) -> None:
    """torch.load falls back to reading a pickle stream from the first byte when the tar it opened
    turns out damaged: a tar header that is also a pickle stream naming globals is a differential."""
    before = len(reader.globals)
    f.seek(0)
    data = f.read(min(size, _FIRST_READ))
    pos: int | None = 0
    quiet: list[str] = []
    for _ in range(5):  # magic number, protocol, sys info, object, storage keys
        if pos is None or pos >= len(data):
            break
        pos = reader.scan_only(data, pos, f"pickle stream at byte {pos}", quiet)
    if len(reader.globals) > before:
        reader.differentials.append(
            "the file is both a tar archive and a pickle stream: torch.load reads the tar when it "
            "can and the pickle stream when the tar is damaged, other readers may take either; "
            "the globals of both are listed"
        )


def peek(path: str | os.PathLike[str], *, whole_set: bool = True) -> CheckpointIndex:
    """Read a checkpoint statically. Raises ``CheckpointError`` with a sentence about the file.

    A folder is read as a torch.distributed.checkpoint folder; a shard of a Hugging Face set (a file
    an ``*.index.json`` beside it names) is read as the whole set unless ``whole_set`` is False.

    The collector is paused meanwhile: the read allocates millions of small objects that all stay
    alive, and collecting them repeatedly would double the time on large files.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _peek(path, whole_set)
    finally:
        if was_enabled:
            gc.enable()


def _finish(
    path: str, fmt: str, root: Node, globals_: list[GlobalRef], size: int, warnings: list[str]
) -> CheckpointIndex:
    beyond: list[str] = []
    for node in root.tensors():
        t = node.tensor
        assert t is not None
        extent = t.storage_offset + sum((s - 1) * st for s, st in zip(t.shape, t.stride, strict=True))
        if t.numel and t.storage_key and (extent + 1) * t.itemsize > t.storage_nbytes:
            beyond.append(f"{node.key or 'the tensor'} reaches beyond the end of its storage")
    warnings.extend(_limited(beyond, "tensors reach beyond the end of their storage"))
    totals = tensor_totals(root.tensors())
    return CheckpointIndex(
        path=path, format=fmt, root=root, globals=globals_, file_size=size, warnings=warnings,
        total_params=totals.params, total_bytes=totals.nbytes, tensor_count=totals.count,
    )  # fmt: skip


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
    tail = name[-10:].lower()
    if tail.endswith((".pkl", ".pickle", ".debug_pkl")):
        return True
    return tail.endswith(".metadata") and (len(name) == 9 or name[-10] in "/\\")


def _member_key(m: ZipMember) -> tuple[int, int, int, int]:
    """Two records with this key are the same bytes read the same way (scanned once)."""
    return (m.header_offset, m.compressed_size, m.size, m.method)


def _read_member(archive: ZipArchive, member: ZipMember, what: str, reader: _Reader | None = None) -> bytes:
    """A pickle member's bytes: stored ones up to 1 GiB, compressed ones (torch never writes those)
    only up to a small cap, so a zip bomb costs nothing; all of an archive's pickles together
    share one allowance of bytes."""
    if reader is not None:
        if reader.archive_bytes_left < min(member.size, MAX_PICKLE_BYTES):
            raise CheckpointError(
                f"{archive.display_name}: {what} was not read, since the archive's pickles together "
                f"exceed the {MAX_ARCHIVE_PICKLE_BYTES >> 20:,} MB this reader reads."
            )
        reader.archive_bytes_left -= min(member.size, MAX_PICKLE_BYTES)
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
    warnings.extend(_limited([f"the archive has a member with an unsafe path: {n}" for n in unsafe],
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


def _zip_differentials(archive: ZipArchive, prefix: str, pkl: ZipMember, reader: _Reader) -> list[ZipMember]:
    """Sentences for every way another reader would read this archive otherwise; the records it
    would read as pickles that torch would not."""
    diffs = reader.differentials
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


def _peek_archive(archive: ZipArchive, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
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
            _scan_member_pickles(archive, "", reader, warnings, skip=None)
            dangerous = sorted({g.qualname for g in reader.globals if g.verdict is GlobalClass.DANGEROUS})
            if dangerous:
                raise CheckpointError(
                    f"{reader.name} is a zip archive but not a PyTorch checkpoint, and its pickles "
                    f"reference dangerous globals: {', '.join(dangerous[:5])}."
                )
        if any(n.startswith(".data/") or n.endswith(".py") for n in names) and "version" not in names:
            raise CheckpointError(
                f"{reader.name} is a torch.package archive or a zip of code, not a checkpoint "
                "made by torch.save."
            )
        raise CheckpointError(
            f"{reader.name} is a zip archive but not a PyTorch checkpoint (it has no data.pkl)."
        )
    pkl_name = pkl.name
    extra = _zip_differentials(archive, prefix, pkl, reader) if torch_view else []
    same_name = [m for m in archive.members if m.raw.lower() == pkl.raw.lower()] if torch_view else (
        [m for m in archive.members if m.name == pkl_name])  # fmt: skip
    if len(same_name) > 1:
        for i, m in enumerate(same_name, 1):
            with contextlib.suppress(CheckpointError):  # the refusal below says enough
                reader.scan_only(_read_member(archive, m, pkl_name, reader), 0, f"{pkl_name} (copy {i})",
                                 warnings)  # fmt: skip
        _scan_member_pickles(archive, prefix, reader, warnings, skip=None, also=extra)
        if len({m.name for m in same_name}) == 1:
            message = f"{reader.name} has two members named {pkl_name}; a reader could pick either, so it is "
            message += "refused."
        else:
            message = (
                f"{reader.name} has members named {_shown_names(same_name)}, which torch's reader does not "
                "tell apart (it ignores case); a reader could pick either, so it is refused."
            )
        reader.differentials.append(
            f"two or more records are named {pkl_name} (ignoring case): torch takes one of them, other "
            "readers may take another"
        )
        raise DamagedCheckpointError(message, None, list(reader.globals), reader.differentials)
    overlaps = archive.overlapping() if torch_view else []
    if overlaps:
        _scan_member_pickles(archive, prefix, reader, warnings, skip=None, also=extra)
        m, other = overlaps[0]
        reader.differentials.append(
            f"members overlap ({m.name} starts inside {other}): the same bytes are read as two members"
        )
        raise DamagedCheckpointError(
            f"{reader.name} has members whose bytes overlap ({m.name} starts inside {other}); that is a "
            "zip bomb or a file that different readers read differently, so it is refused.",
            None, list(reader.globals), reader.differentials,
        )  # fmt: skip
    others = [m.name for m in archive.members if m.name.endswith("data.pkl")
              and os.path.basename(m.name) == "data.pkl" and m.name != pkl_name]  # fmt: skip
    if others:
        warnings.append(
            f"the archive holds {len(others) + 1} data.pkl files ({pkl_name}, {', '.join(others[:3])}); "
            f"the tree shows {pkl_name}, the globals of all are listed"
        )
    code = [m.name for m in archive.members if m.name.startswith(prefix + "code/") and m.name.endswith(".py")]
    is_script = _has_constants(archive, prefix) or bool(code)
    _check_members(archive, prefix, is_script, warnings)
    if archive.prefix_offset:
        warnings.append(f"{archive.prefix_offset:,} bytes of other data come before the zip archive")
    data = _read_member(archive, pkl, pkl_name, reader)
    try:
        top, _ = reader.unpickle(data, 0, "data.pkl")
    except NeedMoreData:
        raise CheckpointError(
            f"{reader.name} is damaged: its data.pkl stops in the middle of the object."
        ) from None
    except CheckpointError:
        with contextlib.suppress(CheckpointError):
            _scan_member_pickles(archive, prefix, reader, warnings, skip=pkl, also=extra)
        raise
    del data
    _check_zip_storages(archive, prefix, reader.torch.storages, warnings)
    _scan_member_pickles(archive, prefix, reader, warnings, skip=pkl, also=extra)
    if is_script:
        shown = ", ".join(c[len(prefix) :] for c in code[:3]) + (" …" if len(code) > 3 else "")
        what = f"{len(code)} code file(s): {shown}" if code else "a constants.pkl"
        warnings.append(f"this TorchScript archive ({what}) {TORCHSCRIPT_CODE}")
        # Its pickles are read by TorchScript's own unpickler, for which its class names are data.
        reader.globals[:] = in_format(reader.globals, "torchscript")
        return "torchscript", top
    return "torch-zip", top


def _has_constants(archive: ZipArchive, prefix: str) -> bool:
    """torch.load takes a zip for TorchScript when its list of records (names cut at a NUL, as C
    strings are) holds ``constants.pkl``."""
    if archive.reader != "torch":
        return (prefix + "constants.pkl") in archive.by_name
    wanted = archive.folder + b"/constants.pkl"
    return any(
        b"constants.pkl" in m.raw and m.raw.split(b"\0", 1)[0][:511] == wanted for m in archive.members
    )


def _scan_member_pickles(
    archive: ZipArchive,
    prefix: str,
    reader: _Reader,
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
            data = _read_member(archive, m, which, reader)
        except CheckpointError as exc:
            warnings.append(f"{which} was not read ({exc.message})")
            reader.unread.append(f"{which} was not read ({exc.message.rstrip('.')})")
            continue
        if data:
            reader.scan_only(data, 0, which, warnings)


def _scan_other_zip_readers(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> None:
    """torch cannot read this zip's directory; Python's zipfile may: the pickles it would read are
    scanned for their globals, so a damaged archive that names a payload is not merely unreadable."""
    try:
        archive = ZipArchive.as_zipfile_reads_it(f, size, reader.name)
    except CheckpointError:
        return
    if any(_is_pickle_member(m.name) for m in archive.members):
        reader.differentials.append(
            "torch cannot read this zip's directory, but Python's zipfile (and the scanners built on "
            "it) can, and would read the pickles listed"
        )
        with contextlib.suppress(CheckpointError):
            _scan_member_pickles(archive, "", reader, warnings, skip=None)


def _appended_zip(f: BinaryIO, size: int, name: str) -> ZipArchive | None:
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
    for key, st in storages.items():
        name = f"{prefix}data/{key}"
        member = exact.get(name) if fast and name.isascii() else None
        if member is None and archive.reader == "torch":
            member = archive.locate(folder + b"/data/" + key.encode("utf-8", "surrogatepass"))
        if member is None:
            missing.append(key)
        elif member.size < st.nbytes:
            short.append(f"storage record data/{key} holds {member.size:,} bytes but declares {st.nbytes:,}")
    warnings.extend(_limited(short, "storage records are shorter than they declare"))
    if missing:
        shown = ", ".join(f"data/{k}" for k in missing[:5]) + (" …" if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} storage record(s) are missing from the archive: {shown}")


def _read_growing(f: BinaryIO, size: int, parse: Callable[[bytes], Any], name: str) -> Any:
    """Run ``parse`` on the file's first bytes, giving it more while it runs out of data.

    A length field that reaches past the end of the file is refused at once: the read never grows
    on the file's own claims, only on bytes the file really has.
    """
    want = min(size, _FIRST_READ)
    while True:
        f.seek(0)
        data = f.read(want)
        try:
            return parse(data)
        except NeedMoreData as more:
            if want >= size or more.needed > size:
                raise CheckpointError(f"{name} is truncated: it stops in the middle of a pickle.") from None
            if want >= MAX_PICKLE_BYTES or more.needed > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{name} has a pickle larger than 1 GiB; it is not read.") from None
            want = min(size, max(want * 4, more.needed), MAX_PICKLE_BYTES)
        finally:
            del data


def _peek_legacy(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    def parse(data: bytes) -> tuple[Any, Any, int]:
        reader.reset()
        magic, pos = reader.unpickle(data, 0, "magic number pickle")
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{reader.name} has an invalid legacy magic number.")
        proto, pos = reader.unpickle(data, pos, "protocol pickle")
        if proto != 1001:
            raise CheckpointError(f"{reader.name} uses legacy protocol {proto!r}, which torch does not know.")
        sys_info, pos = reader.unpickle(data, pos, "sys-info pickle")
        items = getattr(sys_info, "items", None)
        if isinstance(items, list) and any(k == "little_endian" and v is False for k, v in items):
            reader.byteorder = "big"
        top, pos = reader.unpickle(data, pos, "object pickle")
        keys, pos = reader.unpickle(data, pos, "storage-keys pickle")
        return top, keys, pos

    top, keys, pos = _read_growing(f, size, parse, reader.name)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{reader.name} is damaged: its list of storage keys is not a list of names.")
    storages = reader.torch.storages
    for key in keys:
        f.seek(pos)
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{reader.name} is truncated: the data of storage {key[:60]} is missing.")
        (numel,) = struct.unpack("<q", raw)
        st = storages.get(key)
        itemsize = st.nbytes // st.numel if st is not None and st.numel else 1
        if st is not None and numel != st.numel:
            warnings.append(f"storage {key} declares {st.numel:,} elements but its record holds {numel:,}")
        if numel < 0:
            raise CheckpointError(f"{reader.name} is damaged: storage {key[:60]} has a negative size.")
        reader.storage_spans[key] = (pos + 8, numel * itemsize)
        pos += 8 + numel * itemsize
        if pos > size:
            raise CheckpointError(
                f"{reader.name} is truncated: storage {key[:60]} needs {numel * itemsize:,} bytes "
                f"but the file ends {pos - size:,} bytes too early."
            )
    listed = set(keys)
    missing = [k for k in storages if k not in listed]
    if missing:
        warnings.append(f"{len(missing)} storage(s) have no data in the file: {', '.join(missing[:5])}")
    return "torch-legacy", top


def _peek_pickle(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    """A plain pickle (not torch.save's layout); pickles that follow it are read for their globals,
    as many as there are (a reader that loads one after another runs them all)."""

    def parse(data: bytes) -> tuple[Any, int]:
        reader.reset()
        return reader.unpickle(data, 0, "pickle")

    top, end = _read_growing(f, size, parse, reader.name)
    warnings.append("this is a plain pickle, not a torch.save file: torch.load cannot open it")
    if end < size:
        f.seek(end)
        rest = f.read(min(size - end, MAX_PICKLE_BYTES))
        n = 0
        pos = 0
        while pos < len(rest):
            before = len(reader.globals)
            tried: list[str] = []
            nxt = reader.scan_only(rest, pos, f"pickle {n + 2}", tried)
            if nxt is None:  # a damaged pickle, or bytes that are none
                if len(reader.globals) > before or rest[pos] == 0x80:
                    n += 1
                    warnings.extend(tried)
                break
            n += 1
            pos = nxt
        if n:
            warnings.append(
                f"{n} more pickle(s) follow the first; a reader that loads them one after another "
                "would run them too, so their globals are listed"
            )
        if pos < len(rest):
            warnings.append(f"{size - end - pos:,} bytes follow the pickle's end")
    return "pickle", top
