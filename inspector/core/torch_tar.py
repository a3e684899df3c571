"""The torch 0.1 tar format, read statically: headers parsed here, every pickle with the safe reader.

Members (torch/serialization.py ``legacy_load``): ``sys_info`` (a dict), ``pickle`` (the object; a
tensor or storage is the persistent id ``str(key)``), ``tensors`` (a count, then per tensor the
pickle ``(key, storage key, tensor type)`` and ndim/sizes/strides/offset as int32 + int64s) and
``storages`` (a count, then per storage the pickle ``(key, location, storage type)``, an int64
element count and the raw bytes; then a pickled list of views ``(key, root key, offset, numel)``).
Storage bytes are skipped, never read.

torch opens the file with Python's ``tarfile``, which this module never runs on a file's headers
(3.11's PAX parser is quadratic, CVE-2024-6232). It reads them the way ``tarfile`` 3.11 does
instead: the same header checks, GNU long names, PAX records (global ones apply to every member
after them), and members looked up as torch looks them up — the last member of a name wins, and a
hard or symbolic link is followed to the member it names.
"""

from __future__ import annotations

import posixpath
import struct
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from .dtypes import ITEMSIZE, STORAGE_DTYPE, STORAGE_MODULES
from .errors import CheckpointError
from .formats import Format
from .model import CheckpointIndex
from .pickle_stream import read_unlike_pickle
from .reading import FIRST_READ, FileReader, OpenedFile, ReadState
from .torch_pickle import StorageRef, TensorRef, TorchPickleReader
from .unpickler import Global, NeedMoreData

TAR_MEMBERS = ("sys_info", "pickle", "tensors", "storages")
MAX_MEMBERS = 1_000_000  # headers read; an archive with more is not read to its end
MAX_SECONDS = 30.0  # for reading the headers
MAX_RECORD_BYTES = 1 << 16  # first read of one (key, location, type) record pickle; grows as needed
MAX_TENSORS_MEMBER = 256 << 20  # the tensors member holds small pickles and metadata only
MAX_PICKLE_MEMBER = 1 << 30
MAX_HEADER_DATA = 1 << 20  # bytes of one GNU long name or PAX header read
MAX_LINK_HOPS = 40
BLOCK = 512

