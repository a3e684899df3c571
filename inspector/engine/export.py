"""Carrying out an ``ExportPlan``: stream tensor by tensor into a temporary file, verify, rename.

The source is opened with ``torch.load(weights_only=True, mmap=True)`` (zip files; the legacy
format cannot be mapped, so torch reads it whole) or ``safetensors.safe_open``. Nothing is
materialised as a whole: torch formats are written by our own pickler (torch's tensor reducers,
our storage records, whose location tags are the target devices) and torch's own zip writer
(``PyTorchFileWriter``) or the legacy stream layout, one storage at a time; safetensors files are
written header first, then each tensor's bytes. Pages of the mapped source are handed back to the
kernel after each storage, so the resident size stays near the largest tensor.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import pickle
import shutil
import stat
import struct
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import torch
from torch import nn

from inspector.core.dtypes import ITEMSIZE
from inspector.core.errors import CheckpointError
from inspector.core.export_plan import (
    SAFETENSORS_CODES,
    ExportPlan,
    KeyMapping,
    MappedTensor,
    ValueFate,
    json_metadata_value,
    map_keys,
)
from inspector.core.formatting import format_bytes
from inspector.core.model import CheckpointIndex, PathPart, path_part
from inspector.core.peek import peek

ProgressCallback = Callable[[int, int], None]  # bytes done, bytes total
CancelCheck = Callable[[], bool]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MADV_DONTNEED = 4
_MADV_POPULATE_READ = 22  # Linux 5.14+; older kernels answer EINVAL and pages fault in as usual


class ExportError(CheckpointError):
    """An export failed; the target was left as it was. ``kind``: refused, unsafe (the safety
    policy does not hand the source to torch unless it is trusted), disk-full, cancelled,
    verify-failed, failed."""

    def __init__(self, message: str, details: str | None = None, kind: str = "failed") -> None:
        super().__init__(message, details)
        self.kind = kind

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "details": self.details, "extra": {}}


@dataclass
class ExportReport:
    """What was written, for the dialog and the command line."""

    target: str
    format: str
    tensors: int
    storages: int
    bytes: int  # size of the written file
    seconds: float
    verified: bool
    aliases: dict[str, str] = field(default_factory=dict)  # safetensors: alias → stored key
    cloned: dict[str, str] = field(default_factory=dict)  # safetensors: copy → tensor it shared with
    values_kept: list[str] = field(default_factory=list)
    values_in_metadata: list[str] = field(default_factory=list)
    values_dropped: list[str] = field(default_factory=list)  # "key (why)"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "format": self.format,
            "tensors": self.tensors,
            "storages": self.storages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "verified": self.verified,
            "aliases": dict(self.aliases),
            "cloned": dict(self.cloned),
            "values_kept": list(self.values_kept),
            "values_in_metadata": list(self.values_in_metadata),
            "values_dropped": list(self.values_dropped),
        }

    def summary(self) -> list[str]:
        """A few lines: tensors, bytes, time, verified, and what happened to other values."""
        name = os.path.basename(self.target)
        lines = [
            f"Wrote “{name}” ({self.format}): {self.tensors:,} tensors, {format_bytes(self.bytes)} "
            f"in {self.seconds:.2f} s; " + ("verified." if self.verified else "NOT verified.")
        ]
        if self.aliases:
            lines.append(f"{len(self.aliases)} alias(es) stored once, recorded in the metadata: "
                         + ", ".join(f"{a} = {k}" for a, k in self.aliases.items()))  # fmt: skip
        if self.cloned:
            lines.append("Written as separate copies (they shared storage): "
                         + ", ".join(f"{c} (with {k})" for c, k in self.cloned.items()))  # fmt: skip
        if self.values_in_metadata:
            lines.append("Stored as JSON in the metadata: " + ", ".join(self.values_in_metadata))
        if self.values_dropped:
            lines.append("Not written: " + ", ".join(self.values_dropped))
        return lines


class ExportCancelled(ExportError):
    def __init__(self) -> None:
        super().__init__("The export was cancelled; nothing was written.", None, "cancelled")


# -- entry point ---------------------------------------------------------------------------------


def visible_devices() -> list[str]:
    """Devices tensors can be exported onto here."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def export_checkpoint(
    plan: ExportPlan,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    devices: list[str] | None = None,
) -> ExportReport:
    """Write, verify and rename into place; raises ``ExportError`` and then leaves no partial file.

    ``devices`` lists where tensors may be exported onto (default: what this machine has).
    """
    if plan.format == "hf-sharded":
        from .export_sharded import export_shard_set

        return export_shard_set(plan, progress, cancel, devices)
    started = time.perf_counter()
    src_name = f"“{os.path.basename(plan.source) or plan.source}”"
    _check_paths(plan)
    try:
        index = peek(plan.source)
    except CheckpointError as exc:
        raise ExportError(exc.message, exc.details, "refused") from None
    _check_safety(plan, index)
    mapping = map_keys(index, plan)
    if not mapping.ok:
        raise ExportError(" ".join(mapping.problems), None, "refused")
    allowed = devices if devices is not None else visible_devices()
    missing = [d for d in plan.requested_devices() if d not in allowed]
    if missing:
        raise ExportError(
            f"This machine has no {', '.join(missing)} (it has {', '.join(allowed)}), so tensors "
            "cannot be exported onto it.",
            None,
            "refused",
        )
    _check_space(plan, mapping.estimated_bytes)
    temp = plan.temp_path
    if os.path.dirname(os.path.abspath(temp)) != os.path.dirname(os.path.abspath(plan.target)):
        raise ExportError("The temporary file must lie beside the target.", temp, "refused")
    done = [0]
    total = max(1, mapping.estimated_bytes)

    def step(nbytes: int) -> None:
        if cancel is not None and cancel():
            raise ExportCancelled()
        done[0] += nbytes
        if progress is not None:
            progress(min(done[0], total), total)

    try:
        with _open_source(plan, index) as source:
            step(0)
            if plan.format == "safetensors":
                facts = _write_safetensors(plan, mapping, source, temp, step)
            else:
                facts = _write_torch(plan, mapping, source, temp, step)
            _fsync_path(temp)
            _verify(plan, mapping, source, temp, facts)
        if cancel is not None and cancel():
            raise ExportCancelled()
        os.replace(temp, plan.target)
        _fsync_dir(os.path.dirname(os.path.abspath(plan.target)))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, ExportError):
            raise
        if isinstance(exc, OSError):
            raise _os_error(plan, exc) from None
        if isinstance(exc, RuntimeError) and _looks_like_disk_full(plan, exc):
            raise _disk_full(plan, mapping.estimated_bytes, str(exc)) from None
        if isinstance(exc, Exception):
            if isinstance(exc, CheckpointError):
                raise ExportError(exc.message, exc.details, "failed") from None
            raise ExportError(
                f"Exporting {src_name} failed: {type(exc).__name__}: {exc}", repr(exc), "failed"
            ) from None
        raise
    if progress is not None:
        progress(total, total)
    return _report(plan, mapping, facts, time.perf_counter() - started)


