"""Where an exported file came from: the source's name, size and sha256, the tool's version, the
plan (format, device, dtype, key rules, subset) and the time, recorded with every export.

A safetensors file (and each shard of a set) keeps it in its ``__metadata__`` under
``PROVENANCE_KEY``, as one JSON string. A torch file gets a sidecar ``<target>.provenance.json``
instead: an entry inside the pickled object would change what ``torch.load`` returns (a state_dict
with an extra key no longer loads with ``load_state_dict``). An export hashes the source in a
thread while it copies the same (page-cached) bytes, so the sha256 costs no pass of its own: the
record is written with a same-width placeholder for each digest, filled in once the copy is verified
and read back again.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import hashlib
import json
import mmap
import os
import secrets
import threading
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
_MAPPED_BLOCK = 8 << 20


def sidecar_path(target: str) -> str:
    return target + SIDECAR_SUFFIX


def _file_facts(path: str) -> dict[str, Any]:
    size, digest = _hash_file(path, threading.Event())
    return {"name": os.path.basename(path), "size": size, "sha256": digest}


def _hash_file(path: str, stop: threading.Event) -> tuple[int, str]:
    """The size and sha256 of one file, hashed from a read-only map of it where its pages can be
    handed back (no copy into a buffer), else read in blocks into one buffer (hashlib and the reads
    let other threads run); ``stop`` ends it early (the digest is then meaningless)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        if hasattr(mmap, "MADV_DONTNEED"):
            size = _hash_mapped(f.fileno(), digest, stop)
            if size < 0:  # it shrank while it was read
                return -size, digest.hexdigest()
            f.seek(size)  # what a file that grew has beyond the map is read as before
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        while not stop.is_set() and (n := f.readinto(buffer)):
            digest.update(view[:n])
            size += n
    return size, digest.hexdigest()


def _hash_mapped(fd: int, digest: Any, stop: threading.Event) -> int:
    """Feed ``digest`` the file ``fd`` from a read-only map, a block at a time, each block's pages
    handed back once hashed; the bytes hashed, negative when the file shrank meanwhile (its missing
    pages are never touched: the size is checked before each block)."""
    size = os.fstat(fd).st_size
    if not size:
        return 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for start in range(0, size, _MAPPED_BLOCK):
                if stop.is_set():
                    return start
                if os.fstat(fd).st_size < size:
                    return -start
                end = min(size, start + _MAPPED_BLOCK)
                digest.update(view[start:end])
                mapped.madvise(mmap.MADV_DONTNEED, start, end - start)
        finally:
            view.release()
    return size


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


def _unreadable(source: str, exc: OSError) -> CheckpointError:
    return CheckpointError(
        f"“{os.path.basename(source)}” could not be read to record where the export came from: "
        f"{exc.strerror or exc}."
    )


def _combined(source: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    if len(files) == 1:
        return files[0]
    return {
        "name": os.path.basename(os.path.normpath(source)),
        "size": sum(f["size"] for f in files),
        "files": files,
    }


def source_facts(source: str) -> dict[str, Any]:
    """Name, size and sha256 of the source (a set: of each of its files too)."""
    try:
        return _combined(source, [_file_facts(p) for p in _source_files(source)])
    except OSError as exc:
        raise _unreadable(source, exc) from None


class SourceDigests:
    """The source's facts with each file's sha256 computed in a thread, beside the export that reads
    the same bytes. Until ``wait`` returns, ``facts`` carries a placeholder for each digest: 64 random
    hex digits, as wide as the digest, so a written record can be filled in place."""

    def __init__(self, source: str) -> None:
        self._source = source
        try:
            self._files = _source_files(source)
            self._sizes = [os.path.getsize(p) for p in self._files]
        except OSError as exc:
            raise _unreadable(source, exc) from None
        self.slots = [secrets.token_hex(32) for _ in self._files]
        self._stop = threading.Event()
        self._digests: list[str] = []
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="source sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for path, size in zip(self._files, self._sizes, strict=True):
                read, digest = _hash_file(path, self._stop)
                if read != size and not self._stop.is_set():
                    raise OSError(f"it changed size while it was read ({size} bytes, then {read})")
                self._digests.append(digest)
        except OSError as exc:
            self._error = exc

    @property
    def facts(self) -> dict[str, Any]:
        """The facts as ``source_facts`` gives them, each sha256 still its placeholder."""
        files = [
            {"name": os.path.basename(p), "size": n, "sha256": slot}
            for p, n, slot in zip(self._files, self._sizes, self.slots, strict=True)
        ]
        return _combined(self._source, files)

    def wait(self) -> dict[str, str]:
        """Each placeholder and the digest that replaces it, once every file is read."""
        self._thread.join()
        if self._error is not None:
            raise _unreadable(self._source, self._error)
        if len(self._digests) != len(self.slots):
            raise CheckpointError(f"“{os.path.basename(self._source)}” was not hashed: the export stopped.")
        return dict(zip(self.slots, self._digests, strict=True))

    def filled(self, text: str) -> str:
        """``text`` (a record, or JSON holding one) with every placeholder replaced by its digest."""
        for slot, digest in self.wait().items():
            text = text.replace(slot, digest)
        return text

    def close(self) -> None:
        """Stop reading (an export that failed or ended) and let the thread finish."""
        self._stop.set()
        self._thread.join()


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
    """The record of one export, before it is written. ``source``: the facts the caller has (a URL's,
    or ``SourceDigests.facts``); without them a local source is read and hashed here."""
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