_REGULAR = (b"0", b"\0", b"7")  # GNU sparse ("S") is regular to tarfile too, but not read here
_SUPPORTED = (b"0", b"\0", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S")
_LINKS = (b"1", b"2")


class TorchTarReader(FileReader):
    """A file whose first block ``tarfile`` accepts as a header: torch.load reads it as a tar (the
    torch 0.1 format) when tarfile opens it, and as a pickle stream otherwise."""

    formats = (Format.TORCH_TAR,)

    def probe(self, head: bytes, size: int) -> bool:
        return header_checks(head[:BLOCK])

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        try:
            top = read_torch_tar(file.f, file.size, state, warnings)
        except NotATar:  # tarfile would not open it either: torch reads it as a pickle stream
            return read_unlike_pickle(
                file, state, warnings, "a tar archive whose headers tarfile cannot read"
            )
        except CheckpointError:
            _scan_stream_behind_tar(file, state)
            raise
        _scan_stream_behind_tar(file, state)
        return state.index(file, Format.TORCH_TAR, top, warnings)


class NotATar(Exception):
    """``tarfile.open`` would fail on the file: torch reads it as a pickle stream instead."""


class _BadHeader(Exception):
    """A header ``tarfile`` refuses (bad checksum, a number that is not one)."""


class _Stop(Exception):
    """Where ``tarfile`` ends the archive quietly (an empty, cut or zero block after the first)."""


class _Zero(_Stop):
    """A block of zeros: the end of the archive (at the start too: an empty archive)."""


class _ReadError(Exception):
    """What ``tarfile`` reports as ``ReadError`` (torch then reads the file as a pickle stream)."""


@dataclass(slots=True)
class TarMember:
    """One member as ``tarfile`` resolves it: its final name, type, size and where its data is."""

    name: str
    type: bytes
    size: int
    offset: int  # of its first header
    offset_data: int
    linkname: str
    sparse: bool = False


def _nts(raw: bytes) -> str:
    cut = raw.find(b"\0")
    return (raw if cut < 0 else raw[:cut]).decode("utf-8", "surrogateescape")


def _nti(raw: bytes) -> int:
    """A number field: octal text, or GNU's base-256 (first byte 0o200 or 0o377, the latter negative)."""
    if raw[0] in (0o200, 0o377):
        n = int.from_bytes(raw[1:], "big")
        return n - 256 ** (len(raw) - 1) if raw[0] == 0o377 else n
    try:
        text = _nts_ascii(raw)
        return int(text.strip() or "0", 8)
    except ValueError:
        raise _BadHeader from None


def _nts_ascii(raw: bytes) -> str:
    cut = raw.find(b"\0")
    return (raw if cut < 0 else raw[:cut]).decode("ascii")


def _block(n: int) -> int:
    blocks, rest = divmod(n, BLOCK)
    return (blocks + (1 if rest else 0)) * BLOCK


def header_checks(buf: bytes) -> bool:
    """Whether ``tarfile`` accepts ``buf`` as a first header (a checksum and numbers it can read)."""
    try:
        _frombuf(buf)
    except (_BadHeader, _Stop):
        return False
    return True


def _frombuf(buf: bytes) -> TarMember:
    if len(buf) != BLOCK:
        raise _Stop("a cut header")
    if buf.count(0) == BLOCK:
        raise _Zero("a zero block")
    chksum = _nti(buf[148:156])
    unsigned = 256 + sum(buf[:148]) + sum(buf[156:])
    signed = 256 + sum(struct.unpack_from("148b8x356b", buf))
    if chksum not in (unsigned, signed):
        raise _BadHeader
    name = _nts(buf[0:100])
    for lo, hi in ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)):
        _nti(buf[lo:hi])
    size = _nti(buf[124:136])
    kind = buf[156:157]
    linkname = _nts(buf[157:257])
    prefix = _nts(buf[345:500])
    if kind == b"\0" and name.endswith("/"):
        kind = b"5"
    if kind == b"S":
        for pos in range(386, 482, 24):
            _nti(buf[pos : pos + 12])
            _nti(buf[pos + 12 : pos + 24])
        _nti(buf[483:495])
    if kind == b"5":
        name = name.rstrip("/")
    if prefix and kind not in (b"L", b"K", b"S"):
        name = prefix + "/" + name
    return TarMember(name, kind, size, 0, 0, linkname, sparse=kind == b"S")


def _pax_records(buf: bytes, into: dict[str, str]) -> None:
    """The ``length keyword=value`` records of a PAX header, as tarfile's regex reads them, in
    linear time (tarfile 3.11.7's own regex is quadratic on crafted headers)."""
    pos = 0
    n = len(buf)
    next_eq = -1
    while pos < n:
        digits_end = pos
        while digits_end < n and 0x30 <= buf[digits_end] <= 0x39:
            digits_end += 1
        if digits_end == pos or digits_end >= n or buf[digits_end] != 0x20:
            return
        if next_eq <= digits_end + 1:
            next_eq = buf.find(b"=", digits_end + 1)
        if next_eq < 0:
            return
        if next_eq == digits_end + 1:
            return  # an empty keyword: the regex does not match
        if digits_end - pos > 4300:
            raise _Unreadable("a PAX header has a record length of more than 4,300 digits")
        length = int(buf[pos:digits_end])
        if length == 0:
            raise _BadHeader
        keyword = buf[digits_end + 1 : next_eq].decode("utf-8", "surrogateescape")
        value = buf[next_eq + 1 : pos + length - 1].decode("utf-8", "surrogateescape")
        into[keyword] = value
        pos += length


class _Unreadable(Exception):
    """Something ``tarfile`` raises outright (not a TarError): torch.load fails on the file."""


def _apply_pax(member: TarMember, pax: dict[str, str]) -> None:
    for keyword, value in pax.items():
        if keyword.startswith("GNU.sparse."):
            member.sparse = True
        if keyword == "path":
            member.name = value.rstrip("/")
        elif keyword == "linkpath":
            member.linkname = value
        elif keyword == "size":
            try:
                member.size = int(value)
            except ValueError:
                member.size = 0