# -- checks before writing -----------------------------------------------------------------------


def _check_paths(plan: ExportPlan) -> None:
    name = os.path.basename(plan.target) or plan.target
    try:
        src = os.stat(plan.source)
    except OSError as exc:
        raise ExportError(
            f"“{os.path.basename(plan.source)}” cannot be read: {exc.strerror}.", str(exc), "refused"
        ) from None
    try:
        dst = os.stat(plan.target)
    except FileNotFoundError:
        dst = None
    except OSError as exc:
        raise ExportError(f"“{name}” cannot be checked: {exc.strerror}.", str(exc), "refused") from None
    if dst is not None:
        if (dst.st_dev, dst.st_ino) == (src.st_dev, src.st_ino):
            raise ExportError(
                f"“{name}” is the source file itself (the same file under another name or link); "
                "an export never writes over its source.",
                None,
                "refused",
            )
        if stat.S_ISDIR(dst.st_mode):
            raise ExportError(f"“{name}” is a folder; choose a file name.", None, "refused")
        if not plan.force:
            raise ExportError(
                f"“{name}” already exists; choose another name or allow replacing it (--force).",
                None,
                "refused",
            )
    folder = os.path.dirname(os.path.abspath(plan.target))
    if not os.path.isdir(folder):
        raise ExportError(f"The folder “{folder}” does not exist.", None, "refused")


def _check_space(plan: ExportPlan, estimate: int) -> None:
    folder = os.path.dirname(os.path.abspath(plan.target))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if estimate > free:
        raise _disk_full(plan, estimate, f"free: {free} bytes")


def _disk_full(plan: ExportPlan, estimate: int, details: str | None) -> ExportError:
    folder = os.path.dirname(os.path.abspath(plan.target))
    return ExportError(
        f"The disk holding “{folder}” is full: “{os.path.basename(plan.target)}” needs about "
        f"{format_bytes(estimate)}. Nothing was written; free some space or choose another folder.",
        details,
        "disk-full",
    )


def _os_error(plan: ExportPlan, exc: OSError) -> ExportError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full_plain(plan, exc)
    name = os.path.basename(plan.target)
    if isinstance(exc, PermissionError):
        return ExportError(f"“{name}” cannot be written: permission denied.", str(exc), "failed")
    return ExportError(f"Writing “{name}” failed: {exc.strerror or exc}.", str(exc), "failed")


