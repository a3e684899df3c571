"""What an export yields: its report, or an error (a sentence about the user's files and its kind);
and what a writer learned on the way, for verification and the report."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import MappedTensor
from inspector.core.formatting import format_bytes

ProgressCallback = Callable[[int, int], None]  # bytes done, bytes total
CancelCheck = Callable[[], bool]


class ExportError(CheckpointError):
    """An export failed; the target was left as it was. ``kind``: refused, unsafe (the safety
    policy does not hand the source to torch unless it is trusted), disk-full, cancelled,
    verify-failed, failed."""

    def __init__(self, message: str, details: str | None = None, kind: str = "failed") -> None:
        super().__init__(message, details)
        self.kind = kind

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "details": self.details, "extra": {}}


class ExportCancelled(ExportError):
    def __init__(self) -> None:
        super().__init__("The export was cancelled; nothing was written.", None, "cancelled")


@dataclass
class ExportReport:
    """What was written, for the dialog and the command line: a report exists only for a copy that
    verified (one that does not raises ``ExportError`` of kind ``verify-failed`` and is not kept)."""

    target: str
    format: str
    tensors: int
    storages: int
    bytes: int  # size of the written file
    seconds: float
    aliases: dict[str, str] = field(default_factory=dict)  # safetensors: alias → stored key
    cloned: dict[str, str] = field(default_factory=dict)  # safetensors: copy → tensor it shared with
    values_kept: list[str] = field(default_factory=list)
    values_in_metadata: list[str] = field(default_factory=list)
    values_dropped: list[str] = field(default_factory=list)  # "key (why)"
    notes: list[str] = field(default_factory=list)  # how the source was read (``source_notes``)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "format": self.format,
            "tensors": self.tensors,
            "storages": self.storages,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "aliases": dict(self.aliases),
            "cloned": dict(self.cloned),
            "values_kept": list(self.values_kept),
            "values_in_metadata": list(self.values_in_metadata),
            "values_dropped": list(self.values_dropped),
            "notes": list(self.notes),
        }

    def summary(self) -> list[str]:
        """A few lines: tensors, bytes, time, and what happened to other values."""
        name = os.path.basename(self.target)
        lines = [
            f"Wrote “{name}” ({self.format}): {self.tensors:,} tensors, {format_bytes(self.bytes)} "
            f"in {self.seconds:.2f} s; verified."
        ]
        if self.aliases:
            lines.append(f"{len(self.aliases)} alias(es) stored once, recorded in the metadata: "
                         + ", ".join(f"{a} = {k}" for a, k in self.aliases.items()))  # fmt: skip
        if self.cloned:
            lines.append("Written as separate copies (they shared storage): "
                         + ", ".join(f"{c} (with {k})" for c, k in self.cloned.items()))  # fmt: skip
        if self.values_in_metadata:
            lines.append("Stored as JSON in the metadata: " + ", ".join(self.values_in_metadata))
        if self.values_dropped:
            lines.append("Not written: " + ", ".join(self.values_dropped))
        lines.extend(self.notes)
        return lines


@dataclass
class WrittenFacts:
    """What a writer learned while writing one file, for its verification and its report."""

    storages: int = 0
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors: the metadata written
    dropped: list[str] = field(default_factory=list)
    in_metadata: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    groups: list[list[MappedTensor]] = field(default_factory=list)  # tensors sharing one storage
