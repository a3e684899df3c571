"""Writing a Hugging Face shard set (safetensors shards + ``model.safetensors.index.json``).

The source is read once: every shard is an ordinary verified safetensors write of its share of
the keys from that one open source, into the plan's temporary folder beside the target (the same
temporary-path rule as a single file, so a killed export's leftover is found by the same name);
the index is written last, the whole set is re-read as one shard set and compared with the plan,
and only then is the folder moved into place. A failure at any step removes the temporary folder:
the target is never left half written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

from inspector.core.export_plan import DEFAULT_MAX_SHARD_SIZE, ExportPlan, MappedTensor, map_keys
from inspector.core.provenance import SourceDigests

from .export_file import export_failure, write_verified
from .export_results import CancelCheck, ExportCancelled, ExportError, ExportReport, ProgressCallback
from .export_source import checked_mapping, open_export_source, read_source_index
from .export_verification import verify_shard_set
from .file_safety import (
    check_free_space,
    check_target,
    discard_partial,
    fsync_dir,
    move_into_place,
    temp_beside,
)

INDEX_NAME = "model.safetensors.index.json"


def plan_shards(tensors: list[MappedTensor], max_bytes: int) -> list[list[MappedTensor]]:
    """Tensors in order, a new shard whenever the next one would pass ``max_bytes`` (a larger
    tensor gets a shard of its own, as transformers does)."""
    shards: list[list[MappedTensor]] = []
    size = 0
    for t in tensors:
        if not shards or (size + t.nbytes > max_bytes and shards[-1]):
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    return shards


def export_shard_set(
    plan: ExportPlan,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    devices: list[str] | None = None,
    digests: SourceDigests | None = None,
) -> ExportReport:
    """Write ``plan.target`` as a folder holding a verified HF shard set, every shard from one open source
    (``digests``: the source's sha256 for each shard's record, being computed)."""
    started = time.perf_counter()
    target = os.path.abspath(plan.target)
    name = os.path.basename(target)
    check_target(plan.source, target, force=plan.force, folder=True)
    index = read_source_index(plan)
    mapping = checked_mapping(index, plan, devices)
    stored = [t for t in mapping.tensors if t.alias_of is None]
    shards = plan_shards(stored, plan.max_shard_size or DEFAULT_MAX_SHARD_SIZE)
    n = len(shards)
    check_free_space(target, mapping.estimated_bytes)
    temp = temp_beside(plan.temp_path, target)
    total = max(1, sum(t.nbytes for t in stored))
    done = [0]
    base = ".".join(str(p) for p in mapping.subtree_path)
    weight_map: dict[str, str] = {}
    written = 0
    try:
        os.mkdir(temp)
        with open_export_source(plan, index) as source:
            for i, group in enumerate(shards, 1):
                if cancel is not None and cancel():
                    raise ExportCancelled()
                shard = f"model-{i:05d}-of-{n:05d}.safetensors" if n > 1 else "model.safetensors"
                keys = tuple(t.source_key[len(base) + 1 :] if base else t.source_key for t in group)
                sub = replace(plan, target=os.path.join(temp, shard), format="safetensors", only_keys=keys,
                              force=False, temp_path="")  # fmt: skip
                offset = done[0]

                def step(d: int, _t: int, offset: int = offset) -> None:
                    if progress is not None:
                        progress(min(offset + d, total), total)

                report = write_verified(sub, map_keys(index, sub), source, step, cancel, digests)
                done[0] += sum(t.nbytes for t in group)
                written += report.bytes
                weight_map.update({t.output_key: shard for t in group})
        index_path = os.path.join(temp, INDEX_NAME)
        with open(index_path, "w", encoding="utf-8") as f:
            json.dump({"metadata": {"total_size": sum(t.nbytes for t in stored)}, "weight_map": weight_map},
                      f, indent=2, ensure_ascii=False)  # fmt: skip
            f.flush()
            os.fsync(f.fileno())
        verify_shard_set(index_path, stored, name)
        fsync_dir(temp)
        if cancel is not None and cancel():
            raise ExportCancelled()
        move_into_place(temp, target)
    except BaseException as exc:
        discard_partial(plan)
        if isinstance(exc, ExportError):
            raise
        raise export_failure(plan, mapping.estimated_bytes, exc) from None
    if progress is not None:
        progress(total, total)
    dropped = [f"{v.source_key} ({v.reason})" for v in mapping.values]  # a shard set holds tensors only
    return ExportReport(
        target=target, format="hf-sharded", tensors=len(mapping.tensors), storages=len(stored),
        bytes=written, seconds=time.perf_counter() - started,
        aliases=mapping.aliases(), cloned=mapping.cloned(), values_dropped=dropped,
        notes=list(mapping.notes),
    )  # fmt: skip