def _disk_full_plain(plan: ExportPlan, exc: BaseException) -> ExportError:
    folder = os.path.dirname(os.path.abspath(plan.target))
    return ExportError(
        f"The disk holding “{folder}” is full, so “{os.path.basename(plan.target)}” could not be "
        "written. Nothing was changed; free some space or choose another folder.",
        str(exc),
        "disk-full",
    )


def _looks_like_disk_full(plan: ExportPlan, exc: RuntimeError) -> bool:
    text = str(exc)
    if "No space left" in text:
        return True
    if "write failed" in text or "file write" in text:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(os.path.dirname(os.path.abspath(plan.target))).free < (64 << 20)
    return False


# -- the source ----------------------------------------------------------------------------------


@dataclass
class _Source:
    """The loaded source: its object (torch files) or its safetensors handle."""

    obj: Any
    mapped: bool  # storages are slices of a private file mapping (pages may be dropped)
    safetensors: Any = None

    def tensor(self, t: MappedTensor) -> torch.Tensor:
        if self.safetensors is not None:
            tensor: torch.Tensor = self.safetensors.get_tensor(str(t.source_path[0]))
            return tensor
        item = self.obj
        for part in t.source_path:
            item = _child(item, part)
        assert isinstance(item, torch.Tensor)
        return item


def _child(item: Any, part: PathPart) -> Any:
    if isinstance(item, dict):
        for k, v in item.items():
            if path_part(k) == part:
                return v
        raise KeyError(part)
    if isinstance(item, list | tuple):
        return item[int(part)]
    return vars(item)[str(part)]


@contextlib.contextmanager
def _open_source(plan: ExportPlan, index: CheckpointIndex) -> Iterator[_Source]:
    if index.format == "safetensors":
        from safetensors import safe_open

        with safe_open(plan.source, framework="pt") as f:
            yield _Source(None, False, f)
        return
    if index.format in ("hf-sharded", "dcp"):
        from .shard_sources import ShardSetSource

        shards = ShardSetSource(plan.source, index)
        try:
            yield _Source(None, False, shards)
        finally:
            shards.close()
        return
    mmap = index.format == "torch-zip"
    obj = _torch_load(plan.source, plan, mmap)
    yield _Source(obj, mmap)


def _check_safety(plan: ExportPlan, index: CheckpointIndex) -> None:
    """The safety policy's answer for the source, as for a load in the window: a dangerous file,
    a TorchScript archive or a name that may never be allowed is refused unless trusted."""
    from inspector.core.load_options import LoadOptions
    from inspector.core.safety import verdict_of
    from inspector.engine.loader import LoadError, check_handed_to_torch

    options = LoadOptions(weights_only=not plan.trusted, allowed_globals=plan.allowed_globals)
    try:
        check_handed_to_torch(os.path.basename(plan.source) or plan.source, verdict_of(index), options)
    except LoadError as exc:
        raise ExportError(exc.message, exc.details, "unsafe") from None


def _torch_load(path: str, plan: ExportPlan, mmap: bool) -> Any:
    """``torch.load`` of ``path`` on the cpu: weights-only with the plan's allowed globals (as the
    loader resolves them), or trusted when the plan says so."""
    from inspector.core.load_options import LoadOptions
    from inspector.engine.loader import LoadError, classify_error

    with open(path, "rb") as f:
        head = f.read(16)
    try:
        safe = [] if plan.trusted else _allowed_objects(plan.source, plan.allowed_globals)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(safe):
                return torch.load(path, map_location="cpu", weights_only=not plan.trusted, mmap=mmap)
    except LoadError as exc:  # a global that may never be allowed, or cannot be found
        raise ExportError(
            exc.message, exc.details, "unsafe" if exc.kind == "refused-global" else "refused"
        ) from None
    except Exception as exc:
        error: LoadError = classify_error(path, LoadOptions(map_location="cpu"), exc, head)
        raise ExportError(error.message, error.details, "failed") from None


def _allowed_objects(path: str, allowed: tuple[str, ...]) -> list[Any]:
    """The loader's own allowlist resolution: each name is judged on the object it resolves to."""
    from inspector.engine.loader import resolve_allowed_globals

    return resolve_allowed_globals(os.path.basename(path), allowed)


def _populate(storage: torch.UntypedStorage) -> None:
    """Map a file-backed storage's pages in one call (MADV_POPULATE_READ) instead of one fault each."""
    nbytes = storage.nbytes()
    if nbytes < (1 << 20) or sys.platform != "linux":
        return
    start = storage.data_ptr() & ~(_PAGE - 1)
    end = (storage.data_ptr() + nbytes + _PAGE - 1) & ~(_PAGE - 1)
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_POPULATE_READ)


