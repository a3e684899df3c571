"""The ``info`` report: the JSON object of the command-line contract, and its readable text form."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .collector import collector_paused
from .formatting import count_of, escape_text, format_bytes, format_params, format_shape
from .model import CheckpointIndex, GlobalRef, Node, NodeKind, PathPart, TensorInfo
from .model_card import ModelCard, card_lines
from .optimizer_map import count_model

DevicesByPath = Mapping[tuple[PathPart, ...], str]


_MAX_OCCURRENCES = 20


def globals_json(refs: list[GlobalRef]) -> list[dict[str, Any]]:
    """One entry per distinct global: where it first occurs, how often, and its first occurrences."""
    seen: dict[str, dict[str, Any]] = {}
    for g in refs:
        entry = seen.get(g.qualname)
        if entry is None:
            entry = seen[g.qualname] = {
                "name": g.qualname,
                "module": g.module,
                "attribute": g.name,
                "written": g.as_written,  # as the file writes it (``__builtin__.long`` for builtins.int)
                "verdict": g.verdict.value,
                "pickle": g.pickle,
                "offset": g.offset,
                "count": 0,
                "occurrences": [],
            }
        entry["count"] += 1
        if len(entry["occurrences"]) < _MAX_OCCURRENCES:
            entry["occurrences"].append({"pickle": g.pickle, "offset": g.offset})
    return list(seen.values())


def index_to_json(
    index: CheckpointIndex, devices: DevicesByPath | None = None, card: ModelCard | None = None
) -> dict[str, Any]:
    """The object ``info --json`` prints (its fields: README, "``info --json``"); ``model_card``
    when the card is given. The collector is paused meanwhile: a record per tensor, all kept."""
    with collector_paused():
        return _index_json(index, devices, card)


def _index_json(
    index: CheckpointIndex, devices: DevicesByPath | None, card: ModelCard | None
) -> dict[str, Any]:
    tensors = []
    for node in index.tensor_rows():  # the rows the read listed, in display order
        t = node.tensor
        assert t is not None
        numel = t.numel
        plain = t.layout_info is None  # a strided tensor: its shape and its elements' bytes
        entry: dict[str, Any] = {
            "key": node.key,
            "path": list(node.path),
            "shape": list(t.shape if plain else t.shown_shape),
            "dtype": t.dtype,
            "saved_device": t.saved_device,
            "numel": numel,
            "nbytes": numel * t.itemsize if plain else t.nbytes,
        }
        if t.layout != "strided":
            entry["layout"] = t.layout
            entry.update(_layout_json(t))
        if t.shard:
            entry["shard"] = t.shard
        if t.chunks:
            entry["chunks"] = [
                {"file": c.file, "offsets": list(c.offsets), "sizes": list(c.sizes),
                 "byte_offset": c.byte_offset, "byte_length": c.byte_length}
                for c in t.chunks
            ]  # fmt: skip
        if devices is not None:
            entry["device"] = devices.get(node.path)
        tensors.append(entry)
    globals_ = globals_json(index.globals)
    model = count_model(index)
    return {
        "path": index.path,
        "format": index.format,
        "file_size": index.file_size,
        "tensors": tensors,
        "globals": globals_,
        "unsafe_globals": [g["name"] for g in globals_ if g["verdict"] != "allowed"],
        "total_params": index.total_params,
        "model_params": model.params if model is not None else None,
        "model_key": model.part.key if model is not None else None,
        "total_bytes": index.total_bytes,
        "warnings": index.warnings,
        "differentials": index.differentials,
        "unread": index.unread,
        **({"model_card": card.to_json()} if card is not None else {}),
    }


def _layout_json(t: TensorInfo) -> dict[str, Any]:
    """What a sparse, nested or quantized tensor adds: nnz, components, quantization."""
    info = t.layout_info
    if info is None:
        return {}
    out: dict[str, Any] = {}
    if info.nnz is not None:
        out["nnz"] = info.nnz
    if info.components is not None:
        out["components"] = info.components
    q = info.quantization
    if q is not None:
        scale = q.scale if q.scale is None or math.isfinite(q.scale) else repr(q.scale)  # "nan", "inf"
        out["quantization"] = {"scheme": q.scheme, "scale": scale, "zero_point": q.zero_point, "axis": q.axis}
    return out


def params_text(index: CheckpointIndex) -> str:
    """The model's parameters and, where they differ, every tensor's: "23.0K model params · 69.1K in
    all tensors"; "69.1K params in all tensors" when no part of the file is known to be the model."""
    total = format_params(index.total_params)
    model = count_model(index)
    if model is None:
        return f"{total} params in all tensors"
    if model.params == index.total_params:
        return f"{total} params"
    return f"{format_params(model.params)} model params · {total} in all tensors"


