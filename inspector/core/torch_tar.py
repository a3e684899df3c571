"""The torch 0.1 tar format, read statically: headers with ``tarfile``, every pickle with the safe reader.

Members (torch/serialization.py ``legacy_load``): ``sys_info`` (a dict), ``pickle`` (the object; a
tensor or storage is the persistent id ``str(key)``), ``tensors`` (a count, then per tensor the
pickle ``(key, storage key, tensor type)`` and ndim/sizes/strides/offset as int32 + int64s) and
``storages`` (a count, then per storage the pickle ``(key, location, storage type)``, an int64
element count and the raw bytes; then a pickled list of views ``(key, root key, offset, numel)``).
Storage bytes are skipped, never read.
"""

from __future__ import annotations

import struct
import tarfile
from typing import TYPE_CHECKING, Any, BinaryIO

from .dtypes import ITEMSIZE, STORAGE_DTYPE, STORAGE_MODULES
from .errors import CheckpointError
from .torch_pickle import StorageRef, TensorRef, TorchPickleReader
from .unpickler import Global, Limits, NeedMoreData

if TYPE_CHECKING:
    from .peek import _Reader

TAR_MEMBERS = ("sys_info", "pickle", "tensors", "storages")
MAX_MEMBERS = 64  # torch writes four; headers past this many are not read
MAX_RECORD_BYTES = 1 << 16  # one (key, location, type) record pickle
MAX_TENSORS_MEMBER = 256 << 20  # the tensors member holds small pickles and metadata only
MAX_PICKLE_MEMBER = 1 << 30
_SMALL = Limits(max_opcodes=10_000, max_bytes=1 << 20)


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
        return str(v)
    if isinstance(v, (str, bytes)):
        text = v.decode("ascii", "replace") if isinstance(v, bytes) else v
        if text.strip().lstrip("-").isdigit() and len(text) <= 40:
            return str(int(text))
    return None


def _members(f: BinaryIO, name: str) -> dict[str, tarfile.TarInfo]:
    """The regular-file members by name (headers only); a name given twice is refused."""
    f.seek(0)
    found: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            for _ in range(MAX_MEMBERS):
                info = tar.next()
                if info is None:
                    break
                if not info.isreg():
                    continue
                if info.name in found and info.name in TAR_MEMBERS:
                    raise CheckpointError(
                        f"{name} has two members named {info.name}; a reader could pick either, "
                        "so it is refused."
                    )
                found[info.name] = info
    except tarfile.TarError as exc:
        raise CheckpointError(f"{name} is a damaged tar archive.", str(exc)) from None
    return found


def _read(f: BinaryIO, info: tarfile.TarInfo, cap: int, name: str) -> bytes:
    if info.size > cap:
        raise CheckpointError(
            f"{name}: its {info.name} member declares {info.size:,} bytes, more than the {cap:,} "
            "this reader accepts for it."
        )
    f.seek(info.offset_data)
    data = f.read(info.size)
    if len(data) < info.size:
        raise CheckpointError(f"{name} is truncated: its {info.name} member runs past the end of the file.")
    return data


def _small_pickle(reader: _Reader, data: bytes, pos: int, which: str) -> tuple[Any, int]:
    try:
        return reader.unpickle(data, pos, which, _SMALL, torch=False)
    except NeedMoreData:
        raise CheckpointError(
            f"{reader.name} is damaged: its {which} member stops in the middle of a record."
        ) from None