def _drop_pages_range(storage: torch.UntypedStorage, offset: int, nbytes: int) -> None:
    """``_drop_pages`` for a byte range of a file-mapped storage."""
    if nbytes < _PAGE or sys.platform != "linux":
        return
    start = (storage.data_ptr() + offset) & ~(_PAGE - 1)
    end = (storage.data_ptr() + offset + nbytes + _PAGE - 1) & ~(_PAGE - 1)
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


def _drop_pages(storage: torch.UntypedStorage) -> None:
    """Give the pages of a storage that lives in a private read-only file mapping back to the kernel.

    Only for storages of an ``mmap=True`` load: unmodified private file pages are re-read from the
    file if touched again, so nothing is lost; never call it on heap memory.
    """
    nbytes = storage.nbytes()
    if nbytes < _PAGE or sys.platform != "linux":
        return
    start = storage.data_ptr() & ~(_PAGE - 1)
    end = (storage.data_ptr() + nbytes + _PAGE - 1) & ~(_PAGE - 1)
    _libc().madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return _LIBC


def _raw_bytes(t: torch.Tensor) -> torch.Tensor:
    """The tensor's elements as contiguous uint8 (no copy when it is contiguous already)."""
    t = t.detach().contiguous()
    if t.numel() == 0:
        return torch.empty(0, dtype=torch.uint8)
    return t.reshape(-1).view(torch.uint8)


def _converted(t: torch.Tensor, dtype: str) -> torch.Tensor:
    target = getattr(torch, dtype)
    return t.detach() if t.dtype == target else t.detach().to(target)


# -- torch formats ------------------------------------------------------------------------------


_DROP = object()


@dataclass
class _OutStorage:
    """One storage of the written file: where its bytes come from and what tag it gets."""

    source: torch.UntypedStorage | None  # the source storage (torch sources)
    source_dtype: torch.dtype
    dtype: torch.dtype
    location: str
    views: list[MappedTensor]
    standin: torch.UntypedStorage | None = None  # pickled in place of a converted storage
    nbytes: int = 0


@dataclass
class _Facts:
    """What the writer learned, for verification and the report."""

    storages: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    in_metadata: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    groups: list[list[MappedTensor]] = field(default_factory=list)  # tensors sharing one storage


def _write_torch(
    plan: ExportPlan, mapping: KeyMapping, source: _Source, temp: str, step: Callable[[int], None]
) -> _Facts:
    facts = _Facts()
    by_path = mapping.by_source_path()
    storages: dict[int, _OutStorage] = {}  # by the pickled storage's _cdata
    replaced: dict[tuple[PathPart, ...], torch.Tensor] = {}

    if source.safetensors is not None:
        for t in mapping.tensors:
            replaced[t.source_path] = _standin_for_safetensors(t, storages, source)
        obj: Any = OrderedDict((str(t.source_path[0]), replaced[t.source_path]) for t in mapping.tensors)
    else:
        obj = source.obj
        _plan_storages(obj, by_path, storages, replaced)
    for out in storages.values():
        facts.groups.append(out.views)
    fates = mapping.value_fates()
    rebuilt = _rebuild(obj, (), mapping.subtree_path, by_path, replaced, fates, {}, facts)
    if rebuilt is _DROP:
        rebuilt = OrderedDict()

    legacy = plan.format == "pth-legacy"
    records: dict[str, _OutStorage] = {}
    keys: dict[int, str] = {}

    def persistent_id(item: Any) -> Any:
        if isinstance(item, torch.storage.TypedStorage) or torch.is_storage(item):
            if isinstance(item, torch.storage.TypedStorage):
                storage = item._untyped_storage
                storage_type = getattr(torch, item._pickle_storage_type())  # type: ignore[no-untyped-call]
                numel = item._size()  # type: ignore[no-untyped-call]
            else:
                storage = item
                storage_type = torch.UntypedStorage
                numel = storage.nbytes()
            out = storages.get(storage._cdata)
            if out is None:
                raise ExportError("A tensor of the source was not in the export plan.", None, "failed")
            key = keys.get(id(out))
            if key is None:
                key = str(storage._cdata) if legacy else str(len(records))
                keys[id(out)] = key
                records[key] = out
            if legacy:
                return ("storage", storage_type, key, out.location, numel, None)
            return ("storage", storage_type, key, out.location, numel)
        return None

    class _Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return persistent_id(obj)

    data = io.BytesIO()
    _Pickler(data, protocol=2).dump(rebuilt)
    del rebuilt, replaced
    facts.storages = len(records)
    if legacy:
        _write_legacy(temp, data.getvalue(), records, source, step)
    else:
        _write_zip(temp, data.getvalue(), records, source, step)
    return facts


