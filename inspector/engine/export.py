"""Carrying out an ``ExportPlan``: stream tensor by tensor into a temporary file, verify, rename.

Sources (``export_plan.source_read`` decides): a safetensors target is written from the engine's
one tensor source (``sources.open_source``) whatever the layout (torch zip, legacy, TorchScript,
safetensors, HF shard set, DCP), so no pickle of the file is run and nothing needs allowing or
trusting; its other values come from the static tree. A torch-format copy of a torch file is
written from ``torch.load(weights_only=True, mmap=True)`` with the allowed globals, or trusted
(the legacy format cannot be mapped, so torch reads it whole), because only the loaded object keeps
what a torch file holds beside raw tensors (shared storages, parameters, non-tensor values).
Nothing is materialised as a whole: torch formats are written by our own
pickler (torch's tensor reducers, our storage records, whose location tags are the target devices)
and torch's own zip writer (``PyTorchFileWriter``) or the legacy stream layout, one storage at a
time; a view is written as its storage, as ``torch.save`` does. safetensors files are written
header first, then each tensor's bytes, a strided view block by block. Pages of the mapped source
are handed back to the kernel after each storage, so the resident size stays near the largest
tensor. Temporary paths, fsync, the rename and free space are ``file_safety``'s.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import pickle
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
    SourceRead,
    ValueFate,
    map_keys,
    source_read,
)
from inspector.core.formatting import escape_text
from inspector.core.model import CheckpointIndex, PathPart, path_part
from inspector.core.peek import peek
from inspector.core.storage_layout import StorageLayout, storage_layout

from .devices import visible_devices
from .direct_read import TensorSource
from .export_results import CancelCheck as CancelCheck
from .export_results import ExportCancelled as ExportCancelled
from .export_results import ExportError as ExportError
from .export_results import ExportReport as ExportReport
from .export_results import ProgressCallback as ProgressCallback
from .file_safety import (
    check_free_space,
    disk_full,
    fsync_path,
    looks_like_disk_full,
    move_into_place,
    remove_partial,
    temp_beside,
    write_error,
)
from .stats import blocks

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MADV_DONTNEED = 4
_MADV_POPULATE_READ = 22  # Linux 5.14+; older kernels answer EINVAL and pages fault in as usual


# -- entry point ---------------------------------------------------------------------------------


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

        return export_shard_set(plan, _FileExport(), progress, cancel, devices)
    started = time.perf_counter()
    _check_paths(plan)
    index = read_source_index(plan)
    mapping = checked_mapping(index, plan, devices)
    check_free_space(plan.target, mapping.estimated_bytes)
    temp_beside(plan.temp_path, plan.target)
    try:
        source_cm = open_export_source(plan, index)
        with source_cm as source:
            report = write_verified(plan, mapping, source, progress, cancel)
    except ExportError:
        raise
    except BaseException as exc:
        raise _export_failure(plan, mapping.estimated_bytes, exc) from None
    report.seconds = time.perf_counter() - started
    return report


class _FileExport:
    """The single-file steps a shard-set export runs once per shard (``export_sharded.FileExport``)."""

    def read_source_index(self, plan: ExportPlan) -> CheckpointIndex:
        return read_source_index(plan)

    def checked_mapping(
        self, index: CheckpointIndex, plan: ExportPlan, devices: list[str] | None
    ) -> KeyMapping:
        return checked_mapping(index, plan, devices)

    def open_source(self, plan: ExportPlan, index: CheckpointIndex) -> contextlib.AbstractContextManager[Any]:
        return open_export_source(plan, index)

    def write_verified(
        self, plan: ExportPlan, mapping: KeyMapping, source: Any,
        progress: ProgressCallback | None, cancel: CancelCheck | None,
    ) -> ExportReport:  # fmt: skip
        return write_verified(plan, mapping, source, progress, cancel)


def read_source_index(plan: ExportPlan) -> CheckpointIndex:
    """The static read of the plan's source; a source that cannot be read refuses the export, and
    one that ``torch.load`` would open is judged by the safety policy first."""
    try:
        index = peek(plan.source)
    except CheckpointError as exc:
        raise ExportError(exc.message, exc.details, "refused") from None
    if source_read(index.format, plan.format) is SourceRead.TORCH_LOAD:
        _check_safety(plan, index)
    return index


def checked_mapping(index: CheckpointIndex, plan: ExportPlan, devices: list[str] | None) -> KeyMapping:
    """The plan mapped onto the source's tensors; refused when it has problems or names absent devices."""
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
    return mapping