def _storages(
    f: BinaryIO, size: int, info: tarfile.TarInfo, reader: _Reader, warnings: list[str]
) -> dict[str, StorageRef]:
    """Every storage record's key, dtype, location and size; the bytes are skipped."""
    name = reader.name
    out: dict[str, StorageRef] = {}
    end = info.offset_data + info.size
    if end > size:
        raise CheckpointError(f"{name} is truncated: its storages member runs past the end of the file.")

    def chunk(at: int) -> bytes:
        f.seek(at)
        return f.read(min(MAX_RECORD_BYTES, end - at))

    pos = info.offset_data
    count, used = _small_pickle(reader, chunk(pos), 0, "storages")
    pos += used
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CheckpointError(f"{name} is damaged: its storages member does not start with a count.")
    for _ in range(count):
        record, used = _small_pickle(reader, chunk(pos), 0, "storages")
        pos += used
        if not (isinstance(record, tuple) and len(record) == 3):
            raise CheckpointError(f"{name} is damaged: a storage record is not (key, location, type).")
        key, location, stype = _key(record[0]), record[1], record[2]
        dtype = (
            STORAGE_DTYPE.get(stype.name)
            if isinstance(stype, Global) and stype.module in STORAGE_MODULES
            else None
        )
        if key is None or not isinstance(location, str) or dtype is None:
            raise CheckpointError(
                f"{name} is damaged: a storage record names {str(record)[:80]}, which torch does not write."
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
        views, _ = reader.unpickle(rest, 0, "storages (views)", torch=False)
    except NeedMoreData:
        warnings.append("the list of storage views stops in the middle of a pickle")
        views = []
    for view in views if isinstance(views, list) else []:
        if isinstance(view, tuple) and len(view) == 4 and isinstance(view[2], int):
            target, root = _key(view[0]), out.get(_key(view[1]) or "")
            if target is not None and root is not None:
                out[target] = StorageRef(root.key, root.dtype, root.location, root.numel, view_offset=view[2])
    return out


def _tensors(data: bytes, storages: dict[str, StorageRef], reader: _Reader) -> dict[str, TensorRef]:
    """Every tensor record: its storage, offset, sizes and strides."""
    name = reader.name
    out: dict[str, TensorRef] = {}
    count, pos = _small_pickle(reader, data, 0, "tensors")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CheckpointError(f"{name} is damaged: its tensors member does not start with a count.")
    for _ in range(count):
        record, pos = _small_pickle(reader, data, pos, "tensors")
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
        if key is None or storage is None or min((*shape, *stride, offset), default=0) < 0:
            raise CheckpointError(f"{name} is damaged: tensor record {str(record[0])[:40]} is not valid.")
        out[key] = TensorRef(
            storage, offset + storage.view_offset, shape, stride, storage.dtype, storage.location
        )
    return out


def peek_torch_tar(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    """(format, top object) of a torch 0.1 tar file; other tar archives are not checkpoints."""
    name = reader.name
    members = _members(f, name)
    if "pickle" not in members:
        raise CheckpointError(
            f"{name} is a tar archive but not a PyTorch checkpoint (it has no pickle member)."
        )
    if "sys_info" in members:
        info, _ = _small_pickle(reader, _read(f, members["sys_info"], MAX_RECORD_BYTES, name), 0, "sys_info")
        if isinstance(info, dict) and info.get("little_endian") is False:
            warnings.append("the file was written on a big-endian machine")
    storages = _storages(f, size, members["storages"], reader, warnings) if "storages" in members else {}
    tensors: dict[str, TensorRef] = {}
    if "tensors" in members:
        tensors = _tensors(_read(f, members["tensors"], MAX_TENSORS_MEMBER, name), storages, reader)
    missing = [m for m in ("tensors", "storages") if m not in members]
    if missing:
        warnings.append(f"the archive has no {' or '.join(missing)} member")
    hooks = _TarHooks(tensors, storages)
    reader.torch = hooks
    data = _read(f, members["pickle"], MAX_PICKLE_MEMBER, name)
    try:
        top, _ = reader.unpickle(data, 0, "pickle")
    except NeedMoreData:
        raise CheckpointError(
            f"{name} is damaged: its pickle member stops in the middle of the object."
        ) from None
    warnings.append(
        "this is the torch 0.1 tar format: torch.load reads it only with weights_only=False, "
        "which runs its pickles, so trust it first"
    )
    return "torch-tar", top
