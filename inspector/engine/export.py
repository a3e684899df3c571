"""Carrying out an ``ExportPlan``: one file, or an HF shard set, written tensor by tensor into the
plan's temporary path, verified, and renamed into place; a failure leaves no partial file.

This module only orchestrates. What is read and how: ``export_source``; the writers:
``torch_writer`` and ``safetensors_writer``; the read-back checks: ``export_verification``; one
verified file: ``export_file``; a shard set: ``export_sharded``; temporary paths, fsync, the rename
and free space: ``file_safety``; the devices this machine has: ``devices``.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import time
from typing import Any

from inspector import __version__
from inspector.core.errors import CheckpointError
from inspector.core.export_plan import ExportPlan
from inspector.core.provenance import (
    SourceDigests,
    in_metadata,
    provenance_record,
    remove_stale_sidecar,
    with_provenance,
    write_sidecar,
)
from inspector.remote.locations import is_url
from inspector.remote.opening import remote_size

from .export_file import export_failure, write_verified
from .export_results import CancelCheck as CancelCheck
from .export_results import ExportCancelled as ExportCancelled
from .export_results import ExportError as ExportError
from .export_results import ExportReport as ExportReport
from .export_results import ProgressCallback as ProgressCallback
from .export_sharded import export_shard_set
from .export_source import checked_mapping, open_export_source, read_source_index
from .file_safety import check_free_space, check_target, temp_beside


def _remote_facts(source: str) -> dict[str, Any] | None:
    """A URL source's facts for the export's record: where it lives (without credentials) and its
    size, a set's files each with its own; no sha256, which would mean downloading the whole file.
    ``None`` for a local source."""
    if not is_url(source):
        return None
    from inspector.remote.set_pieces import locate, remote_set, set_facts
    from inspector.remote.static_read import peek_url

    location, _ = locate(source)
    facts: dict[str, Any] = {"name": posixpath.basename(location.shown.rstrip("/")), "url": location.shown}
    pieces = remote_set(location)
    with contextlib.suppress(CheckpointError):  # the export's own read then says what is wrong
        if pieces is not None:
            facts = set_facts(pieces, peek_url(source)[0])
        else:
            facts["size"] = remote_size(location)
    return facts


def export_checkpoint(
    plan: ExportPlan,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    devices: list[str] | None = None,
) -> ExportReport:
    """Write, verify and rename into place; raises ``ExportError`` and then leaves no partial file.

    ``devices`` lists where tensors may be exported onto (default: what this machine has).
    """
    digests = SourceDigests(plan.source) if plan.provenance and not is_url(plan.source) else None
    try:
        return _export(plan, progress, cancel, devices, digests)
    finally:
        if digests is not None:
            digests.close()


def _export(
    plan: ExportPlan,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    devices: list[str] | None,
    digests: SourceDigests | None,
) -> ExportReport:
    """The export, while ``digests`` (if any) hashes the source for the record."""
    facts = digests.facts if digests is not None else _remote_facts(plan.source)
    record = provenance_record(plan, __version__, source=facts) if plan.provenance else None
    if record is not None:
        plan = with_provenance(plan, record)
    if plan.format == "hf-sharded":
        return export_shard_set(plan, progress, cancel, devices, digests)
    started = time.perf_counter()
    check_target(plan.source, plan.target, force=plan.force, folder=False)
    index = read_source_index(plan)
    mapping = checked_mapping(index, plan, devices)
    check_free_space(plan.target, mapping.estimated_bytes)
    temp_beside(plan.temp_path, plan.target)
    try:
        with open_export_source(plan, index) as source:
            report = write_verified(plan, mapping, source, progress, cancel, digests)
    except ExportError:
        raise
    except BaseException as exc:
        raise export_failure(plan, mapping.estimated_bytes, exc) from None
    if not in_metadata(plan):  # a torch file keeps its record beside it
        if record is not None:
            write_sidecar(plan.target, _sealed(record, digests))
        else:
            remove_stale_sidecar(plan.target)
    report.seconds = time.perf_counter() - started
    return report


def _sealed(record: dict[str, Any], digests: SourceDigests | None) -> dict[str, Any]:
    """The record with the source's digests in place of their placeholders."""
    if digests is None:
        return record
    sealed: dict[str, Any] = json.loads(digests.filled(json.dumps(record)))
    return sealed
