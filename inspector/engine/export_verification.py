"""Reading a written export back before it is kept: with the project's own reader and with the
library that will read it (torch or safetensors), keys, dtypes, shapes, devices, shared storages,
metadata and every value compared bit for bit with the converted source; a shard set read back as
one set. A copy that differs raises ``ExportError`` of kind ``verify-failed`` and is not kept.
A safetensors file is read back through ``safe_open``'s NumPy side and a read-only map, so only a
torch-format file, or a dtype conversion to compare with, imports torch.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import queue
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import SAFETENSORS_CODES, ExportPlan, KeyMapping, MappedTensor
from inspector.core.formats import Format
from inspector.core.formatting import escape_text
from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek

from .export_results import ExportError, WrittenFacts
from .export_source import ExportSource, tensors_of, torch_load
from .storage_pages import drop_pages
from .tensor_bytes import array_blocks, converted, output_blocks, raw_bytes, same_bytes

if TYPE_CHECKING:
    import torch


#: Bytes of the copy mapped at once by the read-back thread (tensors beyond it wait for the next map).
_READ_BACK_BYTES = 64 << 20


class ValuesReadBack:
    """The values of a safetensors copy read back on a thread while it is still being written: each
    tensor the kernel copied from the source is compared with the source, bit for bit, as soon as
    it is in the file, while the writer's thread waits in the kernel for the next one.

    The writer only ever appends and checks that each tensor ends where the header says, so what
    is read here is what the finished file holds; ``finish`` hands over the tensors compared (and
    the first that differs, or what failed, is raised there). The copy's header, keys, shapes and
    dtypes are still checked once it is whole, and the other tensors compared then. The writer has
    located each tensor's bytes in the source (and so cached where they lie) before it hands it
    over, so this thread never reads the source's directory while the writer does."""

    def __init__(self, source: ExportSource, temp: str, name: str) -> None:
        self._source, self._temp, self._name = source, temp, name
        self._queue: queue.SimpleQueue[MappedTensor | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._compared: set[str] = set()
        self._differs: str | None = None
        self._failed: BaseException | None = None
        self._stop = threading.Event()

    def copied(self, t: MappedTensor) -> None:
        """``t``'s bytes are in the file: compare them (the thread starts with the first). What the
        thread found already (a value that differs, a failure) stops the writer here."""
        self._raise_found()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="export read-back", daemon=True)
            self._thread.start()
        self._queue.put(t)

    def finish(self, check: Callable[[], None]) -> set[str]:
        """The output keys whose values were compared and equal, once every queued one is done
        (``check()`` meanwhile: a cancel stops the wait)."""
        thread = self._thread
        if thread is None:
            return set()
        self._queue.put(None)
        while thread.is_alive():
            check()
            thread.join(0.05)
        self._thread = None
        self._raise_found()
        return self._compared

    def _raise_found(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._differs is not None:
            raise _unverified(self._name, f"the values of {self._differs} differ from the source")

    def close(self) -> None:
        """Stop the thread without waiting for what is queued (the export failed or is done)."""
        thread = self._thread
        if thread is not None:
            self._stop.set()
            self._queue.put(None)
            thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            with open(self._temp, "rb") as fh:
                header, data_start = _written_header(fh)
                end = False
                while not end and not self._stop.is_set():
                    batch = [self._queue.get()]
                    spans = []
                    while batch[-1] is not None:
                        t = batch[-1]
                        begin, stop = header[t.output_key]["data_offsets"]
                        spans.append((t, data_start + begin, stop - begin))
                        if spans[-1][1] + spans[-1][2] - spans[0][1] >= _READ_BACK_BYTES:
                            break
                        try:
                            batch.append(self._queue.get_nowait())
                        except queue.Empty:
                            break
                    end = batch[-1] is None
                    if spans and not self._compare(fh.fileno(), spans):
                        return
        except BaseException as exc:  # raised by ``finish`` on the export's thread
            self._failed = exc

    def _compare(self, fd: int, spans: list[tuple[MappedTensor, int, int]]) -> bool:
        """Compare the tensors of one map of the copy; False at the first that differs."""
        first = spans[0][1] - spans[0][1] % mmap.ALLOCATIONGRANULARITY
        last = spans[-1][1] + spans[-1][2]
        mapped = mmap.mmap(fd, last - first, access=mmap.ACCESS_READ, offset=first)
        try:
            for t, at, nbytes in spans:
                if self._stop.is_set():
                    return False
                if not _written_matches(mapped, at - first, nbytes, self._source, t):
                    self._differs = t.output_key
                    return False
                self._compared.add(t.output_key)
        finally:
            with contextlib.suppress(BufferError):
                mapped.close()
        return True


def verify_file(
    plan: ExportPlan, mapping: KeyMapping, source: ExportSource, temp: str, facts: WrittenFacts,
    check: Callable[[], None], read_back: ValuesReadBack | None = None,
) -> None:  # fmt: skip
    """Re-open the written file with core's reader and with the writing library; compare all
    (``check()`` runs before each tensor's values: a cancel stops there). ``read_back``: the
    tensors already compared while the file was written."""
    name = os.path.basename(plan.target)
    try:
        index = peek(temp)
    except CheckpointError as exc:
        raise _unverified(name, f"the project's reader cannot read it: {exc.message}") from None
    expected = {t.output_path: t for t in mapping.tensors}
    if plan.format == "safetensors":
        expected = {(t.output_key,): t for t in mapping.tensors if t.alias_of is None}
    seen = {n.path: n for n in index.root.tensors()}
    if set(seen) != set(expected):
        extra = sorted(str(p) for p in set(seen) - set(expected))[:3]
        lost = sorted(str(p) for p in set(expected) - set(seen))[:3]
        raise _unverified(name, f"its keys differ from the plan (unexpected {extra}, missing {lost})")
    for path, t in expected.items():
        info = seen[path].tensor
        assert info is not None
        if info.shape != t.shape or info.dtype != t.output_dtype:
            raise _unverified(name, f"{t.output_key} is {info.dtype}{list(info.shape)}, "
                                    f"not {t.output_dtype}{list(t.shape)}")  # fmt: skip
        if plan.format != "safetensors" and info.saved_device != t.output_device:
            raise _unverified(name, f"{t.output_key} is tagged {info.saved_device}, not {t.output_device}")
    if plan.format != "safetensors":
        for group in facts.groups:
            keys = {seen[t.output_path].tensor.storage_key for t in group}  # type: ignore[union-attr]
            if len(keys) != 1:
                raise _unverified(name, f"{', '.join(t.output_key for t in group)} no longer share storage")
        _verify_torch_values(plan, mapping, source, temp, name, index, check)
    else:
        _verify_safetensors_values(mapping, source, temp, name, facts, check, read_back)


def verify_sealed_header(plan: ExportPlan, temp: str, facts: WrittenFacts) -> None:
    """The header as sealed (its record's digests written in place), read back by the safetensors
    library: its metadata is what was meant to be written."""
    from safetensors import safe_open

    name = os.path.basename(plan.target)
    try:
        with safe_open(temp, framework="numpy") as f:
            same = (f.metadata() or {}) == facts.metadata
    except Exception as exc:
        raise _unverified(name, f"safetensors cannot read its sealed header: {exc}") from None
    if not same:
        raise _unverified(name, "its metadata differs from what was written")


def verify_shard_set(index_path: str, stored: list[MappedTensor], name: str) -> None:
    """The written set, read back as one shard set: no warnings, the planned keys, shapes, dtypes."""
    try:
        written = peek(index_path)
    except CheckpointError as exc:
        raise _unverified(name, exc.message) from None
    why = ""
    if written.format is not Format.HF_SHARDED:
        why = "it is not read as a shard set"
    elif written.warnings:
        why = written.warnings[0]
    else:
        seen = {n.key: n.tensor for n in written.root.tensors()}
        for t in stored:
            info = seen.get(t.output_key)
            if info is None or info.shape != t.shape or info.dtype != t.output_dtype:
                why = f"{t.output_key} is not as planned"
                break
        if not why and len(seen) != len(stored):
            why = "it holds other tensors than planned"
    if why:
        raise _unverified(name, why)


def _unverified(name: str, why: str) -> ExportError:
    return ExportError(f"The written “{name}” did not verify: {why}; it was not kept.", why, "verify-failed")


def _same_values(out: torch.Tensor, expected: torch.Tensor) -> bool:
    """Bit-for-bit equality after the conversion (torch.equal on the raw bytes: NaN equals NaN)."""
    import torch

    if out.dtype != expected.dtype or tuple(out.shape) != tuple(expected.shape):
        return False
    a, b = raw_bytes(out), raw_bytes(expected)
    for wide in (torch.int64, torch.int32, torch.int16):
        if (
            a.numel() % wide.itemsize == 0
            and a.data_ptr() % wide.itemsize == 0 == b.data_ptr() % wide.itemsize
        ):
            return torch.equal(a.view(wide), b.view(wide))  # same bits, 4-8x fewer comparisons
    return torch.equal(a, b)


def _same_view_values(out: torch.Tensor, src: torch.Tensor, dtype: str) -> bool:
    """``out`` equals ``src`` converted to ``dtype``; a view that repeats its storage's elements
    (stride 0, overlapping strides) is compared over the storage it reaches, never expanded."""
    if tuple(out.shape) != tuple(src.shape):
        return False
    if out.stride() == src.stride() and out.storage_offset() == src.storage_offset() and src.numel():
        reach = sum((n - 1) * st for n, st in zip(src.shape, src.stride(), strict=True)) + 1
        if reach < src.numel():
            return _same_values(_reached(out, reach), converted(_reached(src, reach), dtype))
    return _same_values(out, converted(src, dtype))


def _reached(t: torch.Tensor, reach: int) -> torch.Tensor:
    """The ``reach`` storage elements a view spans, from its offset, as a 1-D tensor."""
    import torch

    return torch.empty(0, dtype=t.dtype).set_(t.untyped_storage(), t.storage_offset(), (reach,), (1,))


def _rewritten_allowances(source: ExportSource, written: CheckpointIndex, name: str) -> list[Any]:
    """The objects the source needed allowed, under the names the written file uses for them
    (the pickler writes each under its own name: numpy 1's ``numpy.core.multiarray._reconstruct``
    becomes numpy 2's ``numpy._core.multiarray._reconstruct``); a name the written file needs
    beyond those makes it fail verification, as nothing else was allowed."""
    from inspector.core.safety import real_name

    allowed = list(source.allowed)
    by_name: dict[str, Any] = {}
    for item in source.allowed:
        obj, as_named = item if isinstance(item, tuple) else (item, real_name(item))
        by_name[as_named] = obj
        by_name.setdefault(real_name(obj) or as_named, obj)
    for g in dict.fromkeys(g.qualname for g in written.unsafe_globals):
        if g not in by_name:
            raise _unverified(name, f"it needs {escape_text(g)}, which the source did not need allowed")
        allowed.append((by_name[g], g))
    return allowed


def _verify_torch_values(
    plan: ExportPlan,
    mapping: KeyMapping,
    source: ExportSource,
    temp: str,
    name: str,
    index: CheckpointIndex,
    check: Callable[[], None],
) -> None:
    from torch import nn

    mmap = plan.format == "pth"
    # A trusted source's rewrite is read the same way; otherwise only what the source needed.
    allowed = [] if plan.trusted else _rewritten_allowances(source, index, name)
    try:
        written = torch_load(temp, plan, mmap, allowed, [g.qualname for g in index.globals])
    except CheckpointError as exc:
        raise _unverified(name, f"torch.load cannot read it ({exc.message})") from None
    found = dict(tensors_of(written))
    for t in mapping.tensors:
        check()
        out = found.get(t.output_path)
        if out is None:
            raise _unverified(name, f"torch does not find {t.output_key or 'the tensor'}")
        src = source.tensor(t)
        ok = _same_view_values(out, src, t.output_dtype)
        if ok and src.requires_grad != out.requires_grad:
            ok = False
        if ok and isinstance(src, nn.Parameter) != isinstance(out, nn.Parameter):
            ok = False
        if mmap:
            drop_pages(out.untyped_storage())
        source.done_with(t, src)
        if not ok:
            raise _unverified(name, f"the values of {t.output_key or 'the tensor'} differ from the source")


def _verify_safetensors_values(
    mapping: KeyMapping, source: ExportSource, temp: str, name: str, facts: WrittenFacts,
    check: Callable[[], None], read_back: ValuesReadBack | None,
) -> None:  # fmt: skip
    """Keys, metadata, dtypes and shapes through ``safe_open``; values through a private mapping of
    the file (safe_open maps the whole file for as long as it is open, which would keep every page
    resident), compared bit for bit with the converted source: those ``read_back`` compared while
    the file was written, the others now."""
    from safetensors import safe_open

    try:
        with safe_open(temp, framework="numpy") as f:
            keys = set(f.keys())
            want = {t.output_key for t in mapping.tensors if t.alias_of is None}
            if keys != want:
                raise _unverified(name, "safetensors lists other keys than the plan")
            if (f.metadata() or {}) != facts.metadata:
                raise _unverified(name, "its metadata differs from what was written")
            for t in mapping.tensors:
                if t.alias_of is None:
                    part = f.get_slice(t.output_key)
                    if (
                        tuple(part.get_shape()) != t.shape
                        or part.get_dtype() != SAFETENSORS_CODES[t.output_dtype]
                    ):
                        raise _unverified(
                            name, f"safetensors reads {t.output_key} with another shape or dtype"
                        )
    except ExportError:
        raise
    except Exception as exc:
        raise _unverified(name, f"safetensors cannot read it: {exc}") from None
    compared = read_back.finish(check) if read_back is not None else set()
    with open(temp, "rb") as fh:
        header, data_start = _written_header(fh)
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        for t in mapping.tensors:
            if t.alias_of is not None or not t.nbytes or t.output_key in compared:
                continue
            check()
            begin, end = header[t.output_key]["data_offsets"]
            ok = _written_matches(mapped, data_start + begin, end - begin, source, t)
            _drop_range(mapped, data_start + begin, end - begin)
            if not ok:
                raise _unverified(name, f"the values of {t.output_key} differ from the source")
    finally:
        with contextlib.suppress(BufferError):
            mapped.close()


def _written_header(fh: Any) -> tuple[dict[str, Any], int]:
    """The written safetensors header of the open copy ``fh``, and where its data starts."""
    (header_len,) = struct.unpack("<Q", fh.read(8))
    return json.loads(fh.read(header_len)), 8 + header_len


def _written_matches(mapped: mmap.mmap, at: int, nbytes: int, source: ExportSource, t: MappedTensor) -> bool:
    """The ``nbytes`` at ``at`` of a map of the copy are ``t``'s, as planned; the source's pages
    this read touched are handed back."""
    written = np.frombuffer(mapped, dtype=np.uint8, count=nbytes, offset=at)
    ok = _same_written(written, source, t)
    del written
    source.done_with(t, None)
    return ok


def _same_written(written: np.ndarray[Any, Any], source: ExportSource, t: MappedTensor) -> bool:
    """The written bytes of ``t`` are the source's, converted as planned (torch converts)."""
    pos = 0
    if t.converted or source.direct is None:
        for expected in output_blocks(source.tensor(t), t.output_dtype):
            n = expected.numel()
            if not same_bytes(written[pos : pos + n], expected.numpy()):
                return False
            pos += n
        return pos == written.size
    for block in array_blocks(source.array(t)):
        if not same_bytes(written[pos : pos + block.size], block):
            return False
        pos += block.size
    return pos == written.size


def _drop_range(mapped: mmap.mmap, start: int, nbytes: int) -> None:
    """Hand the pages of a compared range back to the kernel, so the whole file never stays resident."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    begin = start - start % mmap.PAGESIZE
    if advice is not None and start + nbytes > begin:
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(advice, begin, start + nbytes - begin)
