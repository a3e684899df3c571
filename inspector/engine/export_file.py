"""One exported file from an open source: the format's writer into the plan's temporary path,
fsync and verification (at once: one waits on the disk, the other reads the page cache), the
source's digests sealed into the record (hashed meanwhile) and read back, the
rename into place and the report; whatever fails removes the temporary
file and leaves the target as it was. A single-file export writes one; a shard set one per shard.
"""

from __future__ import annotations

import os

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import ExportPlan, KeyMapping
from inspector.core.provenance import SourceDigests

from .export_results import (
    CancelCheck,
    ExportCancelled,
    ExportError,
    ExportReport,
    ProgressCallback,
    WrittenFacts,
)
from .export_source import ExportSource
from .export_verification import ValuesReadBack, verify_file, verify_sealed_header
from .file_safety import (
    BackgroundSync,
    discard_partial,
    disk_full,
    fsync_path,
    looks_like_disk_full,
    move_into_place,
    temp_beside,
    write_error,
)
from .safetensors_writer import seal_record, write_safetensors


def write_verified(
    plan: ExportPlan,
    mapping: KeyMapping,
    source: ExportSource,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    digests: SourceDigests | None = None,
) -> ExportReport:
    """Write one file from an open source into ``plan.temp_path``, verify it, rename it into place.

    ``digests``: the source's sha256, still being computed, for the record in a safetensors header.
    Whatever fails, the temporary file is removed and the target is left as it was.
    """
    temp = temp_beside(plan.temp_path, plan.target)
    done = [0]
    total = max(1, mapping.estimated_bytes)

    def step(nbytes: int, disk: BackgroundSync | None = None) -> None:
        if cancel is not None and cancel():
            raise ExportCancelled()
        done[0] += nbytes
        if nbytes and disk is not None:
            disk.written()
        if progress is not None:
            progress(min(done[0], total), total)

    read_back = ValuesReadBack(source, temp, os.path.basename(plan.target))
    try:
        step(0)
        # The disk writes the copy while it is made, and finishes while the copy is read back from
        # the page cache; both are done before the rename. A safetensors copy's tensors that the
        # kernel copies are read back meanwhile, each once it is written.
        with BackgroundSync(temp) as disk:
            if plan.format == "safetensors":
                facts = write_safetensors(
                    plan, mapping, source, temp, lambda n: step(n, disk), read_back.copied
                )
            else:
                from .torch_writer import write_torch  # torch: only a torch-format file needs it

                facts = write_torch(plan, mapping, source, temp, lambda n: step(n, disk))
            synced = disk.fsync()
            verify_file(plan, mapping, source, temp, facts, lambda: step(0), read_back)
            synced.result()
        step(0)
        if digests is not None:  # a record that cannot be completed keeps the copy from being kept
            digests.wait()  # the source was hashed meanwhile, beside the copy and its verification
            if plan.format == "safetensors" and seal_record(temp, facts, digests):
                fsync_path(temp)
                verify_sealed_header(plan, temp, facts)
        move_into_place(temp, plan.target)
    except BaseException as exc:
        read_back.close()
        discard_partial(plan)
        if isinstance(exc, ExportError):
            raise
        raise export_failure(plan, mapping.estimated_bytes, exc) from None
    if progress is not None:
        progress(total, total)
    return _report(plan, mapping, facts)


def export_failure(plan: ExportPlan, estimate: int, exc: BaseException) -> BaseException:
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


def _report(plan: ExportPlan, mapping: KeyMapping, facts: WrittenFacts) -> ExportReport:
    return ExportReport(
        target=plan.target,
        format=plan.format,
        tensors=len(mapping.tensors),
        storages=facts.storages,
        bytes=os.path.getsize(plan.target),
        seconds=0.0,
        aliases=mapping.aliases() if plan.format == "safetensors" else {},
        cloned=mapping.cloned() if plan.format == "safetensors" else {},
        values_kept=facts.kept,
        values_in_metadata=facts.in_metadata,
        values_dropped=facts.dropped,
        notes=list(mapping.notes),
    )
