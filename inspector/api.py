"""The Python API for notebooks and scripts: ``inspector.open(path_or_url)`` reads a checkpoint
statically (nothing in it is executed, torch is not imported) and answers with the same objects the
command line prints. ``stats`` and ``values`` read the tensor's bytes with NumPy; ``diff`` and
``export`` may import torch, when called.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inspector.core.export_plan import ExportPlan
from inspector.core.formatting import escape_text
from inspector.core.model import CheckpointIndex, Node
from inspector.core.peek import peek
from inspector.core.report import globals_json, index_to_json
from inspector.core.safety import verdict_of

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Checkpoint", "ExportPlan", "Tensor", "open"]

_HTML_ROWS = 50


@dataclass(frozen=True)
class Tensor:
    """One tensor as the static read knows it: where it is, its shape and dtype, where it was saved."""

    key: str
    shape: tuple[int | None, ...]  # None: a ragged dimension of a nested tensor
    dtype: str
    device: str  # the device it was saved on (``cpu``, ``cuda:0`` …)
    nbytes: int


class Checkpoint:
    """A checkpoint read statically. Properties cost nothing more; the methods that read values
    (``stats``, ``values``, ``diff``, ``export``) read tensors straight from the file, never
    unpickling it."""

    def __init__(self, index: CheckpointIndex, source: str | None = None) -> None:
        self._index = index
        self._source = source if source is not None else index.path  # a URL keeps its credentials here

    @property
    def path(self) -> str:
        return self._index.path

    @property
    def format(self) -> str:
        return str(self._index.format)

    @property
    def tensors(self) -> list[Tensor]:
        """Every tensor in file order: key, shape, dtype, saved device and bytes."""
        out = []
        for node in self._index.root.tensors():
            t = node.tensor
            assert t is not None
            out.append(Tensor(node.key, tuple(t.shown_shape), t.dtype, t.saved_device, t.nbytes))
        return out

    @property
    def tree(self) -> Node:
        """The root of the tree the window shows (containers, tensors, values)."""
        return self._index.root

    @property
    def verdict(self) -> str:
        """The scan's verdict: ``safe``, ``unknown`` or ``dangerous`` (as ``scan`` prints it)."""
        return verdict_of(self._index).verdict.word

    @property
    def globals(self) -> list[dict[str, Any]]:
        """Every global the pickles reference, as ``scan --json`` lists them (verdict, where, how often)."""
        return globals_json(self._index.globals)

    @property
    def summary(self) -> dict[str, Any]:
        """The facts of ``info --json`` without the per-tensor and per-global lists."""
        facts = index_to_json(self._index)
        for listed in ("tensors", "globals"):
            facts.pop(listed)
        facts["format"] = str(facts["format"])
        facts["tensor_count"] = self._index.tensor_count
        facts["verdict"] = self.verdict
        return facts

    def stats(self, key: str) -> dict[str, Any]:
        """Statistics of one tensor, as ``stats --json`` gives them: its bytes read from the file
        with NumPy (no torch, no ``torch.load``)."""
        from inspector.engine.sources import open_source
        from inspector.engine.stats import tensor_stats

        with open_source(self._source, self._index) as source:
            result: dict[str, Any] = tensor_stats(source.array(source.find(key))).to_json()
            return result

    def values(self, key: str, index: Any = ()) -> np.ndarray[Any, Any]:
        """The values of one tensor (``index`` as numpy indexing, e.g. ``(0, slice(0, 8))``), as a
        numpy array; dtypes numpy lacks come exactly widened: bfloat16 and float8 as float32,
        complex32 as complex64. Read with NumPy, without torch."""
        import numpy as np

        from inspector.engine.sources import open_source
        from inspector.engine.tensor_array import value_kind, widened

        with open_source(self._source, self._index) as source:
            array = source.array(source.find(key))
            picked = np.asarray(array.bits()[index])
            kind, _ = value_kind(array.dtype)
            if kind in ("float", "complex") and picked.dtype.kind not in "fc":
                wide = widened(picked, array.dtype)
                return wide.astype(np.complex64 if kind == "complex" else np.float32)
            copied: np.ndarray[Any, Any] = picked.copy()
            return copied

    def diff(self, other: Checkpoint | str | os.PathLike[str]) -> dict[str, Any]:
        """Tensor by tensor comparison with another checkpoint, as ``diff --json`` reports it.
        Imports torch; reads both files' bytes directly."""
        from inspector.engine.diff import diff_checkpoints

        b = other._source if isinstance(other, Checkpoint) else os.fspath(other)
        report: dict[str, Any] = diff_checkpoints(self._source, b).to_json()
        return report

    def export(self, target: str | os.PathLike[str], plan: ExportPlan | None = None) -> dict[str, Any]:
        """Write a verified copy to ``target`` as ``plan`` says (default: a plain copy in the
        format the name suggests); returns the export report. Imports torch."""
        from dataclasses import replace

        from inspector.core.export_plan import format_for_path
        from inspector.engine.export import export_checkpoint

        dst = os.fspath(target)
        if plan is None:
            plan = ExportPlan(self._source, dst, format_for_path(dst))
        else:
            plan = replace(plan, source=self._source, target=dst, temp_path="")
        report: dict[str, Any] = export_checkpoint(plan).to_json()
        return report

    def __repr__(self) -> str:
        return (
            f"<Checkpoint {escape_text(self.path)!s}: {self.format}, {self._index.tensor_count} tensors, "
            f"{self.verdict}>"
        )

    def _repr_html_(self) -> str:
        """A compact table for Jupyter: the verdict, then the first tensors."""
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(escape_text(t.key))}</td><td>{e(_shape_text(t.shape))}</td>"
            f"<td>{e(t.dtype)}</td><td>{e(escape_text(t.device))}</td><td>{t.nbytes:,}</td></tr>"
            for t in self.tensors[:_HTML_ROWS]
        )
        more = self._index.tensor_count - _HTML_ROWS
        tail = f"<tr><td colspan='5'>… {more} more</td></tr>" if more > 0 else ""
        return (
            f"<p><b>{e(escape_text(os.path.basename(self.path)))}</b> — {e(self.format)}, "
            f"{self._index.tensor_count} tensors, verdict <b>{e(self.verdict)}</b></p>"
            "<table><tr><th>key</th><th>shape</th><th>dtype</th><th>saved on</th><th>bytes</th></tr>"
            f"{rows}{tail}</table>"
        )


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "×".join("*" if n is None else str(n) for n in shape) or "scalar"


def open(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint statically: a file, an HF shard set's index or folder, a DCP folder, or
    a URL (``https://``, ``s3://``, ``hf://``; needs the ``remote`` extra) read where it lives by
    ranged reads. Raises ``inspector.core.errors.CheckpointError`` with a sentence about the file."""
    text = os.fspath(path)
    from inspector.remote.locations import is_url

    if is_url(text):
        from inspector.remote.static_read import peek_url

        index, _ = peek_url(text)
        return Checkpoint(index, text)
    return Checkpoint(peek(text))