class TarArchive:
    """The members of a tar file as ``tarfile`` lists them (its ``getmembers()``)."""

    def __init__(self, f: BinaryIO, file_size: int, display_name: str) -> None:
        self.f = f
        self.file_size = file_size
        self.display_name = display_name
        self.members: list[TarMember] = []
        self.broken: str | None = None  # why tarfile's listing fails after opening (torch then falls back)
        self.cut_short: str | None = None  # why this reader stopped listing before the end
        self._global_pax: dict[str, str] = {}
        self._read_all()

    def _read(self, offset: int, n: int) -> bytes:
        if n <= 0 or offset >= self.file_size:
            return b""
        self.f.seek(offset)
        return self.f.read(n)

    def _read_all(self) -> None:
        """tarfile's ``next()`` until the end: the first header must be readable (else tarfile does
        not open the file at all); a bad header later quietly ends the archive; a member running
        past the end of the file, or a damaged header after a long-name or PAX header, is a
        ``ReadError`` (the archive is broken there)."""
        offset = 0
        tell = 0
        deadline = time.monotonic() + MAX_SECONDS
        while True:
            if len(self.members) >= MAX_MEMBERS or time.monotonic() > deadline:
                self.cut_short = (
                    f"it has more than {len(self.members):,} members, and this reader stops there"
                )
                return
            if offset != tell and offset - 1 >= self.file_size:
                self._readerror(offset, "a member runs past the end of the file")
                return
            try:
                member, tell, next_offset = self._member_at(offset)
            except _Zero:
                return
            except (_Stop, _BadHeader):
                if offset == 0:
                    raise NotATar from None
                return
            except _ReadError as exc:
                if offset == 0:
                    raise NotATar from None
                self._readerror(offset, str(exc))
                return
            if next_offset <= member.offset:
                raise _Unreadable(f"a member ({member.name[:60]!r}) whose size sends tarfile backwards")
            self.members.append(member)
            offset = next_offset

    def _readerror(self, offset: int, why: str) -> None:
        self.broken = f"{why} (at byte {offset:,})"

    def _member_at(self, offset: int) -> tuple[TarMember, int, int]:
        """(member, file position after its headers, offset of the next header), as tarfile's
        ``fromtarfile`` and ``_proc_member`` compute them."""
        buf = self._read(offset, BLOCK)
        member = _frombuf(buf)
        member.offset = offset
        return self._proc(member, offset + BLOCK)

    def _subsequent(self, at: int) -> TarMember:
        try:
            member = _frombuf(self._read(at, BLOCK))
        except (_BadHeader, _Stop):
            raise _ReadError("a header after a long-name or PAX header is damaged") from None
        member.offset = at
        return member

    def _proc(self, member: TarMember, tell: int) -> tuple[TarMember, int, int]:
        kind = member.type
        if kind in (b"L", b"K"):
            length = _block(member.size)
            if length > MAX_HEADER_DATA:
                raise _Unreadable(f"a GNU long-name header of {member.size:,} bytes")
            data = self._read(tell, length) if length > 0 else self._read(tell, self.file_size)
            tell += len(data)
            nxt = self._subsequent(tell)
            nxt_tell = tell + BLOCK
            nxt, nxt_tell, next_offset = self._proc(nxt, nxt_tell)
            nxt.offset = member.offset
            if kind == b"L":
                nxt.name = _nts(data)
            else:
                nxt.linkname = _nts(data)
            if nxt.type == b"5":
                nxt.name = nxt.name.removesuffix("/")
            return nxt, nxt_tell, next_offset
        if kind in (b"x", b"g", b"X"):
            length = _block(member.size)
            if length > MAX_HEADER_DATA:
                raise _Unreadable(f"a PAX header of {member.size:,} bytes")
            data = self._read(tell, length) if length > 0 else self._read(tell, self.file_size)
            tell += len(data)
            pax = self._global_pax if kind == b"g" else dict(self._global_pax)
            _pax_records(data, pax)
            nxt = self._subsequent(tell)
            nxt, nxt_tell, next_offset = self._proc(nxt, tell + BLOCK)
            if kind in (b"x", b"X"):
                _apply_pax(nxt, pax)
                if nxt.sparse:
                    raise _Unreadable("a GNU sparse member, which this reader does not read")
                nxt.offset = member.offset
                if "size" in pax:
                    next_offset = nxt.offset_data
                    if nxt.type in _REGULAR or nxt.type == b"S" or nxt.type not in _SUPPORTED:
                        next_offset += _block(nxt.size)
            return nxt, nxt_tell, next_offset
        if kind == b"S":
            raise _Unreadable("a GNU sparse member, which this reader does not read")
        member.offset_data = tell
        next_offset = tell
        if kind in _REGULAR or kind not in _SUPPORTED:
            next_offset += _block(member.size)
        _apply_pax(member, self._global_pax)
        if member.type == b"5":
            member.name = member.name.rstrip("/")
        if member.sparse:
            raise _Unreadable("a GNU sparse member, which this reader does not read")
        return member, tell, next_offset

    # --- finding members the way torch's legacy_load does -----------------------------------------

    def named(self, name: str) -> list[TarMember]:
        """Every member whose name is ``name`` once normalised (the candidates any reader could take)."""
        return [m for m in self.members if posixpath.normpath(m.name) == name]

    def last(self, name: str, before: int | None = None, normalize: bool = False) -> TarMember | None:
        """tarfile's ``_getmember``: the last member of that name (before index ``before``)."""
        members = self.members if before is None else self.members[:before]
        wanted = posixpath.normpath(name) if normalize else name
        for m in reversed(members):
            if (posixpath.normpath(m.name) if normalize else m.name) == wanted:
                return m
        return None

    def _target(self, member: TarMember) -> TarMember:
        """The member a link names, as tarfile's ``_find_link_target`` finds it."""
        if member.type == b"2":
            linkname = "/".join(filter(None, (posixpath.dirname(member.name), member.linkname)))
            found = self.last(linkname, normalize=True)
        else:
            index = next(i for i, m in enumerate(self.members) if m is member)
            found = self.last(member.linkname, before=index, normalize=True)
        if found is None:
            raise CheckpointError(
                f"{self.display_name}: its {member.name} member is a link to {member.linkname[:80]!r}, "
                "which the archive does not hold."
            )
        return found

    def resolve(self, name: str, extracted: dict[str, TarMember]) -> TarMember:
        """The member whose bytes torch reads for ``name``: ``storages`` and ``tensors`` are
        extracted to a folder (a symbolic link there would point outside the archive), ``pickle``
        is read in place; links are followed as tarfile follows them."""
        member = self.last(name.rstrip("/"))
        if member is None:
            raise CheckpointError(f"{self.display_name} is a tar archive without a {name} member.")
        in_place = name == "pickle"
        for _ in range(MAX_LINK_HOPS):
            if member.type in _REGULAR or member.type not in _SUPPORTED:
                return member
            if member.type not in _LINKS:
                raise CheckpointError(
                    f"{self.display_name}: its {name} member is not a file (a folder, device or pipe), "
                    "so torch cannot read it."
                )
            if not in_place and member.type == b"2":
                raise CheckpointError(
                    f"{self.display_name}: its {name} member is a symbolic link to {member.linkname[:80]!r}; "
                    "torch would read whatever file that names outside the archive, so it is refused."
                )
            if not in_place and member.type == b"1":
                link = posixpath.normpath(member.linkname)
                if link in extracted:
                    return extracted[link]
                if link.startswith(("/", "..")) or link in (".", ""):
                    raise CheckpointError(
                        f"{self.display_name}: its {name} member is a hard link to {member.linkname[:80]!r}, "
                        "outside the archive, so it is refused."
                    )
            member = self._target(member)
        raise CheckpointError(
            f"{self.display_name}: its {name} member is a chain of links that does not end."
        )

    def read(self, member: TarMember, cap: int) -> bytes:
        if member.size > cap:
            raise CheckpointError(
                f"{self.display_name}: its {member.name} member declares {member.size:,} bytes, more than "
                f"the {cap:,} this reader accepts for it."
            )
        if member.size < 0:
            raise CheckpointError(f"{self.display_name}: its {member.name} member declares a negative size.")
        data = self._read(member.offset_data, member.size)
        if len(data) < member.size:
            raise CheckpointError(
                f"{self.display_name} is truncated: its {member.name} member runs past the end of the file."
            )
        return data