def write_verified(
    plan: ExportPlan,
    mapping: KeyMapping,
    source: _Source,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ExportReport:
    """Write one file from an open source into ``plan.temp_path``, verify it, rename it into place.

    Whatever fails, the temporary file is removed and the target is left as it was.
    """
    temp = temp_beside(plan.temp_path, plan.target)
    done = [0]
    total = max(1, mapping.estimated_bytes)

    def step(nbytes: int) -> None:
        if cancel is not None and cancel():
            raise ExportCancelled()
        done[0] += nbytes
        if progress is not None:
            progress(min(done[0], total), total)

    try:
        step(0)
        if plan.format == "safetensors":
            facts = _write_safetensors(plan, mapping, source, temp, step)
        else:
            facts = _write_torch(plan, mapping, source, temp, step)
        fsync_path(temp)
        _verify(plan, mapping, source, temp, facts, lambda: step(0))
        step(0)
        move_into_place(temp, plan.target)
    except BaseException as exc:
        remove_partial(temp)
        if isinstance(exc, ExportError):
            raise
        raise _export_failure(plan, mapping.estimated_bytes, exc) from None
    if progress is not None:
        progress(total, total)
    return _report(plan, mapping, facts, 0.0)


def _export_failure(plan: ExportPlan, estimate: int, exc: BaseException) -> BaseException:
    """What an unexpected failure while exporting says to the user (KeyboardInterrupt stays itself)."""
    if isinstance(exc, ExportError):
        return exc
    if isinstance(exc, OSError):
        return write_error(plan.target, exc)
    if isinstance(exc, RuntimeError) and looks_like_disk_full(plan.target, exc):
        return disk_full(plan.target, estimate, str(exc))
    if isinstance(exc, CheckpointError):
        return ExportError(exc.message, exc.details, "failed")
    if isinstance(exc, Exception):
        src_name = f"“{os.path.basename(plan.source) or plan.source}”"
        return ExportError(f"Exporting {src_name} failed: {type(exc).__name__}: {exc}", repr(exc), "failed")
    return exc


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


# -- the source ----------------------------------------------------------------------------------


@dataclass
class _Source:
    """The open source: the loaded object (``torch.load``) or a direct tensor source."""

    obj: Any
    mapped: bool  # storages are slices of a private file mapping of an mmap load (pages may be dropped)
    direct: TensorSource | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # a safetensors source's own metadata
    records: StorageLayout | None = None  # where the source file's storage records lie
    #: What the loaded object needed allowed: the objects, each under the names the file used.
    allowed: list[Any] = field(default_factory=list)

    def tensor(self, t: MappedTensor) -> torch.Tensor:
        if self.direct is not None:
            return self.direct.tensor(self.direct.find(path=t.source_path))
        item = self.obj
        for part in t.source_path:
            item = _child(item, part)
        assert isinstance(item, torch.Tensor)
        return item

    def file_range(self, t: MappedTensor) -> tuple[str, int] | None:
        """(file, byte) where ``t``'s storage record starts, when its bytes lie in a source file as is."""
        if self.direct is not None:
            node = self.direct.find(path=t.source_path)
            return self.direct.file_range(node.tensor) if node.tensor is not None else None
        if self.records is None or not t.storage_key:
            return None
        try:
            return self.records.path, self.records.span(t.storage_key).offset
        except CheckpointError:
            return None

    def done_with(self, t: MappedTensor, tensor: torch.Tensor | None) -> None:
        """Hand the pages a tensor's read touched back to the kernel."""
        if self.direct is not None:
            with contextlib.suppress(CheckpointError):
                self.direct.release(self.direct.find(path=t.source_path))
        elif self.mapped and tensor is not None:
            _drop_pages(tensor.untyped_storage())


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
def open_export_source(plan: ExportPlan, index: CheckpointIndex) -> Iterator[_Source]:
    """The source of an export, open once for every file written from it: read as
    ``export_plan.source_read`` says."""
    if source_read(index.format, plan.format) is not SourceRead.TORCH_LOAD:
        from .sources import open_source

        try:
            direct = open_source(plan.source, index)
        except CheckpointError as exc:
            raise ExportError(exc.message, exc.details, "failed") from None
        try:
            metadata = _safetensors_metadata(plan.source) if index.format.string_metadata else {}
            yield _Source(None, False, direct, metadata)
        finally:
            direct.close()
        return
    mmap = index.format.mmap
    allowed = [] if plan.trusted else _allowed_objects(plan.source, plan.allowed_globals)
    obj = _torch_load(plan.source, plan, mmap, allowed, [g.qualname for g in index.globals])
    try:
        records: StorageLayout | None = storage_layout(plan.source, index)
    except CheckpointError:
        records = None
    try:
        yield _Source(obj, mmap, records=records, allowed=allowed)
    finally:
        if records is not None:
            records.close()


def _safetensors_metadata(path: str) -> dict[str, str]:
    """A safetensors file's own ``__metadata__`` (carried over into a safetensors export)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


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


def _torch_load(path: str, plan: ExportPlan, mmap: bool, allowed: list[Any], needed: list[str]) -> Any:
    """``torch.load`` of ``path`` on the cpu: weights-only allowing ``allowed`` (objects paired with
    names, as the loader resolves them) and what torch's own modules add for ``needed``, or
    trusted when the plan says so."""
    from inspector.core.load_options import LoadOptions
    from inspector.engine.loader import LoadError, classify_error, import_torch_allowances

    with open(path, "rb") as f:
        head = f.read(16)
    try:
        if not plan.trusted:
            import_torch_allowances(needed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=not plan.trusted, mmap=mmap)
    except Exception as exc:
        options = LoadOptions(map_location="cpu", allowed_globals=plan.allowed_globals)
        error: LoadError = classify_error(path, options, exc, head)
        raise ExportError(error.message, error.details, "failed") from None


def _allowed_objects(path: str, allowed: tuple[str, ...]) -> list[Any]:
    """The loader's own allowlist resolution: each name is judged on the object it resolves to."""
    from inspector.engine.loader import LoadError, resolve_allowed_globals

    try:
        return resolve_allowed_globals(os.path.basename(path), allowed)
    except LoadError as exc:  # a global that may never be allowed, or cannot be found
        raise ExportError(
            exc.message, exc.details, "unsafe" if exc.kind == "refused-global" else "refused"
        ) from None


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

    if source.direct is not None:
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
    elif source.direct is not None:
        for t in out.views:
            source.done_with(t, None)


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
    for fate in mapping.values:  # plain values as the static tree shows them (map_keys decided)
        if fate.fate == "dropped":
            facts.dropped.append(f"{fate.source_key} ({fate.reason})")
        elif fate.fate == "metadata":
            metadata[".".join(str(p) for p in fate.source_path[len(base) :])] = fate.text
            facts.in_metadata.append(fate.source_key)
    # The source's own metadata (other than the user's entries) is carried over.
    for k, v in source.metadata.items():
        metadata.setdefault(k, v)
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
    files: dict[str, BinaryIO] = {}
    try:
        with open(temp, "wb", buffering=0) as f:
            _write_chunk(f, struct.pack("<Q", len(raw)))
            _write_chunk(f, raw)
            for t in stored:
                original = source.tensor(t)
                where = source.file_range(t) if not t.converted and t.nbytes else None
                if where is not None and original.is_contiguous():
                    # Unconverted bytes already lie in a source file: let the kernel copy them.
                    path, start = where
                    src_file = files.get(path)
                    if src_file is None:
                        src_file = files[path] = open(path, "rb", buffering=0)  # noqa: SIM115
                    offset_in_file = start + int(original.storage_offset()) * original.element_size()
                    _copy_range(f.fileno(), src_file.fileno(), offset_in_file, t.nbytes)
                    del original
                    source.done_with(t, None)
                    step(t.nbytes)
                    continue
                if source.mapped:
                    _populate(original.untyped_storage())
                if t.nbytes:
                    for block in _output_blocks(original, t.output_dtype):
                        _write_chunk(f, block.numpy().data)
                source.done_with(t, original)
                del original
                step(t.nbytes)
    finally:
        for opened in files.values():
            opened.close()
    return facts


def _output_blocks(t: torch.Tensor, dtype: str) -> Iterator[torch.Tensor]:
    """The bytes of ``t`` converted to ``dtype`` in logical order, as contiguous uint8 blocks.

    A contiguous tensor is one block (no copy unless converted); a strided view (a transposed or
    expanded one) is walked in bounded blocks, so its logical size never has to fit in memory.
    """
    if t.is_contiguous():
        yield _raw_bytes(_converted(t, dtype))
        return
    for index in blocks(tuple(t.shape)):
        yield _raw_bytes(_converted(t[index], dtype))


# -- verification --------------------------------------------------------------------------------


def _verify(
    plan: ExportPlan, mapping: KeyMapping, source: _Source, temp: str, facts: _Facts,
    check: Callable[[], None],
) -> None:  # fmt: skip
    """Re-open the written file with core's reader and with the writing library; compare all
    (``check()`` runs before each tensor's values: a cancel stops there)."""
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
        _verify_torch_values(plan, mapping, source, temp, name, index, check)
    else:
        _verify_safetensors_values(mapping, source, temp, name, facts, check)


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


def _same_view_values(out: torch.Tensor, src: torch.Tensor, dtype: str) -> bool:
    """``out`` equals ``src`` converted to ``dtype``; a view that repeats its storage's elements
    (stride 0, overlapping strides) is compared over the storage it reaches, never expanded."""
    if tuple(out.shape) != tuple(src.shape):
        return False
    if out.stride() == src.stride() and out.storage_offset() == src.storage_offset() and src.numel():
        reach = sum((n - 1) * st for n, st in zip(src.shape, src.stride(), strict=True)) + 1
        if reach < src.numel():
            return _same_values(_reached(out, reach), _converted(_reached(src, reach), dtype))
    return _same_values(out, _converted(src, dtype))


def _reached(t: torch.Tensor, reach: int) -> torch.Tensor:
    """The ``reach`` storage elements a view spans, from its offset, as a 1-D tensor."""
    return torch.empty(0, dtype=t.dtype).set_(t.untyped_storage(), t.storage_offset(), (reach,), (1,))


def _rewritten_allowances(source: _Source, written: CheckpointIndex, name: str) -> list[Any]:
    """The objects the source needed allowed, under the names the written file uses for them
    (the pickler writes each under its own name: numpy 1's ``numpy.core.multiarray._reconstruct``
    becomes numpy 2's ``numpy._core.multiarray._reconstruct``); a name the written file needs
    beyond those makes it fail verification, as nothing else was allowed."""
    from inspector.core.safety import real_name

    allowed = list(source.allowed)
    by_name: dict[str, Any] = {}
    for item in source.allowed:
        obj, as_named = item if isinstance(item, tuple) else (item, real_name(item))
        by_name[as_named] = obj
        by_name.setdefault(real_name(obj) or as_named, obj)
    for g in dict.fromkeys(g.qualname for g in written.unsafe_globals):
        if g not in by_name:
            raise _unverified(name, f"it needs {escape_text(g)}, which the source did not need allowed")
        allowed.append((by_name[g], g))
    return allowed


def _verify_torch_values(
    plan: ExportPlan,
    mapping: KeyMapping,
    source: _Source,
    temp: str,
    name: str,
    index: CheckpointIndex,
    check: Callable[[], None],
) -> None:
    mmap = plan.format == "pth"
    # A trusted source's rewrite is read the same way; otherwise only what the source needed.
    allowed = [] if plan.trusted else _rewritten_allowances(source, index, name)
    try:
        written = _torch_load(temp, plan, mmap, allowed, [g.qualname for g in index.globals])
    except CheckpointError as exc:
        raise _unverified(name, f"torch.load cannot read it ({exc.message})") from None
    found = dict(_walk(written))
    for t in mapping.tensors:
        check()
        out = found.get(t.output_path)
        if out is None:
            raise _unverified(name, f"torch does not find {t.output_key or 'the tensor'}")
        src = source.tensor(t)
        ok = _same_view_values(out, src, t.output_dtype)
        if ok and src.requires_grad != out.requires_grad:
            ok = False
        if ok and isinstance(src, nn.Parameter) != isinstance(out, nn.Parameter):
            ok = False
        if mmap:
            _drop_pages(out.untyped_storage())
        source.done_with(t, src)
        if not ok:
            raise _unverified(name, f"the values of {t.output_key or 'the tensor'} differ from the source")


def _verify_safetensors_values(
    mapping: KeyMapping, source: _Source, temp: str, name: str, facts: _Facts, check: Callable[[], None]
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
        check()
        begin, end = header[t.output_key]["data_offsets"]
        written = torch.empty(0, dtype=torch.uint8).set_(mapped, data_start + begin, (end - begin,), (1,))
        src = source.tensor(t)
        ok, pos = True, 0
        for expected in _output_blocks(src, t.output_dtype):
            n = expected.numel()
            if not _same_values(written[pos : pos + n], expected):
                ok = False
                break
            pos += n
        ok = ok and pos == end - begin
        del written
        _drop_pages_range(mapped, data_start + begin, end - begin)
        source.done_with(t, src)
        if not ok:
            raise _unverified(name, f"the values of {t.output_key} differ from the source")


# -- finishing -----------------------------------------------------------------------------------


def _report(plan: ExportPlan, mapping: KeyMapping, facts: _Facts, seconds: float) -> ExportReport:
    return ExportReport(
        target=plan.target,
        format=plan.format,
        tensors=len(mapping.tensors),
        storages=facts.storages,
        bytes=os.path.getsize(plan.target),
        seconds=seconds,
        aliases=mapping.aliases() if plan.format == "safetensors" else {},
        cloned=mapping.cloned() if plan.format == "safetensors" else {},
        values_kept=facts.kept,
        values_in_metadata=facts.in_metadata,
        values_dropped=facts.dropped,
        notes=list(mapping.notes),
    )
