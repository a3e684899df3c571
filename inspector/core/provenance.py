"""Where an exported file came from: the source's name, size and sha256, the tool's version, the
plan (format, device, dtype, key rules, subset) and the time, recorded with every export.

A safetensors file (and each shard of a set) keeps it in its ``__metadata__`` under
``PROVENANCE_KEY``, as one JSON string. A torch file gets a sidecar ``<target>.provenance.json``
instead: an entry inside the pickled object would change what ``torch.load`` returns (a state_dict
with an extra key no longer loads with ``load_state_dict``). The sha256 costs one streaming pass
over the source (1 MiB blocks), at the disk's read speed; the export reads the source again.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import hashlib
import json
import os
from dataclasses import replace
from typing import Any

from .errors import CheckpointError
from .export_plan import ExportPlan
from .formats import Format
from .layout import LayoutKind, resolve_layout
from .model import CheckpointIndex, NodeKind
from .peek import peek

PROVENANCE_KEY = "checkpoint_inspector.provenance"
SIDECAR_SUFFIX = ".provenance.json"
_MAX_SIDECAR_BYTES = 1 << 20
_BLOCK = 1 << 20


def sidecar_path(target: str) -> str:
    return target + SIDECAR_SUFFIX


def _file_facts(path: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return {"name": os.path.basename(path), "size": size, "sha256": digest.hexdigest()}


def _source_files(source: str) -> list[str]:
    """The files that make up the source: the file itself, an HF set's index and shards, or every
    file of a DCP folder."""
    layout = resolve_layout(source)
    if layout.kind is LayoutKind.HF_SHARD_SET:
        return [layout.path, *(full for _, full in layout.shard_files())]
    if layout.kind is LayoutKind.DCP_FOLDER:
        folder = layout.folder
        return [
            os.path.join(folder, n)
            for n in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, n))
        ]
    return [layout.path]


def source_facts(source: str) -> dict[str, Any]:
    """Name, size and sha256 of the source (a set: of each of its files too)."""
    try:
        files = [_file_facts(p) for p in _source_files(source)]
    except OSError as exc:
        raise CheckpointError(
            f"“{os.path.basename(source)}” could not be read to record where the export came from: "
            f"{exc.strerror or exc}."
        ) from None
    if len(files) == 1:
        return files[0]
    return {
        "name": os.path.basename(os.path.normpath(source)),
        "size": sum(f["size"] for f in files),
        "files": files,
    }


def plan_facts(plan: ExportPlan) -> dict[str, Any]:
    """What the plan changed: format, device, dtype, key rules and the subset written."""
    return {
        "format": plan.format,
        "device": plan.device,
        "dtype": plan.dtype,
        "convert_only": list(plan.convert_only),
        "subtree": plan.subtree,
        "include": list(plan.include),
        "exclude": list(plan.exclude),
        "strip_prefixes": list(plan.strip_prefixes),
        "renames": [r.to_json() for r in plan.renames],
    }


def provenance_record(
    plan: ExportPlan,
    tool_version: str,
    now: datetime.datetime | None = None,
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one export, before it is written. ``source``: the facts of a source that is not
    a local path (a URL), which the caller knows how to reach; a local source is read and hashed here."""
    when = now or datetime.datetime.now(datetime.UTC)
    return {
        "source": source if source is not None else source_facts(plan.source),
        "tool": {"name": "checkpoint-inspector", "version": tool_version},
        "plan": plan_facts(plan),
        "time": when.isoformat(timespec="seconds"),
    }


def in_metadata(plan: ExportPlan) -> bool:
    """Whether the target format keeps the record in its own string metadata (safetensors)."""
    return plan.format in ("safetensors", "hf-sharded")


def with_provenance(plan: ExportPlan, record: dict[str, Any]) -> ExportPlan:
    """The plan whose safetensors metadata carries the record (other formats: the plan as it is)."""
    if not in_metadata(plan):
        return plan
    return replace(plan, metadata={**plan.metadata, PROVENANCE_KEY: json.dumps(record, sort_keys=True)})


def write_sidecar(target: str, record: dict[str, Any]) -> str:
    """Write the record beside a torch file (with the file's own size), atomically."""
    path = sidecar_path(target)
    body = {**record, "target": {"name": os.path.basename(target), "size": os.path.getsize(target)}}
    temp = f"{path}.{os.getpid()}.part"
    try:
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(temp, path)
    except OSError as exc:
        if os.path.exists(temp):
            os.unlink(temp)
        raise CheckpointError(
            f"“{os.path.basename(target)}” was written, but where it came from could not be recorded "
            f"beside it ({exc.strerror or exc})."
        ) from None
    return path


def remove_stale_sidecar(target: str) -> None:
    """A replaced torch file loses the record of the file it replaced."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sidecar_path(target))


def provenance_of(index: CheckpointIndex) -> tuple[dict[str, Any] | None, str]:
    """The export record of a file, and a note when a sidecar beside it describes another file:
    from a safetensors ``__metadata__`` entry, else from ``<file>.provenance.json``."""
    if index.remote_read is not None and index.format is Format.HF_SHARDED:
        return None, ""  # its shards are read where they live, by their headers only
    if index.format is Format.HF_SHARDED:  # each shard holds the record of the export that wrote the set
        shards = resolve_layout(index.path).shard_files()
        return provenance_of(peek(shards[0][1], whole_set=False)) if shards else (None, "")
    meta = next(
        (c for c in index.root.children if c.name == "__metadata__" and c.kind is NodeKind.DICT), None
    )
    entry = next((c for c in meta.children if c.name == PROVENANCE_KEY), None) if meta else None
    if entry is not None and entry.value is not None:
        try:
            record = json.loads(ast.literal_eval(entry.value))
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            return None, f"its {PROVENANCE_KEY} metadata entry is not JSON"
        return (record if isinstance(record, dict) else None), ""
    path = sidecar_path(index.path)
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > _MAX_SIDECAR_BYTES:
            return None, ""
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError, RecursionError, MemoryError):
        return None, f"{os.path.basename(path)} beside it is not a provenance record"
    if not isinstance(record, dict):
        return None, f"{os.path.basename(path)} beside it is not a provenance record"
    target = record.get("target")
    if not isinstance(target, dict) or target.get("size") != index.file_size:
        return None, f"{os.path.basename(path)} beside it describes another file (its size differs)"
    return record, ""


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """The record as ``info`` prints it: where from, by what, when, and what the plan changed."""
    source, tool, plan = (_part(record, k) for k in ("source", "tool", "plan"))
    sha = f", sha256 {source['sha256']}" if source.get("sha256") else ""
    lines = [
        f"exported from: {source.get('name', '?')} ({source.get('size', '?')} bytes{sha})",
        f"exported by: {tool.get('name', '?')} {tool.get('version', '?')} at {record.get('time', '?')}",
    ]
    changed = [
        f"{k} {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(plan.items()) if v not in (None, [], {})
    ]
    lines.append("plan: " + ("; ".join(changed) if changed else "a plain copy"))
    return lines


_UNSET: tuple[object, ...] = (None, [], {})


def _part(record: dict[str, Any], key: str) -> dict[str, Any]:
    part = record.get(key)
    return part if isinstance(part, dict) else {}