class _TarHooks(TorchPickleReader):
    """The object pickle's persistent ids: ``str(key)`` of a tensor or storage, or a module class."""

    def __init__(self, tensors: dict[str, TensorRef], storages: dict[str, StorageRef]) -> None:
        super().__init__()
        self.tensors = tensors
        self.tar_storages = storages

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and pid:
            return pid[0]  # (module class, source file, source): torch returns the class
        key = _key(pid)
        if key is not None:
            found = self.tensors.get(key) or self.tar_storages.get(key)
            if found is not None:
                return found
        self._problem(f"the object refers to a tensor or storage {str(pid)[:60]!r} the file does not hold")
        return pid


def _key(v: Any) -> str | None:
    """torch looks records up by ``int(key)``; keys are compared the same way here."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return str(v) if v.bit_length() < 256 else None
    if isinstance(v, (str, bytes)):
        text = v.decode("ascii", "replace") if isinstance(v, bytes) else v
        if text.strip().lstrip("-").isdigit() and len(text) <= 40:
            return str(int(text))
    return None


def _pickle_at(state: ReadState, data: bytes, pos: int, which: str) -> tuple[Any, int]:
    """One record pickle of a member, as torch's plain ``pickle.load`` reads it (no smaller limits)."""
    try:
        return state.unpickle(data, pos, which, torch=False)
    except NeedMoreData:
        raise CheckpointError(
            f"{state.name} is damaged: its {which} member stops in the middle of a record."
        ) from None


