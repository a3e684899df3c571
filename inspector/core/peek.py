"""The static read ("peek"): a file's whole tree in milliseconds, importing and executing nothing."""

from __future__ import annotations

import gc
import os
import stat
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from .errors import CheckpointError
from .globals_policy import classify
from .model import CheckpointIndex, GlobalRef, Node
from .sniff import LEGACY_MAGIC, FileKind, sniff
from .torch_pickle import StorageRef, TorchPickleReader
from .tree import TreeBuilder
from .unpickler import Global, Limits, NeedMoreData, PickleError, SafeUnpickler
from .ziparchive import ZipArchive

MAX_PICKLE_BYTES = 1 << 30  # a data.pkl above 1 GiB is not something torch.save writes
_FIRST_READ = 16 << 20


def display_name(path: str) -> str:
    return f"“{os.path.basename(os.path.normpath(path)) or path}”"


class _Reader:
    """Shared state of one peek: the globals seen and the torch hooks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.globals: list[GlobalRef] = []
        self.torch = TorchPickleReader()

    def unpickle(self, data: bytes, start: int, which: str, limits: Limits | None = None) -> tuple[Any, int]:
        def on_global(g: Global) -> None:
            self.globals.append(GlobalRef(g.module, g.name, classify(g.module, g.name), which, g.offset))

        up = SafeUnpickler(
            data, start, name=which, on_global=on_global, reduce_hook=self.torch.reduce_hook,
            persistent_load=self.torch.persistent_load, limits=limits,
        )  # fmt: skip
        try:
            return up.load()
        except PickleError as exc:
            raise CheckpointError(f"{self.name} cannot be read: {exc.message}", exc.details) from None


def _peek(path: str | os.PathLike[str]) -> CheckpointIndex:
    p = os.fspath(path)
    name = display_name(p)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise CheckpointError(f"{name} does not exist.") from None
    except PermissionError:
        raise CheckpointError(f"{name} cannot be read: permission denied.") from None
    except OSError as exc:
        raise CheckpointError(f"{name} cannot be read: {exc.strerror}.") from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{name} is a folder, not a checkpoint file.")
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{name} is not a regular file (a pipe or a device), so it is not read.")
    size = st.st_size
    if size == 0:
        raise CheckpointError(f"{name} is empty (0 bytes), not a checkpoint.")
    try:
        with open(p, "rb") as f:
            head = f.read(4096)
            kind, what = sniff(head, size)
            if kind is FileKind.NOT_CHECKPOINT:
                raise CheckpointError(f"{name} is {what}, not a checkpoint.")
            reader = _Reader(name)
            warnings: list[str] = []
            if kind is FileKind.ZIP:
                fmt, top = _peek_zip(f, size, reader, warnings)
            elif kind is FileKind.LEGACY_TORCH:
                fmt, top = _peek_legacy(f, size, reader, warnings)
            elif kind is FileKind.SAFETENSORS:
                from .safetensors_header import peek_safetensors

                return peek_safetensors(f, p, size, name)
            else:
                fmt, top = _peek_pickle(f, size, reader, warnings)
    except PermissionError:
        raise CheckpointError(f"{name} cannot be read: permission denied.") from None
    except IsADirectoryError:
        raise CheckpointError(f"{name} is a folder, not a checkpoint file.") from None
    except MemoryError:
        raise CheckpointError(f"{name} needs more memory to read than this machine has.") from None
    except OSError as exc:
        raise CheckpointError(f"{name} cannot be read: {exc.strerror or exc}.") from None
    warnings.extend(reader.torch.problems)
    builder = TreeBuilder()
    root = builder.build(top)
    warnings.extend(builder.warnings)
    return _finish(p, fmt, root, reader.globals, size, warnings)


def peek(path: str | os.PathLike[str]) -> CheckpointIndex:
    """Read a checkpoint statically. Raises ``CheckpointError`` with a sentence about the file.

    The collector is paused meanwhile: the read allocates millions of small objects that all stay
    alive, and collecting them repeatedly would double the time on large files.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _peek(path)
    finally:
        if was_enabled:
            gc.enable()


def _finish(
    path: str, fmt: str, root: Node, globals_: list[GlobalRef], size: int, warnings: list[str]
) -> CheckpointIndex:
    views: set[tuple[Any, ...]] = set()
    storages: dict[str, int] = {}
    params = count = 0
    for node in root.tensors():
        t = node.tensor
        assert t is not None
        count += 1
        view = (t.storage_key, t.storage_offset, t.shape, t.stride, t.dtype) if t.storage_key else (id(node),)
        if view not in views:
            views.add(view)
            params += t.numel
        if t.storage_key:
            storages[t.storage_key] = t.storage_nbytes
        extent = t.storage_offset + sum((s - 1) * st for s, st in zip(t.shape, t.stride, strict=True))
        if t.numel and t.storage_key and (extent + 1) * t.itemsize > t.storage_nbytes:
            warnings.append(f"{node.key or 'the tensor'} reaches beyond the end of its storage")
    return CheckpointIndex(
        path=path, format=fmt, root=root, globals=globals_, file_size=size, warnings=warnings,
        total_params=params, total_bytes=sum(storages.values()), tensor_count=count,
    )  # fmt: skip


def _find_data_pkl(archive: ZipArchive) -> tuple[str, str] | None:
    """(prefix, member name) of the archive's data.pkl, whatever its top-level folder is called."""
    candidates = [m.name for m in archive.members if m.name.endswith("data.pkl")
                  and m.name.count("/") <= 1 and os.path.basename(m.name) == "data.pkl"]  # fmt: skip
    if not candidates:
        return None
    name = candidates[0]
    return name[: -len("data.pkl")], name


