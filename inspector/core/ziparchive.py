"""A zip reader that sees exactly what torch's reader sees, and says where other zip readers see more.

``torch.load`` reads a zip with miniz (``caffe2/serialize/inline_container.cc``): the last end
record within reach of the file's end, the ZIP64 record whenever its locator and signature are
there, the directory at its declared offset, exactly as many records as declared, and member
names matched without regard to ASCII case (a binary search over the names sorted in lower case).
Python's ``zipfile`` (and every scanner built on it) differs: it infers data prepended to the
archive, reads every record the directory's size holds, cuts names at a NUL and lets the last of
two equal names win. A ``ZipArchive`` is one such view; ``alternatives`` lists the directories
other readers would use when they differ, so a caller can scan what each of them would read.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from .errors import CheckpointError

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
#: A directory record's fixed 46 bytes, the fields the readers use: signature, flags, method, time,
#: compressed and real size, name, extra and comment lengths, disk, external attributes, offset.
_CENTRAL_FMT = struct.Struct("<4s4x3H6x2I4H2x2I")
_EOCD_LEN = 22
_LOCATOR_LEN = 20
_ZIP64_EOCD_LEN = 56
_U32 = 0xFFFFFFFF
_CHUNK = 4096  # miniz scans for the end record in chunks of this size, stepping back 3 bytes less
_MAX_DIRECTORY = 512 << 20  # a directory larger than this is refused, whatever it declares
MAX_MEMBERS = 5_000_000  # records one directory may declare (torch writes one per storage)
_MAX_ALTERNATIVES = 8  # other end records followed, each to the directory it names
_FLAG_ENCRYPTED = 0x0001
_FLAG_PATCH = 0x0020
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_DIRECTORY = 0x2000


@dataclass(slots=True)
class ZipMember:
    """One directory record: its name (decoded for display) and where its bytes are."""

    name: str
    header_offset: int
    compressed_size: int
    size: int
    method: int  # 0 stored, 8 deflated
    flags: int
    raw: bytes = b""  # the name as stored (miniz compares these bytes)
    index: int = 0  # position in the directory
    external_attr: int = 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_PATCH))

    @property
    def is_folder(self) -> bool:
        """miniz treats such a record as a folder and extracts no bytes for it."""
        return self.raw.endswith(b"/") or bool(self.external_attr & 0x10)


@dataclass(frozen=True, slots=True)
class Directory:
    """Where one reader finds the central directory, and why it is there."""

    offset: int  # of the first record, in the file
    size: int
    count: int | None  # records to read (miniz), or None: as many as ``size`` holds (zipfile)
    shift: int  # added to every record's local-header offset (zipfile's prepended data)
    end_record: int  # where the end record that names it lies
    how: str  # what names it, for sentences: "the ZIP64 end record", "the classic end record" …


@dataclass
class Alternative:
    """The members another reader would see, and a sentence saying which reader and why."""

    reason: str
    directory: Directory
    members: list[ZipMember] = field(default_factory=list)
    by_name: dict[str, ZipMember] = field(default_factory=dict)


def _miniz_error(what: str) -> str:
    return f"{what} (torch's zip reader refuses it too)"


class SeekableFile(Protocol):
    """What the directory reader needs of a file: a whole file, or a byte range of one."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def read(self, n: int = -1, /) -> bytes: ...