def _storages(
    archive: TarArchive, info: TarMember, state: ReadState, warnings: list[str]
) -> dict[str, StorageRef]:
    """Every storage record's key, dtype, location and size; the bytes are skipped."""
    f, name = archive.f, state.name
    out: dict[str, StorageRef] = {}
    end = info.offset_data + info.size
    if info.size < 0 or end > archive.file_size:
        raise CheckpointError(f"{name} is truncated: its storages member runs past the end of the file.")

    def record(at: int) -> tuple[Any, int]:
        """The pickle at ``at``, reading more of the member while it runs past what was read."""
        want = min(MAX_RECORD_BYTES, end - at)
        while True:
            f.seek(at)
            chunk = f.read(want)
            try:
                return state.unpickle(chunk, 0, "storages", torch=False)
            except NeedMoreData:
                if want >= end - at or want >= MAX_PICKLE_MEMBER:
                    raise CheckpointError(
                        f"{name} is damaged: its storages member stops in the middle of a record."
                    ) from None
                want = min(end - at, want * 8, MAX_PICKLE_MEMBER)

    pos = info.offset_data
    count, used = record(pos)
    pos += used
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CheckpointError(f"{name} is damaged: its storages member does not start with a count.")
    for _ in range(count):
        rec, used = record(pos)
        pos += used
        if not (isinstance(rec, tuple) and len(rec) == 3):
            raise CheckpointError(f"{name} is damaged: a storage record is not (key, location, type).")
        key, location, stype = _key(rec[0]), rec[1], rec[2]
        dtype = (
            STORAGE_DTYPE.get(stype.name)
            if isinstance(stype, Global) and stype.module in STORAGE_MODULES
            else None
        )
        if key is None or not isinstance(location, str) or dtype is None:
            raise CheckpointError(
                f"{name} is damaged: a storage record names {str(rec)[:80]}, which torch does not write."
            )
        f.seek(pos)
        raw = f.read(8)
        if len(raw) < 8 or pos + 8 > end:
            raise CheckpointError(f"{name} is truncated: the data of storage {key} is missing.")
        (numel,) = struct.unpack("<q", raw)
        nbytes = numel * ITEMSIZE.get(dtype, 1)
        if numel < 0 or pos + 8 + nbytes > end:
            raise CheckpointError(
                f"{name} is truncated or damaged: storage {key} declares {max(numel, 0):,} elements, "
                "more than its member holds."
            )
        pos += 8 + nbytes
        out[key] = StorageRef(key=key, dtype=dtype, location=location, numel=numel)
    f.seek(pos)
    rest = f.read(min(end - pos, 64 << 20))
    try:
        views, _ = state.unpickle(rest, 0, "storages (views)", torch=False)
    except NeedMoreData:
        warnings.append("the list of storage views stops in the middle of a pickle")
        views = []
    for view in views if isinstance(views, list) else []:
        if isinstance(view, tuple) and len(view) == 4 and isinstance(view[2], int):
            target, root = _key(view[0]), out.get(_key(view[1]) or "")
            if target is not None and root is not None:
                out[target] = StorageRef(root.key, root.dtype, root.location, root.numel, view_offset=view[2])
    return out


