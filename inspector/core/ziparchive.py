"""A small zip reader for torch archives: the directory in one pass, members read with size limits.

Python's ``zipfile`` builds an object per member (about 1 s for 100,000 records) and trusts sizes
it is given; this reader parses the central directory in one tight loop, reads only the members
asked for, refuses encrypted ones and never inflates beyond a fixed cap.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from .errors import CheckpointError

_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_CENTRAL_FMT = struct.Struct("<4s6H3I5H2I")


@dataclass
class ZipMember:
    name: str
    header_offset: int
    compressed_size: int
    size: int
    method: int  # 0 stored, 8 deflated
    flags: int

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x1)


class ZipArchive:
    """The directory of a zip file; members are read on request."""

    def __init__(self, f: BinaryIO, file_size: int, display_name: str) -> None:
        self.f = f
        self.file_size = file_size
        self.display_name = display_name
        self.members: list[ZipMember] = []
        self.by_name: dict[str, ZipMember] = {}
        self.duplicates: list[str] = []
        self.prefix_offset = 0  # bytes before the archive (data prepended to the zip)
        self._read_directory()

    def _fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.display_name} is a damaged zip archive: {what}.")

    def _read_directory(self) -> None:
        f, size = self.f, self.file_size
        tail_len = min(size, 65535 + 22)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        pos = tail.rfind(_EOCD)
        while pos >= 0 and pos + 22 > len(tail):
            pos = tail.rfind(_EOCD, 0, pos)
        if pos < 0:
            raise CheckpointError(
                f"{self.display_name} is truncated: the zip directory at its end is missing "
                f"(the file stops at {size:,} bytes; was the download or copy interrupted?)."
            )
        eocd_pos = size - tail_len + pos
        (_, _disk, _cd_disk, _n_disk, count, cd_size, cd_offset, _clen) = struct.unpack_from(
            "<4s4H2IH", tail, pos
        )
        cd_end = eocd_pos
        loc = pos - 20
        if loc >= 0 and tail[loc : loc + 4] == _ZIP64_LOCATOR:
            (z64_offset,) = struct.unpack_from("<Q", tail, loc + 8)
            rec = b""
            for rec_pos in (z64_offset, eocd_pos - 20 - 56):
                if 0 <= rec_pos < size:
                    f.seek(rec_pos)
                    rec = f.read(56)
                    if len(rec) == 56 and rec[:4] == _ZIP64_EOCD:
                        break
            else:
                raise self._fail("its ZIP64 directory record is missing")
            cd_end = rec_pos
            if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
                _, count, cd_size, cd_offset = struct.unpack_from("<QQQQ", rec, 24)
        elif count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
            raise self._fail("its ZIP64 locator is missing")
        # Data prepended to the archive shifts every offset (self-extracting or polyglot files).
        actual_cd = cd_end - cd_size
        if actual_cd < 0 or cd_offset > actual_cd:
            raise self._fail("its directory lies outside the file")
        self.prefix_offset = actual_cd - cd_offset
        if cd_size > 512 * 1024 * 1024:
            raise self._fail(f"its directory claims {cd_size:,} bytes")
        f.seek(actual_cd)
        cd = f.read(cd_size)
        if len(cd) < cd_size:
            raise self._fail("its directory is cut short")
        self._parse_central(cd, count)

    def _parse_central(self, cd: bytes, count: int) -> None:
        p = 0
        n = len(cd)
        unpack = _CENTRAL_FMT.unpack_from
        members = self.members
        by_name = self.by_name
        prefix = self.prefix_offset
        for _ in range(count):
            if p + 46 > n:
                raise self._fail("its directory has fewer records than it declares")
            (sig, _vm, _vn, flags, method, _t, _d, _crc, csize, usize, nlen, xlen, clen, _ds, _ia,
             _ea, hoff) = unpack(cd, p)  # fmt: skip
            if sig != _CENTRAL:
                raise self._fail("a directory record is corrupt")
            name_b = cd[p + 46 : p + 46 + nlen]
            name = name_b.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            if 0xFFFFFFFF in (csize, usize, hoff):
                extra = cd[p + 46 + nlen : p + 46 + nlen + xlen]
                usize, csize, hoff = _zip64_extra(extra, usize, csize, hoff)
            member = ZipMember(name, hoff + prefix, csize, usize, method, flags)
            members.append(member)
            if name in by_name:
                self.duplicates.append(name)
            else:
                by_name[name] = member
            p += 46 + nlen + xlen + clen

    def data_offset(self, member: ZipMember) -> int:
        """Where a member's bytes start (after its local header)."""
        self.f.seek(member.header_offset)
        head = self.f.read(30)
        if len(head) < 30 or head[:4] != _LOCAL:
            raise self._fail(f"the record of {member.name} is missing")
        name_len, extra_len = struct.unpack_from("<HH", head, 26)
        return int(member.header_offset + 30 + name_len + extra_len)

    def read(self, member: ZipMember, max_size: int) -> bytes:
        """A member's bytes; refuses encrypted members and anything larger than ``max_size``."""
        if member.encrypted:
            raise CheckpointError(
                f"{self.display_name} contains an encrypted member ({member.name}); torch never writes those."
            )
        if member.size > max_size:
            raise CheckpointError(
                f"{self.display_name}: {member.name} declares {member.size:,} bytes, "
                f"more than the {max_size:,} this reader accepts for it."
            )
        start = self.data_offset(member)
        if start + member.compressed_size > self.file_size:
            raise CheckpointError(
                f"{self.display_name} is truncated: {member.name} runs past the end of the file."
            )
        self.f.seek(start)
        raw = self.f.read(member.compressed_size)
        if member.method == 0:
            return raw
        if member.method == 8:
            d = zlib.decompressobj(-15)
            out = d.decompress(raw, max_size + 1)
            if len(out) > max_size:
                raise CheckpointError(
                    f"{self.display_name}: {member.name} inflates to more than {max_size:,} bytes."
                )
            return out
        raise CheckpointError(
            f"{self.display_name}: {member.name} uses compression method {member.method}, "
            "which torch never writes."
        )


def _zip64_extra(extra: bytes, usize: int, csize: int, hoff: int) -> tuple[int, int, int]:
    p = 0
    while p + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, p)
        if tag == 0x0001:
            q = p + 4
            vals = []
            while q + 8 <= p + 4 + ln:
                vals.append(struct.unpack_from("<Q", extra, q)[0])
                q += 8
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if hoff == 0xFFFFFFFF:
                hoff = next(it, hoff)
            break
        p += 4 + ln
    return usize, csize, hoff
