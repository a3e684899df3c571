"""Writing a torch-format file (``pth`` zip or ``pth-legacy`` stream) from an open export source.

Nothing is materialised as a whole: the object to write is the source's (renamed, filtered, a
subtree) pickled by our own pickler with torch's tensor reducers and our storage records, whose
location tags are the target devices; the records follow one storage at a time, through torch's own
zip writer (``PyTorchFileWriter``) or the legacy stream layout. A view is written as its storage,
as ``torch.save`` does; a converted storage is pickled as an untouched stand-in of the new dtype.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from inspector.core.export_plan import ExportPlan, KeyMapping, MappedTensor, ValueFate
from inspector.core.model import PathPart, path_part
from inspector.core.torch_legacy import LEGACY_MAGIC, LEGACY_PROTOCOL

from .export_results import ExportError, WrittenFacts
from .export_source import ExportSource, child_at, tensors_of
from .file_safety import write_all
from .storage_pages import drop_pages, populate
from .tensor_bytes import converted

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


def write_torch(
    plan: ExportPlan, mapping: KeyMapping, source: ExportSource, temp: str, step: Callable[[int], None]
) -> WrittenFacts:
    """Write ``mapping``'s tensors and kept values from ``source`` into ``temp`` as the plan's torch
    format; ``step(n)`` after each storage of ``n`` bytes."""
    facts = WrittenFacts()
    by_path = mapping.by_source_path()
    storages: dict[int, _OutStorage] = {}  # by the pickled storage's _cdata
    replaced: dict[tuple[PathPart, ...], torch.Tensor] = {}

    if source.direct is not None:
        for t in mapping.tensors:
            replaced[t.source_path] = _standin_for_direct(t, storages)
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
                # torch leaves these private methods of TypedStorage (torch.save's own calls) unannotated
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


def _standin_for_direct(t: MappedTensor, storages: dict[int, _OutStorage]) -> torch.Tensor:
    """A tensor read directly (not loaded) is pickled as a stand-in; its bytes come from the source."""
    dtype = getattr(torch, t.output_dtype)
    nbytes = t.nbytes
    standin = _untouched_storage(nbytes)
    tensor = torch.empty(0, dtype=dtype).set_(standin, 0, t.shape, _contiguous_stride(t.shape))
    storages[standin._cdata] = _OutStorage(None, getattr(torch, t.dtype), dtype, t.output_device,
                                           [t], standin, nbytes)  # fmt: skip
    return tensor


def _untouched_storage(nbytes: int) -> torch.UntypedStorage:
    """Storage that is pickled in place of a converted one: allocated, never written, so it costs
    address space but no resident memory."""
    # torch declares UntypedStorage's constructor without annotations
    storage: torch.UntypedStorage = torch.UntypedStorage(nbytes)  # type: ignore[no-untyped-call]
    return storage


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride: list[int] = []
    acc = 1
    for s in reversed(shape):
        stride.insert(0, acc)
        acc *= max(1, s)
    return tuple(stride)


def _plan_storages(
    obj: Any,
    by_path: dict[tuple[PathPart, ...], MappedTensor],
    storages: dict[int, _OutStorage],
    replaced: dict[tuple[PathPart, ...], torch.Tensor],
) -> None:
    """Group the exported tensors by source storage; converted storages get one stand-in each."""
    by_source: dict[int, _OutStorage] = {}
    found: list[tuple[MappedTensor, torch.Tensor]] = []
    for path, tensor in tensors_of(obj):
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
    facts: WrittenFacts,
) -> Any:
    """The object to write: the subtree, with tensors renamed / replaced and filtered values left out."""
    if len(path) < len(base):  # descend to the subtree first
        return _rebuild(child_at(item, base[len(path)]), base, base, by_path, replaced, fates, memo, facts)
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
    temp: str, data_pkl: bytes, records: dict[str, _OutStorage], source: ExportSource,
    step: Callable[[int], None],
) -> None:  # fmt: skip
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
    """One storage record into the zip (where a test simulates a full disk or a crash)."""
    writer.write_record(name, payload, nbytes)


def _write_legacy(
    temp: str, data_pkl: bytes, records: dict[str, _OutStorage], source: ExportSource,
    step: Callable[[int], None],
) -> None:  # fmt: skip
    with open(temp, "wb") as f:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL,
                       {"protocol_version": LEGACY_PROTOCOL, "little_endian": sys.byteorder == "little",
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):  # fmt: skip
            write_all(f, pickle.dumps(header, protocol=2))
        write_all(f, data_pkl)
        keys = sorted(records)
        write_all(f, pickle.dumps(keys, protocol=2))
        for key in keys:
            out = records[key]
            payload = _storage_bytes(out, source)
            itemsize = out.dtype.itemsize
            write_all(f, struct.pack("<q", out.nbytes // itemsize))
            if out.nbytes:
                array = torch.empty(0, dtype=torch.uint8).set_(payload, 0, (out.nbytes,), (1,))
                write_all(f, array.numpy().data)
                del array
            del payload
            _release(out, source)
            step(out.nbytes)
        records.clear()


def _storage_bytes(out: _OutStorage, source: ExportSource) -> torch.UntypedStorage:
    """The bytes of one output storage, converted if asked: a view of the source when possible."""
    if out.source is not None:
        if source.mapped:
            populate(out.source)
        if out.dtype == out.source_dtype:
            return out.source
        numel = out.source.nbytes() // out.source_dtype.itemsize
        base = torch.empty(0, dtype=out.source_dtype).set_(out.source, 0, (numel,), (1,))
        return base.to(out.dtype).untyped_storage()
    t = out.views[0]
    tensor = converted(source.tensor(t), t.output_dtype).contiguous()
    storage = tensor.untyped_storage()
    if storage.nbytes() != out.nbytes:
        storage = tensor.clone().untyped_storage()
    return storage


def _release(out: _OutStorage, source: ExportSource) -> None:
    if source.mapped and out.source is not None:
        drop_pages(out.source)
    elif source.direct is not None:
        for t in out.views:
            source.done_with(t, None)