def _tensors(
    data: bytes, storages: dict[str, StorageRef], state: ReadState, *, strict: bool = True
) -> dict[str, TensorRef]:
    """Every tensor record: its storage, offset, sizes and strides (not ``strict``: records that
    name no known storage are skipped, to read every record's pickle for its globals)."""
    name = state.name
    out: dict[str, TensorRef] = {}
    count, pos = _pickle_at(state, data, 0, "tensors")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CheckpointError(f"{name} is damaged: its tensors member does not start with a count.")
    for _ in range(count):
        record, pos = _pickle_at(state, data, pos, "tensors")
        if not (isinstance(record, tuple) and len(record) == 3):
            raise CheckpointError(f"{name} is damaged: a tensor record is not (key, storage, type).")
        if pos + 8 > len(data):
            raise CheckpointError(f"{name} is truncated: its tensors member stops inside a tensor record.")
        (ndim,) = struct.unpack_from("<i", data, pos)
        pos += 8  # ndim was written as 8 bytes by the oldest torch; the upper half is skipped
        if not 0 <= ndim <= 64 or pos + 16 * ndim + 8 > len(data):
            raise CheckpointError(f"{name} is damaged: a tensor record declares {ndim} dimensions.")
        shape = struct.unpack_from(f"<{ndim}q", data, pos)
        stride = struct.unpack_from(f"<{ndim}q", data, pos + 8 * ndim)
        (offset,) = struct.unpack_from("<q", data, pos + 16 * ndim)
        pos += 16 * ndim + 8
        key, storage = _key(record[0]), storages.get(_key(record[1]) or "")
        if not strict and storage is None:
            continue
        if key is None or storage is None or min((*shape, *stride, offset), default=0) < 0:
            raise CheckpointError(f"{name} is damaged: tensor record {str(record[0])[:40]} is not valid.")
        out[key] = TensorRef(
            storage, offset + storage.view_offset, shape, stride, storage.dtype, storage.location
        )
    return out


def _scan_copies(archive: TarArchive, state: ReadState, warnings: list[str]) -> list[str]:
    """Every member any tar reader could take for one of torch's names, scanned for its globals
    (the copies after the first of a name too); the names that have more than one candidate."""
    repeated: list[str] = []
    for name in TAR_MEMBERS:
        copies = [m for m in archive.named(name) if m.type in _REGULAR or m.type not in _SUPPORTED]
        if len(archive.named(name)) > 1:
            repeated.append(name)
        for i, m in enumerate(copies, 1):
            which = name if len(copies) == 1 else f"{name} (copy {i})"
            try:
                if name == "storages":
                    _storages(archive, m, state, [])
                elif name == "tensors":
                    _tensors(archive.read(m, MAX_TENSORS_MEMBER), {}, state, strict=False)
                else:
                    state.scan_only(archive.read(m, MAX_PICKLE_MEMBER), 0, which, warnings)
            except CheckpointError:
                continue
    return repeated


