"""The worker's "look inside" jobs: statistics, slices, statistics of every tensor, and diffs.

Each takes its typed request and returns plain data (what the request's reply reads); progress goes
out through ``progress(done bytes, total bytes, tensor key)``, and ``cancelled()`` is checked between
tensors (and between blocks of one), raising ``StatsCancelled``. Files stay mapped between jobs (the
last few, reopened when they change on disk), so paging through values does not re-read the tree.
Problems with the file or the request raise ``CheckpointError`` with a sentence about the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from inspector.core.errors import CheckpointError
from inspector.remote.range_buffer import between_reads

from .direct_read import TensorSource
from .protocol import DiffRequest, SliceRequest, StatsAllRequest, StatsRequest
from .slices import value_slice
from .sources import SourceCache
from .stats import Cancelled, StatsCancelled, tensor_stats

Progress = Callable[[int, int, str], None]
InspectRequest = StatsRequest | SliceRequest | StatsAllRequest | DiffRequest

# The worker process is long-lived and runs one job at a time: its mapped files are kept here.
_FILES = SourceCache()


def _never() -> bool:
    return False


def answer(
    request: InspectRequest, progress: Progress | None = None, cancelled: Cancelled = _never
) -> dict[str, Any]:
    """Answer one request; raises ``CheckpointError`` with a sentence about the file or the request.

    ``cancelled()`` is also checked between the requests of a large remote read."""

    def stop_if_cancelled() -> None:
        if cancelled():
            raise StatsCancelled

    with between_reads(stop_if_cancelled):
        if isinstance(request, StatsRequest):
            return _stats(request, cancelled)
        if isinstance(request, SliceRequest):
            return _slice(request)
        if isinstance(request, StatsAllRequest):
            return stats_all(_FILES.get(request.path), progress, cancelled)
        from .diff import diff_checkpoints  # torch: only a diff needs it

        return diff_checkpoints(request.a, request.b, progress=progress, cancelled=cancelled).to_json()


def close_mapped_files() -> None:
    """Unmap the files kept between jobs (tests; a worker simply exits)."""
    _FILES.clear()


def _tensor(request: StatsRequest | SliceRequest) -> tuple[TensorSource, Any]:
    mapped = _FILES.get(request.path)
    return mapped, mapped.find(request.key, request.tensor_path)


def _stats(request: StatsRequest, cancelled: Cancelled) -> dict[str, Any]:
    mapped, node = _tensor(request)
    result = tensor_stats(mapped.array(node), bins=request.bins, cancelled=cancelled).to_json()
    result["key"], result["path"] = node.key, list(node.path)
    return result


def _slice(request: SliceRequest) -> dict[str, Any]:
    mapped, node = _tensor(request)
    t = mapped.array(node)
    row_axis, col_axis = (
        request.axes if request.axes is not None else (0 if t.ndim else None, 1 if t.ndim >= 2 else None)
    )
    page = value_slice(
        t,
        row_axis=row_axis,
        col_axis=col_axis,
        index=request.index,
        row_start=request.row_start,
        row_count=request.row_count,
        col_start=request.col_start,
        col_count=request.col_count,
    )
    result = page.to_json()
    result["key"], result["path"] = node.key, list(node.path)
    return result


def stats_all(
    mapped: TensorSource, progress: Progress | None = None, cancelled: Cancelled = _never
) -> dict[str, Any]:
    """Statistics (no histograms) of every tensor; views of one storage region are computed once.

    ``flagged`` lists the keys of tensors holding NaN or ±Inf. Checks ``cancelled()`` between tensors.
    """
    start = time.perf_counter()
    nodes = mapped.tensor_nodes()
    total = sum(n.tensor.nbytes for n in nodes if n.tensor is not None)
    done = 0
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    flagged: list[str] = []
    for node in nodes:
        if cancelled():
            raise StatsCancelled
        info = node.tensor
        assert info is not None
        view = (info.storage_key, info.storage_offset, info.shape, info.stride, info.dtype)
        row: dict[str, Any] = {"key": node.key, "path": list(node.path)}
        stats = seen.get(view) if info.storage_key else None
        if stats is None:
            try:
                stats = tensor_stats(mapped.array(node), bins=None, cancelled=cancelled).to_json()
            except CheckpointError as exc:
                row["error"] = exc.message
            finally:
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
