"""Writing a safetensors file from an open export source: the header first, then each tensor's bytes.

Unconverted bytes that lie in a source file as they are get copied by the kernel; everything else
is written from the source tensor, converted if asked, a strided view block by block. Plain values
go into the metadata as ``map_keys`` decided; the source's own metadata is carried over.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

from inspector.core.export_plan import SAFETENSORS_CODES, ExportPlan, KeyMapping

from .export_results import WrittenFacts
from .export_source import ExportSource
from .file_safety import copy_range, write_all
from .storage_pages import populate
from .tensor_bytes import output_blocks


def write_safetensors(
    plan: ExportPlan, mapping: KeyMapping, source: ExportSource, temp: str, step: Callable[[int], None]
) -> WrittenFacts:
    """Write ``mapping``'s stored tensors and metadata from ``source`` into ``temp``; ``step(n)``
    after each tensor of ``n`` bytes."""
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
        for t in stored:
            original = source.tensor(t)
            where = source.file_range(t) if not t.converted and t.nbytes else None
            if where is not None and original.is_contiguous():
                # Unconverted bytes already lie in a source file: let the kernel copy them.
                path, start = where
                offset_in_file = start + int(original.storage_offset()) * original.element_size()
                copy_range(f.fileno(), source.data_file(path).fileno(), offset_in_file, t.nbytes)
                del original
                source.done_with(t, None)
                step(t.nbytes)
                continue
            if source.mapped:
                populate(original.untyped_storage())
            if t.nbytes:
                for block in output_blocks(original, t.output_dtype):
                    write_all(f, block.numpy().data)
            source.done_with(t, original)
            del original
            step(t.nbytes)
    return facts