def read_torch_tar(f: BinaryIO, size: int, state: ReadState, warnings: list[str]) -> Any:
    """The object of a torch 0.1 tar file; other tar archives are not checkpoints.

    Raises ``NotATar`` when tarfile would not open the file, so that it is read as torch reads it
    then: as a pickle stream.
    """
    name = state.name
    try:
        archive = TarArchive(f, size, name)
    except _Unreadable as exc:
        raise CheckpointError(f"{name} is a tar archive this reader does not read: it has {exc}.") from None
    if archive.cut_short or archive.broken:
        _scan_copies(archive, state, warnings)
        if archive.cut_short:
            raise CheckpointError(f"{name} is not read to its end: {archive.cut_short}.")
        state.differentials.append(
            f"the tar archive is damaged past its start ({archive.broken}): torch.load then reads the file "
            "as a pickle stream instead, other tar readers read the members before the damage"
        )
        raise CheckpointError(f"{name} is a damaged tar archive: {archive.broken}.")
    names = {posixpath.normpath(m.name) for m in archive.members}
    if "pickle" not in names:
        raise CheckpointError(
            f"{name} is a tar archive but not a PyTorch checkpoint (it has no pickle member)."
        )
    repeated = [n for n in TAR_MEMBERS if len(archive.named(n)) > 1 or
                (n in names and archive.last(n) is None)]  # fmt: skip
    if repeated:
        _scan_copies(archive, state, warnings)
        state.differentials.append(
            f"the tar archive holds {repeated[0]} more than once (or under another spelling): torch takes "
            "the last, other tar readers may take another"
        )
        raise CheckpointError(
            f"{name} has two members named {repeated[0]}; a reader could pick either, so it is refused."
        )
    extracted: dict[str, TarMember] = {}
    storages: dict[str, StorageRef] = {}
    if "storages" in names:
        member = archive.resolve("storages", extracted)
        extracted["storages"] = member
        storages = _storages(archive, member, state, warnings)
    tensors: dict[str, TensorRef] = {}
    if "tensors" in names:
        member = archive.resolve("tensors", extracted)
        tensors = _tensors(archive.read(member, MAX_TENSORS_MEMBER), storages, state)
    if "sys_info" in names:  # torch never reads it; its globals are listed all the same
        info = archive.last("sys_info")
        if info is not None and (info.type in _REGULAR or info.type not in _SUPPORTED):
            state.scan_only(archive.read(info, MAX_RECORD_BYTES), 0, "sys_info", warnings)
    missing = [m for m in ("tensors", "storages") if m not in names]
    if missing:
        warnings.append(f"the archive has no {' or '.join(missing)} member")
    hooks = _TarHooks(tensors, storages)
    state.torch = hooks
    data = archive.read(archive.resolve("pickle", extracted), MAX_PICKLE_MEMBER)
    try:
        top, _ = state.unpickle(data, 0, "pickle")
    except NeedMoreData:
        raise CheckpointError(
            f"{name} is damaged: its pickle member stops in the middle of the object."
        ) from None
    links = [
        m.name for m in archive.members if m.type in _LINKS and posixpath.normpath(m.name) in TAR_MEMBERS
    ]
    if links:
        warnings.append(f"its {', '.join(links)} member(s) are links to other members, which torch follows")
    warnings.append(
        "this is the torch 0.1 tar format: torch.load reads it only with weights_only=False, "
        "which runs its pickles, so trust it first"
    )
    return top


def _scan_stream_behind_tar(file: OpenedFile, state: ReadState) -> None:
    """torch.load falls back to reading a pickle stream from the first byte when the tar it opened
    turns out damaged: a tar header that is also a pickle stream naming globals is a differential."""
    before = len(state.globals)
    file.f.seek(0)
    data = file.f.read(min(file.size, FIRST_READ))
    pos: int | None = 0
    quiet: list[str] = []
    for _ in range(5):  # magic number, protocol, sys info, object, storage keys
        if pos is None or pos >= len(data):
            break
        pos = state.scan_only(data, pos, f"pickle stream at byte {pos}", quiet)
    if len(state.globals) > before:
        state.differentials.append(
            "the file is both a tar archive and a pickle stream: torch.load reads the tar when it "
            "can and the pickle stream when the tar is damaged, other readers may take either; "
            "the globals of both are listed"
        )