def _peek_zip(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    archive = ZipArchive(f, size, reader.name)
    found = _find_data_pkl(archive)
    if found is None:
        names = {m.name.split("/", 1)[-1] for m in archive.members}
        if any(n.startswith(".data/") or n.endswith(".py") for n in names) and "version" not in names:
            raise CheckpointError(
                f"{reader.name} is a torch.package archive or a zip of code, not a checkpoint "
                "made by torch.save."
            )
        raise CheckpointError(
            f"{reader.name} is a zip archive but not a PyTorch checkpoint (it has no data.pkl)."
        )
    prefix, pkl_name = found
    if pkl_name in archive.duplicates:
        raise CheckpointError(
            f"{reader.name} has two members named {pkl_name}; a reader could pick either, so it is refused."
        )
    for n in archive.members:
        if n.name.startswith("/") or "../" in n.name or n.name.startswith(".."):
            warnings.append(f"the archive has a member with an unsafe path: {n.name}")
    is_script = (prefix + "constants.pkl") in archive.by_name or any(
        m.name.startswith(prefix + "code/") for m in archive.members
    )
    data = archive.read(archive.by_name[pkl_name], MAX_PICKLE_BYTES)
    try:
        top, _ = reader.unpickle(data, 0, "data.pkl")
    except NeedMoreData:
        raise CheckpointError(
            f"{reader.name} is damaged: its data.pkl stops in the middle of the object."
        ) from None
    _check_zip_storages(archive, prefix, reader.torch.storages, warnings)
    if is_script:
        return "torchscript", top
    return "torch-zip", top


def _check_zip_storages(
    archive: ZipArchive, prefix: str, storages: dict[str, StorageRef], warnings: list[str]
) -> None:
    missing: list[str] = []
    for key, st in storages.items():
        member = archive.by_name.get(f"{prefix}data/{key}")
        if member is None:
            missing.append(key)
        elif member.size < st.nbytes:
            warnings.append(
                f"storage record data/{key} holds {member.size:,} bytes but declares {st.nbytes:,}"
            )
        elif member.method != 0:
            warnings.append(f"storage record data/{key} is compressed; torch never writes that")
    if missing:
        shown = ", ".join(f"data/{k}" for k in missing[:5]) + (" …" if len(missing) > 5 else "")
        warnings.append(f"{len(missing)} storage record(s) are missing from the archive: {shown}")


def _read_growing(f: BinaryIO, size: int, parse: Callable[[bytes], Any], name: str) -> Any:
    """Run ``parse`` on the file's first bytes, giving it more while it runs out of data."""
    want = min(size, _FIRST_READ)
    while True:
        f.seek(0)
        data = f.read(want)
        try:
            return parse(data)
        except NeedMoreData:
            if want >= size:
                raise CheckpointError(f"{name} is truncated: it stops in the middle of a pickle.") from None
            if want >= MAX_PICKLE_BYTES:
                raise CheckpointError(f"{name} has a pickle larger than 1 GiB; it is not read.") from None
            want = min(size, want * 4, MAX_PICKLE_BYTES)


def _peek_legacy(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    def parse(data: bytes) -> tuple[Any, Any, int]:
        reader.globals.clear()
        reader.torch = TorchPickleReader()
        small = Limits(max_opcodes=10_000)
        magic, pos = reader.unpickle(data, 0, "magic number pickle", small)
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{reader.name} has an invalid legacy magic number.")
        proto, pos = reader.unpickle(data, pos, "protocol pickle", small)
        if proto != 1001:
            raise CheckpointError(f"{reader.name} uses legacy protocol {proto!r}, which torch does not know.")
        _sys_info, pos = reader.unpickle(data, pos, "sys-info pickle", small)
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
            raise CheckpointError(f"{reader.name} is truncated: the data of storage {key} is missing.")
        (numel,) = struct.unpack("<q", raw)
        st = storages.get(key)
        itemsize = st.nbytes // st.numel if st is not None and st.numel else 1
        if st is not None and numel != st.numel:
            warnings.append(f"storage {key} declares {st.numel:,} elements but its record holds {numel:,}")
        if numel < 0:
            raise CheckpointError(f"{reader.name} is damaged: storage {key} has a negative size.")
        pos += 8 + numel * itemsize
        if pos > size:
            raise CheckpointError(
                f"{reader.name} is truncated: storage {key} needs {numel * itemsize:,} bytes "
                f"but the file ends {pos - size:,} bytes too early."
            )
    missing = [k for k in storages if k not in set(keys)]
    if missing:
        warnings.append(f"{len(missing)} storage(s) have no data in the file: {', '.join(missing[:5])}")
    return "torch-legacy", top


def _peek_pickle(f: BinaryIO, size: int, reader: _Reader, warnings: list[str]) -> tuple[str, Any]:
    def parse(data: bytes) -> Any:
        reader.globals.clear()
        reader.torch = TorchPickleReader()
        top, end = reader.unpickle(data, 0, "pickle")
        if end < size and len(data) >= size:
            warnings.append(f"{size - end:,} bytes follow the pickle's end")
        return top

    top = _read_growing(f, size, parse, reader.name)
    warnings.append("this is a plain pickle, not a torch.save file: torch.load cannot open it")
    return "pickle", top