def summary_line(index: CheckpointIndex) -> str:
    """Format, tensors, params, size, dtype mix and saved devices, on one line."""
    dtypes = ", ".join(f"{d} ×{n:,}" for d, n in index.dtype_mix().items()) or "no tensors"
    devices = ", ".join(f"{escape_text(d)} ×{n:,}" for d, n in index.saved_devices().items()) or "—"
    return (
        f"{index.format} · {count_of(index.tensor_count, 'tensor')} · {params_text(index)} · "
        f"{format_bytes(index.total_bytes)} · dtypes: {dtypes} · saved on: {devices}"
    )


def _row(node: Node, devices: DevicesByPath | None) -> str:
    name = escape_text(node.name)
    if node.kind is NodeKind.TENSOR and node.tensor is not None:
        t = node.tensor
        cols = [name, format_shape(t.shown_shape), t.dtype]
        if t.layout != "strided":
            cols.append(escape_text(t.layout_info.describe(t.layout) if t.layout_info else t.layout))
        cols.append(f"saved on {escape_text(t.saved_device)}")
        if devices is not None:
            cols.append(f"loaded on {devices.get(node.path, '?')}")
        cols += [f"{t.numel:,}", format_bytes(t.nbytes)]
        return "  ".join(cols)
    if node.kind is NodeKind.VALUE:
        return f"{name} = {escape_text(node.value or '')}"
    if node.kind is NodeKind.REF:
        return f"{name} → same as {escape_text(node.value or '')}"
    label = name + (f" ({escape_text(node.value)})" if node.value else "")
    if node.kind in (NodeKind.DICT, NodeKind.LIST):
        label += f"  {count_of(node.entries, 'item')}"
    if node.params or node.nbytes:
        return f"{label}  {count_of(node.params, 'param')}  {format_bytes(node.nbytes)}"
    return label


def render_text(
    index: CheckpointIndex, devices: DevicesByPath | None = None, card: ModelCard | None = None
) -> str:
    """The indented tree ``info`` prints without ``--json``; strings from the file are escaped."""
    return "\n".join(escape_text(line) for line in render_lines(index, devices, card))


def render_lines(
    index: CheckpointIndex, devices: DevicesByPath | None = None, card: ModelCard | None = None
) -> list[str]:
    """The lines of ``render_text``, each holding the file's raw strings (a key may hold a line break);
    the model card, when given, between the summary and the tree."""
    lines = [index.path, summary_line(index)]
    if card is not None:
        lines += card_lines(card)
    stack: list[tuple[Node, int]] = [(c, 0) for c in reversed(index.root.children)]
    while stack:
        node, depth = stack.pop()
        lines.append("  " * (depth + 1) + _row(node, devices))
        stack.extend((c, depth + 1) for c in reversed(node.children))
    unsafe = index.unsafe_globals
    if unsafe:
        names = sorted({escape_text(g.qualname) + f" ({g.verdict.value})" for g in unsafe})
        lines.append("globals outside weights-only: " + ", ".join(names))
    for w in index.warnings:
        lines.append(f"warning: {w}")
    return lines