def _standin_for_safetensors(
    t: MappedTensor, storages: dict[int, _OutStorage], source: _Source
) -> torch.Tensor:
    dtype = getattr(torch, t.output_dtype)
    nbytes = t.nbytes
    standin = _untouched_storage(nbytes)
    numel = nbytes // max(1, ITEMSIZE.get(t.output_dtype, 1))
    tensor = torch.empty(0, dtype=dtype).set_(standin, 0, t.shape, _contiguous_stride(t.shape))
    storages[standin._cdata] = _OutStorage(None, getattr(torch, t.dtype), dtype, t.output_device,
                                           [t], standin, nbytes)  # fmt: skip
    del numel
    return tensor


def _untouched_storage(nbytes: int) -> torch.UntypedStorage:
    """Storage that is pickled in place of a converted one: allocated, never written, so it costs
    address space but no resident memory."""
    storage: torch.UntypedStorage = torch.UntypedStorage(nbytes)  # type: ignore[no-untyped-call]
    return storage


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride: list[int] = []
    acc = 1
    for s in reversed(shape):
        stride.insert(0, acc)
        acc *= max(1, s)
    return tuple(stride)


def _walk(obj: Any, path: tuple[PathPart, ...] = ()) -> Iterator[tuple[tuple[PathPart, ...], Any]]:
    """Every tensor of a loaded object with its path (each container entered once)."""
    seen: set[int] = set()
    stack: list[tuple[tuple[PathPart, ...], Any]] = [(path, obj)]
    while stack:
        p, item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield p, item
            continue
        if isinstance(item, dict):
            children = [(path_part(k), v) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = list(enumerate(item))
        else:
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.extend(((*p, part), child) for part, child in reversed(children))


def _plan_storages(
    obj: Any,
    by_path: dict[tuple[PathPart, ...], MappedTensor],
    storages: dict[int, _OutStorage],
    replaced: dict[tuple[PathPart, ...], torch.Tensor],
) -> None:
    """Group the exported tensors by source storage; converted storages get one stand-in each."""
    by_source: dict[int, _OutStorage] = {}
    found: list[tuple[MappedTensor, torch.Tensor]] = []
    for path, tensor in _walk(obj):
        t = by_path.get(path)
        if t is None:
            continue
        found.append((t, tensor))
        storage = tensor.untyped_storage()
        out = by_source.get(storage._cdata)
        if out is None:
            out = _OutStorage(storage, tensor.dtype, getattr(torch, t.output_dtype), t.output_device, [])
            out.nbytes = storage.nbytes() // tensor.element_size() * out.dtype.itemsize
            by_source[storage._cdata] = out
        out.views.append(t)
    missing = set(by_path) - {t.source_path for t, _ in found}
    if missing:
        shown = ", ".join(sorted(str(by_path[p].source_key) for p in missing)[:5])
        raise ExportError(
            f"torch loaded the file differently from the static read (missing: {shown}); nothing "
            "was written.",
            None,
            "failed",
        )
    for t, tensor in found:
        out = by_source[tensor.untyped_storage()._cdata]
        if out.dtype == out.source_dtype:
            storages[tensor.untyped_storage()._cdata] = out
            continue
        if out.standin is None:
            out.standin = _untouched_storage(out.nbytes)
            storages[out.standin._cdata] = out
        view = torch.empty(0, dtype=out.dtype).set_(
            out.standin, tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride())
        )
        if isinstance(tensor, nn.Parameter):
            view = nn.Parameter(view, requires_grad=tensor.requires_grad)
        elif tensor.requires_grad:
            view.requires_grad_(True)
        replaced[t.source_path] = view


def _rebuild(
    item: Any,
    path: tuple[PathPart, ...],
    base: tuple[PathPart, ...],
    by_path: dict[tuple[PathPart, ...], MappedTensor],
    replaced: dict[tuple[PathPart, ...], torch.Tensor],
    fates: dict[tuple[PathPart, ...], ValueFate],
    memo: dict[int, Any],
    facts: _Facts,
) -> Any:
    """The object to write: the subtree, with tensors renamed / replaced and filtered values left out."""
    if len(path) < len(base):  # descend to the subtree first
        return _rebuild(_child(item, base[len(path)]), base, base, by_path, replaced, fates, memo, facts)
    if isinstance(item, torch.Tensor):
        if path not in by_path:
            return _DROP
        return replaced.get(path, item)
    fate = fates.get(path)
    if fate is not None:
        if fate.fate == "dropped":
            facts.dropped.append(f"{fate.source_key} ({fate.reason})")
            return _DROP
        facts.kept.append(fate.source_key)
        return item
    if id(item) in memo:
        return memo[id(item)]
    if isinstance(item, dict):
        out: Any = OrderedDict() if isinstance(item, OrderedDict) else {}
        memo[id(item)] = out
        for key, value in item.items():
            child_path = (*path, path_part(key))
            child = _rebuild(value, child_path, base, by_path, replaced, fates, memo, facts)
            if child is _DROP:
                continue
            mapped = by_path.get(child_path) if isinstance(value, torch.Tensor) else None
            new_key: Any = key
            if mapped is not None and mapped.output_path and mapped.output_path[-1] != child_path[-1]:
                new_key = mapped.output_path[-1]
            out[new_key] = child
        meta = getattr(item, "_metadata", None)
        if isinstance(meta, dict):
            with contextlib.suppress(AttributeError):
                out._metadata = meta
        return out
    if isinstance(item, list | tuple):
        items = []
        for i, value in enumerate(item):
            child = _rebuild(value, (*path, i), base, by_path, replaced, fates, memo, facts)
            items.append(None if child is _DROP else child)
        result: Any = items if isinstance(item, list) else tuple(items)
        memo[id(item)] = result
        return result
    return item


