"""torch.save's legacy format (``_use_new_zipfile_serialization=False``): a stream of pickles.

The magic number, the protocol, the system info, the object and the list of storage keys, each a
pickle, then every storage's element count and raw bytes in that order. Storage bytes are located,
never read.
"""

from __future__ import annotations

import struct
from typing import Any

from .errors import CheckpointError
from .formats import Format
from .model import CheckpointIndex
from .pickle_stream import scan_appended_zip
from .reading import FileReader, OpenedFile, ReadState, read_growing

#: The first pickle of every legacy file, and the protocol number in the second.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
#: The magic number as torch.save pickles it (protocol 2, LONG1 of 10 bytes).
LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")


class TorchLegacyReader(FileReader):
    """torch.save's legacy stream, told by its pickled magic number."""

    formats = (Format.TORCH_LEGACY,)

    def probe(self, head: bytes, size: int) -> bool:
        return head.startswith(LEGACY_PREFIX)

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        top = _read_legacy(file, state, warnings)
        scan_appended_zip(file, state, warnings)
        return state.index(file, Format.TORCH_LEGACY, top, warnings)


def _read_legacy(file: OpenedFile, state: ReadState, warnings: list[str]) -> Any:
    """The object of a legacy file; each storage's bytes are located (``state.storage_spans``)."""
    f, size = file.f, file.size

    def parse(data: bytes) -> tuple[Any, Any, int]:
        state.reset()
        magic, pos = state.unpickle(data, 0, "magic number pickle")
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{state.name} has an invalid legacy magic number.")
        proto, pos = state.unpickle(data, pos, "protocol pickle")
        if proto != LEGACY_PROTOCOL:
            raise CheckpointError(f"{state.name} uses legacy protocol {proto!r}, which torch does not know.")
        sys_info, pos = state.unpickle(data, pos, "sys-info pickle")
        items = getattr(sys_info, "items", None)
        if isinstance(items, list) and any(k == "little_endian" and v is False for k, v in items):
            state.byteorder = "big"
        top, pos = state.unpickle(data, pos, "object pickle")
        keys, pos = state.unpickle(data, pos, "storage-keys pickle")
        return top, keys, pos

    top, keys, pos = read_growing(f, size, parse, state.name)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{state.name} is damaged: its list of storage keys is not a list of names.")
    storages = state.torch.storages
    for key in keys:
        f.seek(pos)
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(f"{state.name} is truncated: the data of storage {key[:60]} is missing.")
        (numel,) = struct.unpack("<q", raw)
        st = storages.get(key)
        itemsize = st.nbytes // st.numel if st is not None and st.numel else 1
        if st is not None and numel != st.numel:
            warnings.append(f"storage {key} declares {st.numel:,} elements but its record holds {numel:,}")
        if numel < 0:
            raise CheckpointError(f"{state.name} is damaged: storage {key[:60]} has a negative size.")
        state.storage_spans[key] = (pos + 8, numel * itemsize)
        pos += 8 + numel * itemsize
        if pos > size:
            raise CheckpointError(
                f"{state.name} is truncated: storage {key[:60]} needs {numel * itemsize:,} bytes "
                f"but the file ends {pos - size:,} bytes too early."
            )
    listed = set(keys)
    missing = [k for k in storages if k not in listed]
    if missing:
        warnings.append(f"{len(missing)} storage(s) have no data in the file: {', '.join(missing[:5])}")
    return top
