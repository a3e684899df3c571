"""The ``info`` report: the JSON object of the command-line contract, and its readable text form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .formatting import format_bytes, format_count, format_params, format_shape
from .model import CheckpointIndex, GlobalRef, Node, NodeKind, PathPart

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


def index_to_json(index: CheckpointIndex, devices: DevicesByPath | None = None) -> dict[str, Any]:
    """The object ``info --json`` prints (DESIGN.md, "The command line")."""
    tensors = []
    for node in index.root.tensors():
        t = node.tensor
        assert t is not None
        entry: dict[str, Any] = {
            "key": node.key,
            "path": list(node.path),
            "shape": list(t.shape),
            "dtype": t.dtype,
            "saved_device": t.saved_device,
            "numel": t.numel,
            "nbytes": t.nbytes,
        }
        if t.layout != "strided":
            entry["layout"] = t.layout
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
    return {
        "path": index.path,
        "format": index.format,
        "file_size": index.file_size,
        "tensors": tensors,
        "globals": globals_,
        "unsafe_globals": [g["name"] for g in globals_ if g["verdict"] != "allowed"],
        "total_params": index.total_params,
        "total_bytes": index.total_bytes,
        "warnings": index.warnings,
    }


def summary_line(index: CheckpointIndex) -> str:
    """Format, tensors, params, size, dtype mix and saved devices, on one line."""
    dtypes = ", ".join(f"{d} ×{n}" for d, n in index.dtype_mix().items()) or "no tensors"
    devices = ", ".join(f"{d} ×{n}" for d, n in index.saved_devices().items()) or "—"
    return (
        f"{index.format} · {format_count(index.tensor_count)} tensors · "
        f"{format_params(index.total_params)} params · {format_bytes(index.total_bytes)} · "
        f"dtypes: {dtypes} · saved on: {devices}"
    )


def _row(node: Node, devices: DevicesByPath | None) -> str:
    if node.kind is NodeKind.TENSOR and node.tensor is not None:
        t = node.tensor
        cols = [node.name, format_shape(t.shape), t.dtype, f"saved on {t.saved_device}"]
        if devices is not None:
            cols.append(f"loaded on {devices.get(node.path, '?')}")
        cols += [format_count(t.numel), format_bytes(t.nbytes)]
        return "  ".join(cols)
    if node.kind is NodeKind.VALUE:
        return f"{node.name} = {node.value}"
    if node.kind is NodeKind.REF:
        return f"{node.name} → same as {node.value}"
    label = node.name + (f" ({node.value})" if node.value else "")
    if node.params or node.nbytes:
        return f"{label}  {format_count(node.params)} params  {format_bytes(node.nbytes)}"
    return label


def render_text(index: CheckpointIndex, devices: DevicesByPath | None = None) -> str:
    """The indented tree ``info`` prints without ``--json``."""
    return "\n".join(render_lines(index, devices))


def render_lines(index: CheckpointIndex, devices: DevicesByPath | None = None) -> list[str]:
    """The lines of ``render_text``, each holding the file's raw strings (a key may hold a line break)."""
    lines = [index.path, summary_line(index)]
    stack: list[tuple[Node, int]] = [(c, 0) for c in reversed(index.root.children)]
    while stack:
        node, depth = stack.pop()
        lines.append("  " * (depth + 1) + _row(node, devices))
        stack.extend((c, depth + 1) for c in reversed(node.children))
    unsafe = index.unsafe_globals
    if unsafe:
        names = sorted({g.qualname + f" ({g.verdict.value})" for g in unsafe})
        lines.append("globals outside weights-only: " + ", ".join(names))
    for w in index.warnings:
        lines.append(f"warning: {w}")
    return lines