def _write_zip(
    temp: str, data_pkl: bytes, records: dict[str, _OutStorage], source: _Source, step: Callable[[int], None]
) -> None:
    writer = torch._C.PyTorchFileWriter(temp, True, 64)
    try:
        writer.write_record("data.pkl", data_pkl, len(data_pkl))
        writer.write_record(".format_version", b"1", 1)
        writer.write_record(".storage_alignment", b"64", 2)
        writer.write_record("byteorder", sys.byteorder.encode(), len(sys.byteorder))
        for key in list(records):
            out = records.pop(key)
            payload = _storage_bytes(out, source)
            _write_record(writer, f"data/{key}", payload, out.nbytes)
            del payload
            _release(out, source)
            step(out.nbytes)
        writer.write_end_of_file()
    finally:
        del writer


def _write_record(writer: Any, name: str, payload: torch.UntypedStorage, nbytes: int) -> None:
    """One storage record into the zip (a seam for tests that simulate a full disk)."""
    writer.write_record(name, payload, nbytes)


def _copy_range(out_fd: int, in_fd: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes of the source file from ``offset`` to the output's position (in the
    kernel, as ``shutil.copyfile`` does); a seam for tests that simulate a full disk."""
    while count > 0:
        sent = os.sendfile(out_fd, in_fd, offset, count)
        if sent == 0:
            raise OSError(errno.EIO, "the source file ended early")
        offset += sent
        count -= sent


def _record_offsets(path: str) -> dict[str, int]:
    """Storage key → offset of its bytes in a torch zip file (``data/<key>`` records)."""
    try:
        reader: Any = torch._C.PyTorchFileReader(path)
        return {
            name.rsplit("/", 1)[-1]: int(reader.get_record_offset(name))
            for name in reader.get_all_records()
            if name.startswith("data/")
        }
    except Exception:
        return {}  # then every tensor is written from the mapped memory instead


def _write_chunk(f: BinaryIO, data: Any) -> None:
    """Bytes into the legacy or safetensors stream (a seam for tests that simulate a full disk)."""
    view = memoryview(data).cast("B")
    while view:  # an unbuffered file may take a large write in parts
        written = f.write(view)
        view = view[written if written is not None else len(view) :]


def _storage_bytes(out: _OutStorage, source: _Source) -> torch.UntypedStorage:
    """The bytes of one output storage, converted if asked: a view of the source when possible."""
    if out.source is not None:
        if source.mapped:
            _populate(out.source)
        if out.dtype == out.source_dtype:
            return out.source
        numel = out.source.nbytes() // out.source_dtype.itemsize
        base = torch.empty(0, dtype=out.source_dtype).set_(out.source, 0, (numel,), (1,))
        return base.to(out.dtype).untyped_storage()
    t = out.views[0]
    tensor = _converted(source.tensor(t), t.output_dtype).contiguous()
    storage = tensor.untyped_storage()
    if storage.nbytes() != out.nbytes:
        storage = tensor.clone().untyped_storage()
    return storage


def _release(out: _OutStorage, source: _Source) -> None:
    if source.mapped and out.source is not None:
        _drop_pages(out.source)


def _write_legacy(
    temp: str, data_pkl: bytes, records: dict[str, _OutStorage], source: _Source, step: Callable[[int], None]
) -> None:
    with open(temp, "wb") as f:
        for header in (_LEGACY_MAGIC, _LEGACY_PROTOCOL,
                       {"protocol_version": _LEGACY_PROTOCOL, "little_endian": sys.byteorder == "little",
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):  # fmt: skip
            _write_chunk(f, pickle.dumps(header, protocol=2))
        _write_chunk(f, data_pkl)
        keys = sorted(records)
        _write_chunk(f, pickle.dumps(keys, protocol=2))
        for key in keys:
            out = records[key]
            payload = _storage_bytes(out, source)
            itemsize = out.dtype.itemsize
            _write_chunk(f, struct.pack("<q", out.nbytes // itemsize))
            if out.nbytes:
                array = torch.empty(0, dtype=torch.uint8).set_(payload, 0, (out.nbytes,), (1,))
                _write_chunk(f, array.numpy().data)
                del array
            del payload
            _release(out, source)
            step(out.nbytes)
        records.clear()


# -- safetensors ---------------------------------------------------------------------------------


def _write_safetensors(
    plan: ExportPlan, mapping: KeyMapping, source: _Source, temp: str, step: Callable[[int], None]
) -> _Facts:
    facts = _Facts()
    metadata = plan.effective_metadata()
    for alias, kept in mapping.aliases().items():
        metadata[alias] = kept
    base = mapping.subtree_path
    if source.safetensors is None:
        for fate in mapping.values:
            if fate.fate == "dropped":
                facts.dropped.append(f"{fate.source_key} ({fate.reason})")
                continue
            if fate.fate != "metadata":
                continue
            key = ".".join(str(p) for p in fate.source_path[len(base) :])
            value = source.obj
            for part in fate.source_path:
                value = _child(value, part)
            text = json_metadata_value(_plain(value))
            if text is None:
                facts.dropped.append(f"{fate.source_key} (not plain data)")
                continue
            metadata[key] = text
            facts.in_metadata.append(fate.source_key)
    else:
        # The source's own metadata (other than the user's entries) is carried over.
        for k, v in (source.safetensors.metadata() or {}).items():
            metadata.setdefault(str(k), str(v))
    facts.metadata = metadata
    stored = [t for t in mapping.tensors if t.alias_of is None]
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for t in stored:
        header[t.output_key] = {
            "dtype": SAFETENSORS_CODES[t.output_dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned
    facts.storages = len(stored)
    records = _record_offsets(plan.source) if source.mapped else {}
    with (
        open(temp, "wb", buffering=0) as f,
        open(plan.source if records else os.devnull, "rb", buffering=0) as src_file,
    ):
        _write_chunk(f, struct.pack("<Q", len(raw)))
        _write_chunk(f, raw)
        for t in stored:
            original = source.tensor(t)
            start = records.get(t.storage_key)
            if start is not None and not t.converted and original.is_contiguous() and t.nbytes:
                # Unconverted bytes already lie in the source file: let the kernel copy them.
                offset_in_file = start + int(original.storage_offset()) * original.element_size()
                _copy_range(f.fileno(), src_file.fileno(), offset_in_file, t.nbytes)
                del original
                step(t.nbytes)
                continue
            if source.mapped:
                _populate(original.untyped_storage())
            tensor = _converted(original, t.output_dtype)
            del original
            if t.nbytes:
                _write_chunk(f, _raw_bytes(tensor).numpy().data)
            storage = tensor.untyped_storage() if source.mapped and not t.converted else None
            del tensor
            if storage is not None:
                _drop_pages(storage)
            step(t.nbytes)
    return facts


def _plain(value: Any) -> Any:
    """A loaded value as JSON-able data: tuples as lists, int dict keys as they are (JSON makes str)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str | int | float | bool) or k is None else repr(k): _plain(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        raise TypeError("a tensor")
    return value


# -- verification --------------------------------------------------------------------------------


def _verify(plan: ExportPlan, mapping: KeyMapping, source: _Source, temp: str, facts: _Facts) -> None:
    """Re-open the written file with core's reader and with the writing library; compare all."""
    name = os.path.basename(plan.target)
    try:
        index = peek(temp)
    except CheckpointError as exc:
        raise _unverified(name, f"the project's reader cannot read it: {exc.message}") from None
    expected = {t.output_path: t for t in mapping.tensors}
    if plan.format == "safetensors":
        expected = {(t.output_key,): t for t in mapping.tensors if t.alias_of is None}
    seen = {n.path: n for n in index.root.tensors()}
    if set(seen) != set(expected):
        extra = sorted(str(p) for p in set(seen) - set(expected))[:3]
        lost = sorted(str(p) for p in set(expected) - set(seen))[:3]
        raise _unverified(name, f"its keys differ from the plan (unexpected {extra}, missing {lost})")
    for path, t in expected.items():
        info = seen[path].tensor
        assert info is not None
        if info.shape != t.shape or info.dtype != t.output_dtype:
            raise _unverified(name, f"{t.output_key} is {info.dtype}{list(info.shape)}, "
                                    f"not {t.output_dtype}{list(t.shape)}")  # fmt: skip
        if plan.format != "safetensors" and info.saved_device != t.output_device:
            raise _unverified(name, f"{t.output_key} is tagged {info.saved_device}, not {t.output_device}")
    if plan.format != "safetensors":
        for group in facts.groups:
            keys = {seen[t.output_path].tensor.storage_key for t in group}  # type: ignore[union-attr]
            if len(keys) != 1:
                raise _unverified(name, f"{', '.join(t.output_key for t in group)} no longer share storage")
        _verify_torch_values(plan, mapping, source, temp, name)
    else:
        _verify_safetensors_values(mapping, source, temp, name, facts)


def _unverified(name: str, why: str) -> ExportError:
    return ExportError(f"The written “{name}” did not verify: {why}; it was not kept.", why, "verify-failed")


def _same_values(out: torch.Tensor, expected: torch.Tensor) -> bool:
    """Bit-for-bit equality after the conversion (torch.equal on the raw bytes: NaN equals NaN)."""
    if out.dtype != expected.dtype or tuple(out.shape) != tuple(expected.shape):
        return False
    a, b = _raw_bytes(out), _raw_bytes(expected)
    for wide in (torch.int64, torch.int32, torch.int16):
        if (
            a.numel() % wide.itemsize == 0
            and a.data_ptr() % wide.itemsize == 0 == b.data_ptr() % wide.itemsize
        ):
            return torch.equal(a.view(wide), b.view(wide))  # same bits, 4-8x fewer comparisons
    return torch.equal(a, b)


def _verify_torch_values(
    plan: ExportPlan, mapping: KeyMapping, source: _Source, temp: str, name: str
) -> None:
    mmap = plan.format == "pth"
    try:
        written = _torch_load(temp, plan, mmap)  # trusted source: its rewrite is read the same way
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _unverified(name, f"torch.load cannot read it: {first}") from None
    found = dict(_walk(written))
    for t in mapping.tensors:
        out = found.get(t.output_path)
        if out is None:
            raise _unverified(name, f"torch does not find {t.output_key or 'the tensor'}")
        src = source.tensor(t)
        ok = _same_values(out, _converted(src, t.output_dtype))
        if ok and src.requires_grad != out.requires_grad:
            ok = False
        if ok and isinstance(src, nn.Parameter) != isinstance(out, nn.Parameter):
            ok = False
        if mmap:
            _drop_pages(out.untyped_storage())
        if source.mapped:
            _drop_pages(src.untyped_storage())
        if not ok:
            raise _unverified(name, f"the values of {t.output_key or 'the tensor'} differ from the source")


def _verify_safetensors_values(
    mapping: KeyMapping, source: _Source, temp: str, name: str, facts: _Facts
) -> None:
    """Keys, metadata, dtypes and shapes through ``safe_open``; values through a private mapping of
    the file (safe_open maps the whole file for as long as it is open, which would keep every page
    resident), compared bit for bit with the converted source."""
    from safetensors import safe_open

    try:
        with safe_open(temp, framework="pt") as f:
            keys = set(f.keys())
            want = {t.output_key for t in mapping.tensors if t.alias_of is None}
            if keys != want:
                raise _unverified(name, "safetensors lists other keys than the plan")
            if (f.metadata() or {}) != facts.metadata:
                raise _unverified(name, "its metadata differs from what was written")
            for t in mapping.tensors:
                if t.alias_of is None:
                    part = f.get_slice(t.output_key)
                    if (
                        tuple(part.get_shape()) != t.shape
                        or part.get_dtype() != SAFETENSORS_CODES[t.output_dtype]
                    ):
                        raise _unverified(
                            name, f"safetensors reads {t.output_key} with another shape or dtype"
                        )
    except ExportError:
        raise
    except Exception as exc:
        raise _unverified(name, f"safetensors cannot read it: {exc}") from None
    size = os.path.getsize(temp)
    with open(temp, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(header_len))
    data_start = 8 + header_len
    mapped = cast(torch.UntypedStorage, torch.UntypedStorage.from_file(temp, shared=False, nbytes=size))
    for t in mapping.tensors:
        if t.alias_of is not None or not t.nbytes:
            continue
        begin, end = header[t.output_key]["data_offsets"]
        written = torch.empty(0, dtype=torch.uint8).set_(mapped, data_start + begin, (end - begin,), (1,))
        src = source.tensor(t)
        expected = _raw_bytes(_converted(src, t.output_dtype))
        ok = _same_values(written, expected)
        del written, expected
        _drop_pages_range(mapped, data_start + begin, end - begin)
        if source.mapped:
            _drop_pages(src.untyped_storage())
        if not ok:
            raise _unverified(name, f"the values of {t.output_key} differ from the source")


# -- finishing -----------------------------------------------------------------------------------


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _report(plan: ExportPlan, mapping: KeyMapping, facts: _Facts, seconds: float) -> ExportReport:
    return ExportReport(
        target=plan.target,
        format=plan.format,
        tensors=len(mapping.tensors),
        storages=facts.storages,
        bytes=os.path.getsize(plan.target),
        seconds=seconds,
        verified=True,
        aliases=mapping.aliases() if plan.format == "safetensors" else {},
        cloned=mapping.cloned() if plan.format == "safetensors" else {},
        values_kept=facts.kept,
        values_in_metadata=facts.in_metadata,
        values_dropped=facts.dropped,
    )
