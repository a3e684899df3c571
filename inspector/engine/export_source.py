"""What an export reads: the source's static read, judged by the safety policy when torch will see
it; the plan mapped onto it for this machine's devices; and the source opened once for every file
written from it.

How the source is read is ``export_plan.source_read``'s decision: a safetensors target (and a
torch-format copy of a safetensors file, a shard set or a DCP folder) is read through the engine's
one tensor source (``sources.open_source``), so no pickle of the file is run and nothing needs
allowing or trusting. A torch-format copy of a torch file is read with ``torch.load(weights_only=True,
mmap=True)`` with the allowed globals, or trusted (the legacy format cannot be mapped, so torch reads
it whole), because only the loaded object keeps what a torch file holds beside raw tensors (shared
storages, parameters, non-tensor values). A direct source needs no torch (``ExportSource.array``);
``tensor``, ``tensors_of``, ``torch_load`` and the device check import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import ExportPlan, KeyMapping, MappedTensor, SourceRead, map_keys, source_read
from inspector.core.model import CheckpointIndex, PathPart, path_part
from inspector.core.storage_layout import StorageLayout, storage_layout
from inspector.remote.locations import is_url
from inspector.remote.static_read import LOAD_NEEDS_FILE, open_remote, peek_location

from .direct_read import TensorSource
from .export_results import ExportError
from .storage_pages import drop_pages
from .tensor_array import TensorArray

if TYPE_CHECKING:
    import torch


def read_source_index(plan: ExportPlan) -> CheckpointIndex:
    """The static read of the plan's source; a source that cannot be read refuses the export, and
    one that ``torch.load`` would open is judged by the safety policy first."""
    try:
        index, _ = peek_location(plan.source)
    except CheckpointError as exc:
        raise ExportError(exc.message, exc.details, "refused") from None
    if source_read(index.format, plan.format) is SourceRead.TORCH_LOAD:
        if is_url(plan.source):
            raise ExportError(LOAD_NEEDS_FILE, None, "refused")
        _check_safety(plan, index)
    return index


def checked_mapping(index: CheckpointIndex, plan: ExportPlan, devices: list[str] | None) -> KeyMapping:
    """The plan mapped onto the source's tensors; refused when it has problems or names absent devices
    (``devices``: where tensors may be exported onto; by default what this machine has)."""
    mapping = map_keys(index, plan)
    if not mapping.ok:
        raise ExportError(" ".join(mapping.problems), None, "refused")
    requested = plan.requested_devices()
    if not requested:
        return mapping
    if devices is None:
        from .devices import visible_devices  # torch: only a plan that names devices asks it

    allowed = devices if devices is not None else visible_devices()
    missing = [d for d in requested if d not in allowed]
    if missing:
        raise ExportError(
            f"This machine has no {', '.join(missing)} (it has {', '.join(allowed)}), so tensors "
            "cannot be exported onto it.",
            None,
            "refused",
        )
    return mapping


@dataclass
class ExportSource:
    """The open source: the loaded object (``torch.load``) or a direct tensor source."""

    obj: Any
    mapped: bool  # storages are slices of a private file mapping of an mmap load (pages may be dropped)
    direct: TensorSource | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # a safetensors source's own metadata
    records: StorageLayout | None = None  # where the source file's storage records lie
    #: What the loaded object needed allowed: the objects, each under the names the file used.
    allowed: list[Any] = field(default_factory=list)
    _files: dict[str, BinaryIO] = field(default_factory=dict, repr=False)

    def data_file(self, path: str) -> BinaryIO:
        """The source file ``path`` (one of ``file_range``'s) open for reading, opened once for
        every file written from this source."""
        opened = self._files.get(path)
        if opened is None:
            opened = self._files[path] = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        return opened

    def close(self) -> None:
        """Close what this source opened itself (not the direct source or the records it was given)."""
        while self._files:
            _, opened = self._files.popitem()
            opened.close()

    def array(self, t: MappedTensor) -> TensorArray:
        """``t``'s elements read by a direct source, through NumPy alone."""
        assert self.direct is not None, "only a direct source reads arrays"
        return self.direct.array(self.direct.find(path=t.source_path))

    def tensor(self, t: MappedTensor) -> torch.Tensor:
        """``t`` as a torch tensor (imports torch): of the direct source, or of the loaded object."""
        import torch

        if self.direct is not None:
            return self.direct.tensor(self.direct.find(path=t.source_path))
        item = self.obj
        for part in t.source_path:
            item = child_at(item, part)
        assert isinstance(item, torch.Tensor)
        return item

    def file_range(self, t: MappedTensor) -> tuple[str, int] | None:
        """(file, byte) where ``t``'s storage record starts, when its bytes lie in a source file as is."""
        if self.direct is not None:
            node = self.direct.find(path=t.source_path)
            return self.direct.file_range(node.tensor) if node.tensor is not None else None
        if self.records is None or not t.storage_key:
            return None
        try:
            return self.records.path, self.records.span(t.storage_key).offset
        except CheckpointError:
            return None

    def done_with(self, t: MappedTensor, tensor: torch.Tensor | None) -> None:
        """Hand the pages a tensor's read touched back to the kernel."""
        if self.direct is not None:
            with contextlib.suppress(CheckpointError):
                self.direct.release(self.direct.find(path=t.source_path))
        elif self.mapped and tensor is not None:
            drop_pages(tensor.untyped_storage())


def child_at(item: Any, part: PathPart) -> Any:
    """The entry of a loaded container (dict, list, tuple, object) that the tree names ``part``."""
    if isinstance(item, dict):
        for k, v in item.items():
            if path_part(k) == part:
                return v
        raise KeyError(part)
    if isinstance(item, list | tuple):
        return item[int(part)]
    return vars(item)[str(part)]


def tensors_of(obj: Any, path: tuple[PathPart, ...] = ()) -> Iterator[tuple[tuple[PathPart, ...], Any]]:
    """Every tensor of a loaded object with its path (each container entered once)."""
    import torch

    seen: set[int] = set()
    stack: list[tuple[tuple[PathPart, ...], Any]] = [(path, obj)]
    while stack:
        p, item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield p, item
            continue
        if isinstance(item, dict):
            children = [(path_part(k), v) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = list(enumerate(item))
        else:
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.extend(((*p, part), child) for part, child in reversed(children))


@contextlib.contextmanager
def open_export_source(plan: ExportPlan, index: CheckpointIndex) -> Iterator[ExportSource]:
    """The source of an export, open once for every file written from it: read as
    ``export_plan.source_read`` says."""
    if source_read(index.format, plan.format) is not SourceRead.TORCH_LOAD:
        from .sources import open_source

        try:
            direct = open_source(plan.source, index)
        except CheckpointError as exc:
            raise ExportError(exc.message, exc.details, "failed") from None
        try:
            metadata = _safetensors_metadata(plan.source) if index.format.string_metadata else {}
            source = ExportSource(None, False, direct, metadata)
            try:
                yield source
            finally:
                source.close()
        finally:
            direct.close()
        return
    mmap = index.format.mmap
    allowed = [] if plan.trusted else _allowed_objects(plan.source, plan.allowed_globals)
    obj = torch_load(plan.source, plan, mmap, allowed, [g.qualname for g in index.globals])
    try:
        records: StorageLayout | None = storage_layout(plan.source, index)
    except CheckpointError:
        records = None
    source = ExportSource(obj, mmap, records=records, allowed=allowed)
    try:
        yield source
    finally:
        source.close()
        if records is not None:
            records.close()


def _safetensors_metadata(path: str) -> dict[str, str]:
    """A safetensors file's own ``__metadata__`` (carried over into a safetensors export)."""
    with open_remote(path) if is_url(path) else open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _check_safety(plan: ExportPlan, index: CheckpointIndex) -> None:
    """The safety policy's answer for the source, as for a load in the window: a dangerous file,
    a TorchScript archive or a name that may never be allowed is refused unless trusted."""
    from inspector.core.load_options import LoadOptions
    from inspector.core.safety import verdict_of
    from inspector.engine.loader import LoadError, check_handed_to_torch

    options = LoadOptions(weights_only=not plan.trusted, allowed_globals=plan.allowed_globals)
    try:
        check_handed_to_torch(os.path.basename(plan.source) or plan.source, verdict_of(index), options)
    except LoadError as exc:
        raise ExportError(exc.message, exc.details, "unsafe") from None


def torch_load(path: str, plan: ExportPlan, mmap: bool, allowed: list[Any], needed: list[str]) -> Any:
    """``torch.load`` of ``path`` on the cpu: weights-only allowing ``allowed`` (objects paired with
    names, as the loader resolves them) and what torch's own modules add for ``needed``, or
    trusted when the plan says so."""
    import torch

    from inspector.core.load_options import LoadOptions
    from inspector.engine.loader import LoadError, classify_error, import_torch_allowances

    with open(path, "rb") as f:
        head = f.read(16)
    try:
        if not plan.trusted:
            import_torch_allowances(needed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(allowed):
                return torch.load(path, map_location="cpu", weights_only=not plan.trusted, mmap=mmap)
    except Exception as exc:
        options = LoadOptions(map_location="cpu", allowed_globals=plan.allowed_globals)
        error: LoadError = classify_error(path, options, exc, head)
        raise ExportError(error.message, error.details, "failed") from None


def _allowed_objects(path: str, allowed: tuple[str, ...]) -> list[Any]:
    """The loader's own allowlist resolution: each name is judged on the object it resolves to."""
    from inspector.engine.loader import LoadError, resolve_allowed_globals

    try:
        return resolve_allowed_globals(os.path.basename(path), allowed)
    except LoadError as exc:  # a global that may never be allowed, or cannot be found
        raise ExportError(
            exc.message, exc.details, "unsafe" if exc.kind == "refused-global" else "refused"
        ) from None
