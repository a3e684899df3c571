"""The worker's "look inside" jobs: ``stats``, ``stats-all``, ``slice`` and ``diff``.

Each takes the job's JSON payload and returns a JSON result; progress goes out through the
``report`` callable as ``{"done": bytes, "total": bytes, "key": tensor key}`` (the worker adds
``event`` and ``job``), at most about ten times a second. Files stay mapped between jobs (the
last few, reopened when they change on disk), so paging through values does not re-read the tree.
Problems with the file or the request raise ``LoadError`` (kinds ``unreadable`` / ``bad-request``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from inspector.core.errors import CheckpointError

from .diff import diff_checkpoints
from .direct_read import TensorSource, tensor_ref
from .loader import LoadError
from .slices import value_slice
from .sources import SourceCache
from .stats import DEFAULT_BINS, tensor_stats

Report = Callable[[dict[str, Any]], None]

#: Job kinds this module answers.
JOB_KINDS = ("stats", "stats-all", "slice", "diff")

_PROGRESS_EVERY_S = 0.1

# The worker process is long-lived and runs one job at a time: its mapped files are kept here.
_FILES = SourceCache()


class _Throttled:
    """Forwards progress at most every ``_PROGRESS_EVERY_S`` seconds, and always the last step."""

    def __init__(self, report: Report | None) -> None:
        self.report = report
        self.last = 0.0

    def __call__(self, done: int, total: int, key: str) -> None:
        now = time.monotonic()
        if self.report is not None and (done >= total or now - self.last >= _PROGRESS_EVERY_S):
            self.last = now
            self.report({"done": done, "total": total, "key": key})


def run_inspect_job(kind: str, payload: dict[str, Any], report: Report | None = None) -> dict[str, Any]:
    """Answer one job; raises ``LoadError`` with a sentence about the file or the request."""
    try:
        if kind == "stats":
            return _stats(payload)
        if kind == "stats-all":
            return stats_all(_FILES.get(_str(payload, "path")), _Throttled(report))
        if kind == "slice":
            return _slice(payload)
        if kind == "diff":
            return diff_checkpoints(
                _str(payload, "a"), _str(payload, "b"), progress=_Throttled(report)
            ).to_json()
    except LoadError:
        raise
    except CheckpointError as exc:
        raise LoadError(exc.message, exc.details, "unreadable") from None
    raise LoadError(f"The engine does not know the job {kind!r}.", kind="bad-request")


def close_mapped_files() -> None:
    """Unmap the files kept between jobs (tests; a worker simply exits)."""
    _FILES.clear()


def _str(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise LoadError(f"The request lacks “{name}”.", kind="bad-request")
    return value


def _int(payload: dict[str, Any], name: str, default: int | None) -> int | None:
    value = payload.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise LoadError(f"“{name}” must be a whole number.", kind="bad-request")
    return value


def _tensor(payload: dict[str, Any]) -> tuple[TensorSource, Any]:
    mapped = _FILES.get(_str(payload, "path"))
    key, path = tensor_ref(payload)
    if key is None and path is None:
        raise LoadError("The request names no tensor (“key” or “tensor_path”).", kind="bad-request")
    return mapped, mapped.find(key, path)


def _stats(payload: dict[str, Any]) -> dict[str, Any]:
    mapped, node = _tensor(payload)
    bins = _int(payload, "bins", DEFAULT_BINS)
    result = tensor_stats(mapped.tensor(node), bins=bins).to_json()
    result["key"], result["path"] = node.key, list(node.path)
    return result


def _slice(payload: dict[str, Any]) -> dict[str, Any]:
    mapped, node = _tensor(payload)
    t = mapped.tensor(node)
    default_col = 1 if t.dim() >= 2 else None
    page = value_slice(
        t,
        row_axis=_int(payload, "row_axis", 0 if t.dim() else None),
        col_axis=_int(payload, "col_axis", default_col),
        index=[int(i) for i in payload.get("index") or [] if isinstance(i, int)],
        row_start=_int(payload, "row_start", 0) or 0,
        row_count=_int(payload, "row_count", 100) or 0,
        col_start=_int(payload, "col_start", 0) or 0,
        col_count=_int(payload, "col_count", 100) or 0,
    )
    result = page.to_json()
    result["key"], result["path"] = node.key, list(node.path)
    return result


def stats_all(
    mapped: TensorSource, progress: Callable[[int, int, str], None] | None = None
) -> dict[str, Any]:
    """Statistics (no histograms) of every tensor; views of one storage region are computed once.

    ``flagged`` lists the keys of tensors holding NaN or ±Inf.
    """
    start = time.perf_counter()
    nodes = mapped.tensor_nodes()
    total = sum(n.tensor.nbytes for n in nodes if n.tensor is not None)
    done = 0
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    flagged: list[str] = []
    for node in nodes:
        info = node.tensor
        assert info is not None
        view = (info.storage_key, info.storage_offset, info.shape, info.stride, info.dtype)
        row: dict[str, Any] = {"key": node.key, "path": list(node.path)}
        stats = seen.get(view) if info.storage_key else None
        if stats is None:
            try:
                stats = tensor_stats(mapped.tensor(node), bins=None).to_json()
            except CheckpointError as exc:
                row["error"] = exc.message
            mapped.release(node)
            if stats is not None and info.storage_key:
                seen[view] = stats
        if stats is not None:
            row["stats"] = stats
            if stats["has_nan_or_inf"]:
                flagged.append(node.key)
        rows.append(row)
        done += info.nbytes
        if progress is not None:
            progress(done, total, node.key)
    return {
        "path": mapped.path,
        "tensors": rows,
        "flagged": flagged,
        "bytes": total,
        "seconds": time.perf_counter() - start,
    }