class ZipArchive:
    """The directory of a zip file as one reader sees it; members are read on request.

    ``ZipArchive(f, size, name)`` is torch's view (miniz). ``ZipArchive.as_zipfile_reads_it``
    is Python's ``zipfile`` view, for files torch would not read as a zip (polyglots) and for
    comparing. ``by_name`` maps exact names to records (the first of duplicates in torch's view,
    the last in zipfile's, as each reader picks them); ``locate`` finds a record the way the
    reader does (in torch's view: ignoring ASCII case).
    """

    def __init__(self, f: SeekableFile, file_size: int, display_name: str, *, reader: str = "torch") -> None:
        self.f = f
        self.file_size = file_size
        self.display_name = display_name
        self.reader = reader
        self.members: list[ZipMember] = []
        self.by_name: dict[str, ZipMember] = {}
        self.duplicates: list[str] = []
        self.prefix_offset = 0  # bytes before the archive, as zipfile infers them
        self.alternatives: list[Alternative] = []
        self.directory: Directory
        self._by_lower: dict[bytes, ZipMember | None] | None = None  # None value: two records share it
        self._groups: dict[bytes, list[ZipMember]] | None = None  # the records of each shared name
        self._shared: set[bytes] = set()
        self._has_nul = False
        self._sorted: list[int] | None = None
        self._data_start: dict[int, int] = {}
        self._pending: list[tuple[Directory, str]] = []
        if reader == "torch":
            self.directory, eocd, comment_len = self._miniz_directory()
            self.members, odd = self._parse(self.directory)
            self._index_names()
            self._note_other_readers(eocd, comment_len, odd)
        else:
            self.directory = self._zipfile_directory()
            self.prefix_offset = self.directory.shift
            self.members, _ = self._parse(self.directory)
            self._index_names()

    @classmethod
    def as_zipfile_reads_it(cls, f: BinaryIO, file_size: int, display_name: str) -> ZipArchive:
        """Python's ``zipfile`` view of the archive (prepended data inferred, last duplicate wins)."""
        return cls(f, file_size, display_name, reader="zipfile")

    # --- the directory ----------------------------------------------------------------------------

    def _fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.display_name} is a damaged zip archive: {what}.")

    def _pread(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        self.f.seek(offset)
        return self.f.read(n)

    def _miniz_end_record(self) -> int | None:
        """The end record miniz finds: the last signature with 22 bytes after it, scanning back
        from the end in 4 KiB chunks until 64 KiB + 22 bytes are behind it; a chunk that would
        start before the file's first byte ends the search (miniz's read there fails)."""
        size = self.file_size
        if size < _EOCD_LEN:
            return None
        cur = max(size - _CHUNK, 0)
        lowest = cur
        while not (cur == 0 or size - cur >= 0xFFFF + _EOCD_LEN):
            cur -= _CHUNK - 3
            if cur < 0:
                break
            lowest = cur
        region = self._pread(lowest, size - lowest)
        pos = region.rfind(_EOCD, 0, len(region) - _EOCD_LEN + 4)
        return None if pos < 0 else lowest + pos

    def _miniz_directory(self) -> tuple[Directory, int, int]:
        """miniz's directory, the end record that names it and that record's comment length."""
        size = self.file_size
        eocd = self._miniz_end_record()
        if eocd is None:
            raise CheckpointError(
                f"{self.display_name} is truncated: the zip directory at its end is missing "
                f"(the file stops at {size:,} bytes; was the download or copy interrupted?)."
            )
        end = self._pread(eocd, _EOCD_LEN)
        (_, this_disk, cd_disk, on_disk, count, cd_size, cd_offset, comment_len) = struct.unpack(
            "<4s4H2IH", end
        )
        classic = (count, cd_size, cd_offset)
        how = "the end record"
        z64_at = -1
        locator = b""
        record = b""
        if eocd >= _LOCATOR_LEN + _ZIP64_EOCD_LEN:
            locator = self._pread(eocd - _LOCATOR_LEN, _LOCATOR_LEN)
            if locator[:4] == _ZIP64_LOCATOR:
                (z64_at,) = struct.unpack_from("<Q", locator, 8)
                if z64_at > size - _ZIP64_EOCD_LEN:
                    raise self._fail(_miniz_error("its ZIP64 locator points past the end of the file"))
                record = self._pread(z64_at, _ZIP64_EOCD_LEN)
                if record[:4] != _ZIP64_EOCD:
                    z64_at = -1
        if z64_at >= 0:
            (disks,) = struct.unpack_from("<I", locator, 16)
            (rec_size, _, _, this_disk, cd_disk, on_disk, count, cd_size, cd_offset) = struct.unpack_from(
                "<Q2H2I4Q", record, 4
            )
            if rec_size < _ZIP64_EOCD_LEN - 12:
                raise self._fail(_miniz_error("its ZIP64 end record is too short"))
            if disks != 1:
                raise self._fail(_miniz_error("it claims to span several disks"))
            if count > _U32 or on_disk > _U32 or cd_size > _U32:
                raise self._fail(_miniz_error(f"its ZIP64 end record claims {count:,} records"))
            how = "the ZIP64 end record"
            if classic != (count, cd_size, cd_offset) and not (classic[0] == 0xFFFF or _U32 in classic[1:]):
                self._pending.append(
                    (
                        Directory(classic[2], classic[1], classic[0], 0, eocd, "the classic end record"),
                        "its ZIP64 end record disagrees with the classic one: torch reads the directory "
                        "the ZIP64 record names, readers that use the classic record read another",
                    )
                )
        if count != on_disk:
            raise self._fail(_miniz_error("it claims to span several disks"))
        if (this_disk | cd_disk) != 0 and (this_disk != 1 or cd_disk != 1):
            raise self._fail(_miniz_error("it claims to span several disks"))
        if cd_size < count * 46:
            raise self._fail(
                _miniz_error(f"its directory of {cd_size:,} bytes cannot hold {count:,} records")
            )
        if cd_offset + cd_size > size:
            raise self._fail("its directory lies outside the file")
        if cd_size > _MAX_DIRECTORY or count > MAX_MEMBERS:
            raise self._fail(f"its directory claims {cd_size:,} bytes and {count:,} records")
        return Directory(cd_offset, cd_size, count, 0, eocd, how), eocd, comment_len

    def _zipfile_end_record(self) -> int | None:
        """The end record Python's zipfile finds (its fast path first, then the last signature)."""
        size = self.file_size
        if size < _EOCD_LEN:
            return None
        tail_start = max(size - (1 << 16) - _EOCD_LEN, 0)
        tail = self._pread(tail_start, size - tail_start)
        last = tail[-_EOCD_LEN:]
        if last[:4] == _EOCD and last[-2:] == b"\0\0":
            return size - _EOCD_LEN
        pos = tail.rfind(_EOCD)
        if pos < 0 or pos + _EOCD_LEN > len(tail):
            return None
        return tail_start + pos

    def _zipfile_directory(self) -> Directory:
        eocd = self._zipfile_end_record()
        if eocd is None:
            raise CheckpointError(f"{self.display_name} has no zip directory.")
        return self._zipfile_directory_at(eocd)

    def _zipfile_directory_at(self, eocd: int) -> Directory:
        (_, _, _, _, _, cd_size, cd_offset, _) = struct.unpack("<4s4H2IH", self._pread(eocd, _EOCD_LEN))
        how = "the end record"
        base = eocd
        if eocd >= _LOCATOR_LEN:
            locator = self._pread(eocd - _LOCATOR_LEN, _LOCATOR_LEN)
            if locator[:4] == _ZIP64_LOCATOR:
                record = self._pread(eocd - _LOCATOR_LEN - _ZIP64_EOCD_LEN, _ZIP64_EOCD_LEN)
                if len(record) == _ZIP64_EOCD_LEN and record[:4] == _ZIP64_EOCD:
                    (cd_size, cd_offset) = struct.unpack_from("<QQ", record, 40)
                    base = eocd - _LOCATOR_LEN - _ZIP64_EOCD_LEN
                    how = "the ZIP64 record before the end record"
        shift = base - cd_size - cd_offset
        start = cd_offset + shift
        if start < 0 or cd_size > _MAX_DIRECTORY or start + cd_size > self.file_size:
            raise self._fail("its directory lies outside the file")
        return Directory(start, cd_size, None, shift, eocd, how)

    def _add_alternative_directory(self, directory: Directory, reason: str) -> None:
        """Keep another reader's directory when it parses and lists other records than torch's."""
        if len(self.alternatives) >= _MAX_ALTERNATIVES:
            return
        if any(a.directory == directory for a in self.alternatives):
            return
        try:
            members, _ = self._parse(directory)
        except CheckpointError:
            return
        # compared by name as each reader resolves it (zipfile cuts names at a NUL)
        mine = [(m.name, m.header_offset, m.compressed_size, m.size, m.method) for m in self.members]
        if [(m.name, m.header_offset, m.compressed_size, m.size, m.method) for m in members] == mine:
            return
        alt = Alternative(reason, directory, members)
        last_wins = directory.count is None
        for m in members:
            if last_wins or m.name not in alt.by_name:
                alt.by_name[m.name] = m
        self.alternatives.append(alt)

    def _note_other_readers(self, eocd: int, comment_len: int, odd: bool) -> None:
        """Directories other readers would read instead of miniz's, found cheaply: zipfile's view
        when its rules could differ here, the classic end record when the ZIP64 one disagrees,
        and every other end record near the file's end."""
        size = self.file_size
        directory = self.directory
        for alt_dir, reason in self._pending:
            self._add_alternative_directory(alt_dir, reason)
        zip_eocd = eocd if eocd == size - _EOCD_LEN and comment_len == 0 else self._zipfile_end_record()
        try:
            theirs = self._zipfile_directory_at(zip_eocd) if zip_eocd is not None else None
        except CheckpointError:
            theirs = None
        here = (directory.offset, directory.size, 0)
        elsewhere = theirs is not None and (theirs.offset, theirs.size, theirs.shift) != here
        if theirs is not None and (odd or elsewhere):
            if theirs.end_record != eocd:
                why = "finds another end record"
            elif theirs.shift:
                why = f"assumes {theirs.shift:,} bytes of data before the archive"
            elif elsewhere:
                why = "takes the ZIP64 record from where the end record is, not from where it points"
            else:
                why = "reads every record the directory holds and cuts names at a NUL byte"
            self._add_alternative_directory(
                theirs,
                ("two central directories: " if elsewhere else "")
                + f"Python's zipfile (and the scanners built on it) {why}, "
                "so it reads other records than torch",
            )
        tail_start = max(size - (1 << 16) - _EOCD_LEN - _CHUNK, 0)
        tail = self._pread(tail_start, size - tail_start)
        pos = tail.rfind(_EOCD)
        seen = 0
        while pos >= 0 and seen < _MAX_ALTERNATIVES:
            at = tail_start + pos
            pos = tail.rfind(_EOCD, 0, pos)
            if at == eocd or at + _EOCD_LEN > size:
                continue
            seen += 1
            count, cd_size, cd_offset, own_comment = struct.unpack_from("<HIIH", tail, at - tail_start + 10)
            if count == 0 or cd_size < 46 * count or cd_offset + cd_size > size:
                continue
            if self._pread(cd_offset, 4) != _CENTRAL:
                continue
            inside = eocd < at < eocd + _EOCD_LEN + comment_len or at < eocd < at + _EOCD_LEN + own_comment
            self._add_alternative_directory(
                Directory(cd_offset, cd_size, count, 0, at, "another end record"),
                "two central directories: "
                + ("the zip comment holds a second end record, and " if inside else "")
                + f"readers that take the end record at byte {at:,} read other records than torch",
            )

    def _parse(self, directory: Directory) -> tuple[list[ZipMember], bool]:
        """The records of one directory, checked as miniz checks them (torch's view) or read as
        zipfile reads them; and whether zipfile could read them otherwise (bytes past the declared
        records, a NUL in a name)."""
        cd = self._pread(directory.offset, directory.size)
        if len(cd) < directory.size:
            raise self._fail("its directory is cut short")
        miniz = directory.count is not None
        count = directory.count if directory.count is not None else MAX_MEMBERS
        size = self.file_size
        shift = directory.shift
        n = len(cd)
        p = 0
        unpack = _CENTRAL_FMT.unpack_from
        members: list[ZipMember] = []
        append = members.append
        odd = False
        for i in range(count):
            if p + 46 > n:
                if not miniz and p >= n:
                    break
                if miniz:
                    raise self._fail("its directory has fewer records than it declares")
                raise self._fail("a directory record is cut short")
            (sig, flags, method, mtime, csize, usize, nlen, xlen, clen, disk, ext_attr, hoff) = unpack(cd, p)
            if sig != _CENTRAL:
                raise self._fail("a directory record is corrupt")
            total = 46 + nlen + xlen + clen
            if total > n - p:
                raise self._fail("a directory record runs past the directory's end")
            name_b = cd[p + 46 : p + 46 + nlen]
            if csize == _U32 or usize == _U32 or hoff == _U32:
                usize, csize, hoff = _zip64_extra(
                    cd[p + 46 + nlen : p + 46 + nlen + xlen], usize, csize, hoff
                )
            if miniz:
                if (
                    disk > 1
                    or flags & _FLAG_MASKED_DIRECTORY
                    or (usize != csize and not (method | mtime))
                    or (usize and not csize)
                    or hoff + 30 + csize > size
                ):
                    self._refuse_record(flags, method, mtime, csize, usize, disk, hoff)
                if b"\0" in name_b:
                    odd = True
                name = name_b.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
            else:
                cut = name_b.find(b"\0")
                name = (name_b if cut < 0 else name_b[:cut]).decode(
                    "utf-8" if flags & _FLAG_UTF8 else "cp437", "replace"
                )
            append(ZipMember(name, hoff + shift, csize, usize, method, flags, name_b, i, ext_attr))
            p += total
        if not miniz and len(members) >= MAX_MEMBERS:
            raise self._fail(f"its directory holds more than {MAX_MEMBERS:,} records")
        self._has_nul = self._has_nul or odd
        return members, odd or (miniz and p < n)

    def _refuse_record(
        self, flags: int, method: int, mtime: int, csize: int, usize: int, disk: int, hoff: int
    ) -> None:
        """Raise for a record miniz refuses when the directory is read (its checks, in its order;
        sizes still saturated after the ZIP64 field are not checked, as miniz does not)."""
        if csize != _U32 and usize != _U32 and (((method | mtime << 16) == 0 and usize != csize)
                                                 or (usize and not csize)):  # fmt: skip
            raise self._fail(_miniz_error("a record's sizes contradict each other"))
        if disk == 0xFFFF or disk not in (0, 1):
            raise self._fail(_miniz_error("it claims to span several disks"))
        if csize != _U32 and hoff + 30 + csize > self.file_size:
            raise self._fail("a record's data lies outside the file")
        if flags & _FLAG_MASKED_DIRECTORY:
            raise self._fail(_miniz_error("its directory is encrypted"))

    def _index_names(self) -> None:
        unique = {m.name: m for m in self.members}
        if len(unique) == len(self.members) and not self.by_name:  # no name twice: either reader's pick
            self.by_name = unique
            return
        by_name = self.by_name
        last_wins = self.reader != "torch"
        for m in self.members:
            if m.name in by_name:
                self.duplicates.append(m.name)
                if not last_wins:
                    continue
            by_name[m.name] = m

    # --- finding members --------------------------------------------------------------------------

    @property
    def folder(self) -> bytes:
        """The top-level folder torch reads every record from: the first record's name up to its
        first ``/`` (raw bytes; empty when the first name has none, which torch refuses)."""
        if not self.members:
            return b""
        first = self.members[0].raw
        cut = first.find(b"/")
        return b"" if cut < 0 else first[:cut]

    def outside_folder(self) -> list[ZipMember]:
        """Records torch's list of records refuses: not under the first record's folder."""
        folder = self.folder + b"/"
        if not self._has_nul:
            return [m for m in self.members if not m.raw.startswith(folder)]
        return [m for m in self.members if not _c_name(m.raw).startswith(folder)]

    def _lower_index(self) -> dict[bytes, ZipMember | None]:
        """Records by name in lower case (as miniz compares them); None where two share one."""
        if self._by_lower is None:
            index: dict[bytes, ZipMember | None] = {}
            shared = self._shared
            for m in self.members:
                key = m.raw.lower()
                if key in index:
                    index[key] = None
                    shared.add(key)
                else:
                    index[key] = m
            self._by_lower = index
        return self._by_lower

    def _alias_groups(self) -> dict[bytes, list[ZipMember]]:
        """The records of each lower-case name that two or more records share, in directory order
        (found once per archive)."""
        if self._groups is None:
            self._lower_index()
            groups: dict[bytes, list[ZipMember]] = {}
            if self._shared:
                for m in self.members:
                    key = m.raw.lower()
                    if key in self._shared:
                        groups.setdefault(key, []).append(m)
            self._groups = groups
        return self._groups

    def same_name(self, member: ZipMember) -> list[ZipMember]:
        """The records whose names equal ``member``'s ignoring ASCII case, ``member`` among them."""
        return list(self._alias_groups().get(member.raw.lower(), [member]))

    def case_aliases(self) -> list[list[ZipMember]]:
        """Groups of records whose names are equal ignoring ASCII case (exact duplicates too)."""
        return [list(group) for group in self._alias_groups().values()]

    def locate(self, name: str | bytes) -> ZipMember | None:
        """The record the reader returns for ``name`` (a full name, folder included)."""
        raw = name.encode("utf-8", "surrogatepass") if isinstance(name, str) else name
        if self.reader != "torch":
            return self.by_name.get(raw.decode("utf-8", "replace"))
        raw = _c_name(raw)  # torch passes the name as a C string
        key = raw.lower()
        index = self._lower_index()
        if key not in index:
            return None
        found = index[key]
        return found if found is not None else self._binary_search(key)

    def _binary_search(self, key: bytes) -> ZipMember | None:
        """miniz's binary search over its heap-sorted names: which of several equal names it returns."""
        members = self.members
        keys = [m.raw.lower() for m in members]
        if self._sorted is None:
            self._sorted = _miniz_heap_sort(keys)
        order = self._sorted
        lo, hi = 0, len(order) - 1
        while lo <= hi:
            mid = lo + ((hi - lo) >> 1)
            k = keys[order[mid]]
            if k == key:
                return members[order[mid]]
            if k < key:
                lo = mid + 1
            else:
                hi = mid - 1
        return None

    # --- reading members --------------------------------------------------------------------------

    def data_offset(self, member: ZipMember) -> int:
        """Where a member's bytes start (after its local header)."""
        found = self._data_start.get(member.header_offset)
        if found is not None:
            return found
        head = self._pread(member.header_offset, 30)
        if len(head) < 30 or head[:4] != _LOCAL:
            raise self._fail(f"the record of {member.name} is missing")
        name_len, extra_len = struct.unpack_from("<HH", head, 26)
        start = int(member.header_offset + 30 + name_len + extra_len)
        self._data_start[member.header_offset] = start
        return start

    def overlapping(self) -> list[tuple[ZipMember, str]]:
        """Records whose bytes (local header to data end, at least) run into the next record's or
        into the directory: one stretch of bytes read as two members is a zip bomb or a differential."""
        members = (
            sorted(self.members, key=lambda m: m.header_offset)
            if not _ascending(self.members)
            else self.members
        )
        found: list[tuple[ZipMember, str]] = []
        cd_start, cd_end = self.directory.offset, self.directory.offset + self.directory.size
        prev: ZipMember | None = None
        prev_end = 0
        for m in members:
            start = m.header_offset
            end = start + 30 + m.compressed_size
            if prev is not None and start < prev_end:
                found.append((m, prev.name))
                if len(found) >= 20:
                    break
            if start < cd_end and end > cd_start:
                found.append((m, "the zip directory"))
                if len(found) >= 20:
                    break
            if end > prev_end:
                prev, prev_end = m, end
        return found

    def read(self, member: ZipMember, max_size: int) -> bytes:
        """A member's bytes as the reader returns them; refuses encrypted members and anything
        larger than ``max_size``; a damaged compressed stream is a sentence, not an exception."""
        if member.encrypted:
            raise CheckpointError(
                f"{self.display_name} contains an encrypted member ({member.name}); torch never writes those."
            )
        if member.size > max_size:
            raise CheckpointError(
                f"{self.display_name}: {member.name} declares {member.size:,} bytes, "
                f"more than the {max_size:,} this reader accepts for it."
            )
        if member.method not in (0, 8):
            raise CheckpointError(
                f"{self.display_name}: {member.name} uses compression method {member.method}, "
                "which torch never writes."
            )
        if self.reader == "torch" and (member.is_folder or not member.compressed_size):
            if member.size:
                raise CheckpointError(
                    f"{self.display_name}: {member.name} is marked as a folder or holds no data, so "
                    "torch reads no bytes for it."
                )
            return b""
        start = self.data_offset(member)
        # miniz reads a stored member's declared size, zipfile its compressed size
        length = member.size if member.method == 0 and self.reader == "torch" else member.compressed_size
        if start + member.compressed_size > self.file_size or start + length > self.file_size:
            raise CheckpointError(
                f"{self.display_name} is truncated: {member.name} runs past the end of the file."
            )
        raw = self._pread(start, length)
        if member.method == 0:
            return raw
        d = zlib.decompressobj(-15)
        try:
            out = d.decompress(raw, max_size + 1)
        except zlib.error as exc:
            raise CheckpointError(
                f"{self.display_name}: the compressed data of {member.name} is damaged.", str(exc)
            ) from None
        if len(out) > max_size:
            raise CheckpointError(
                f"{self.display_name}: {member.name} inflates to more than {max_size:,} bytes."
            )
        if self.reader == "torch" and (len(out) != member.size or not d.eof):
            raise CheckpointError(
                f"{self.display_name}: the compressed data of {member.name} is damaged (it does not "
                f"inflate to the {member.size:,} bytes its record declares)."
            )
        return out


def _c_name(raw: bytes) -> bytes:
    """A name as C code sees it: cut at the first NUL."""
    cut = raw.find(b"\0")
    return raw if cut < 0 else raw[:cut]


def _ascending(members: list[ZipMember]) -> bool:
    prev = -1
    for m in members:
        if m.header_offset < prev:
            return False
        prev = m.header_offset
    return True


def _miniz_heap_sort(keys: list[bytes]) -> list[int]:
    """The order miniz sorts its records in (its own heap sort, so ties fall where they fall)."""
    size = len(keys)
    idx = list(range(size))
    if size <= 1:
        return idx

    def sift(root: int, end: int) -> None:
        while True:
            child = root * 2 + 1
            if child >= end:
                return
            if child + 1 < end and keys[idx[child]] < keys[idx[child + 1]]:
                child += 1
            if not keys[idx[root]] < keys[idx[child]]:
                return
            idx[root], idx[child] = idx[child], idx[root]
            root = child

    start = (size - 2) >> 1
    while True:
        sift(start, size)
        if not start:
            break
        start -= 1
    end = size - 1
    while end > 0:
        idx[end], idx[0] = idx[0], idx[end]
        sift(0, end)
        end -= 1
    return idx


def _zip64_extra(extra: bytes, usize: int, csize: int, hoff: int) -> tuple[int, int, int]:
    """The sizes and offset a record's ZIP64 field gives for the fields saturated at 2**32 - 1."""
    p = 0
    while p + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, p)
        if tag == 0x0001:
            q, end = p + 4, min(p + 4 + ln, len(extra))
            if usize == _U32 and q + 8 <= end:
                (usize,) = struct.unpack_from("<Q", extra, q)
                q += 8
            if csize == _U32 and q + 8 <= end:
                (csize,) = struct.unpack_from("<Q", extra, q)
                q += 8
            if hoff == _U32 and q + 8 <= end:
                (hoff,) = struct.unpack_from("<Q", extra, q)
            break
        p += 4 + ln
    return usize, csize, hoff
