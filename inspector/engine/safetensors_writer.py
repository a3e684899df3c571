"""Writing a safetensors file from an open export source: the header first, then each tensor's bytes.

Unconverted bytes that lie in a source file as they are get copied by the kernel; other unconverted
ones are written from the mapped source through NumPy, a strided view block by block; only a dtype
conversion imports torch (torch's own casts). Plain values go into the metadata as ``map_keys``
decided; the source's own metadata is carried over.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import Any

from inspector.core.export_plan import SAFETENSORS_CODES, ExportPlan, KeyMapping, MappedTensor
from inspector.core.provenance import PROVENANCE_KEY, SourceDigests

from .export_results import WrittenFacts
from .export_source import ExportSource
from .file_safety import copy_range, write_all
from .tensor_bytes import array_blocks, output_blocks


def write_safetensors(
    plan: ExportPlan,
    mapping: KeyMapping,
    source: ExportSource,
    temp: str,
    step: Callable[[int], None],
    copied: Callable[[MappedTensor], None] | None = None,
) -> WrittenFacts:
    """Write ``mapping``'s stored tensors and metadata from ``source`` into ``temp``; ``step(n)``
    after each tensor of ``n`` bytes. ``copied(t)`` after each tensor the kernel copied from a
    source file (its pages are then the source's to read back; the writer does not touch them).

    The file is only ever appended to, and each tensor ends exactly where the header says: bytes
    once written are never written again, so a tensor read back as soon as it is written is read
    as the finished file holds it."""
    facts = WrittenFacts()
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
    with open(temp, "wb", buffering=0) as f:
        write_all(f, struct.pack("<Q", len(raw)))
        write_all(f, raw)
        end = 8 + len(raw)
        for t in stored:
            kernel = False
            if t.converted or source.direct is None:
                original = source.tensor(t)  # torch converts
                for block in output_blocks(original, t.output_dtype):
                    write_all(f, block.numpy().data)
                del original
            else:
                kernel = _write_stored(f, source, t)
            end += t.nbytes
            if os.lseek(f.fileno(), 0, os.SEEK_CUR) != end:
                raise RuntimeError(f"the bytes of {t.output_key} did not end where the header says")
            if kernel and copied is not None:
                copied(t)
            else:
                source.done_with(t, None)
            step(t.nbytes)
    return facts


def _write_stored(f: Any, source: ExportSource, t: MappedTensor) -> bool:
    """``t``'s bytes as stored: copied by the kernel where they lie in a source file as they are
    (True), else from the mapped source, a strided view block by block."""
    array = source.array(t)
    where = source.file_range(t) if t.nbytes else None
    if where is not None and array.contiguous:
        path, start = where
        copy_range(
            f.fileno(), source.data_file(path).fileno(), start + array.offset * array.itemsize, t.nbytes
        )
        return True
    for block in array_blocks(array):
        write_all(f, block.data)
    return False


def seal_record(temp: str, facts: WrittenFacts, digests: SourceDigests) -> bool:
    """Write the source's digests over their placeholders in the written header's record (each once,
    as wide as the digest), once the thread hashing the source is done, and into ``facts.metadata``;
    False when the file holds no record. The sealed header is then read back and compared."""
    text = facts.metadata.get(PROVENANCE_KEY)
    if text is None:
        return False
    digests_of = digests.wait()
    with open(temp, "r+b", buffering=0) as f:
        (length,) = struct.unpack("<Q", os.pread(f.fileno(), 8, 0))
        header = os.pread(f.fileno(), length, 8)
        for slot, digest in digests_of.items():
            at = header.find(slot.encode("ascii"))
            if at < 0 or header.find(slot.encode("ascii"), at + 1) >= 0:
                raise RuntimeError("the written header does not hold the record's placeholder once")
            os.pwrite(f.fileno(), digest.encode("ascii"), 8 + at)
    facts.metadata[PROVENANCE_KEY] = digests.filled(text)
    return True
