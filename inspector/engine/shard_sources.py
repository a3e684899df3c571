"""Tensors of checkpoints saved in pieces, read one whole tensor at a time for export.

An HF shard set reads each tensor from its shard's mapping; a torch.distributed.checkpoint folder
assembles each tensor from its chunks, each chunk a small ``torch.save`` stream inside a ``.distcp``
file, loaded with ``weights_only=True``. Pickled non-tensor items of a DCP folder are never read.
"""

from __future__ import annotations

import io
import os
import warnings

import torch

from inspector.core.errors import CheckpointError
from inspector.core.layout import shard_path
from inspector.core.model import CheckpointIndex, Node, TensorInfo

from .direct_read import MappedCheckpoint, torch_dtype


class ShardSetSource:
    """``get_tensor(key)`` over an HF shard set or a DCP folder (the interface of ``safe_open``)."""

    def __init__(self, path: str, index: CheckpointIndex) -> None:
        self.path = path
        self.index = index
        self.name = f"“{os.path.basename(os.path.normpath(path)) or path}”"
        self._nodes: dict[str, Node] = {}
        for node in index.root.tensors():
            self._nodes.setdefault(node.key, node)
        self._mapped = MappedCheckpoint(path, index) if index.format == "hf-sharded" else None

    def keys(self) -> list[str]:
        return list(self._nodes)

    def metadata(self) -> dict[str, str]:
        return {}

    def get_tensor(self, key: str) -> torch.Tensor:
        node = self._nodes.get(key)
        if node is None or node.tensor is None:
            raise CheckpointError(f"{self.name} has no tensor named {key}.")
        if self._mapped is not None:
            return self._mapped.tensor(node)
        return self._assemble(node.key, node.tensor)

    def _assemble(self, key: str, info: TensorInfo) -> torch.Tensor:
        """A DCP tensor from its chunks; every element must be covered by some chunk."""
        dtype = torch_dtype(info.dtype)
        if dtype is None:
            raise CheckpointError(f"{key} in {self.name} has dtype {info.dtype}, which torch here lacks.")
        out = torch.empty(info.shape, dtype=dtype)
        covered = 0
        for chunk in info.chunks:
            full = shard_path(self.path, chunk.file, self.name)
            with open(full, "rb") as f:
                f.seek(chunk.byte_offset)
                raw = f.read(chunk.byte_length)
            if len(raw) != chunk.byte_length:
                raise CheckpointError(
                    f"{self.name} is truncated: a chunk of {key} is missing in {chunk.file}."
                )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    part = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(
                    f"{self.name}: a chunk of {key} in {chunk.file} cannot be read.", str(exc)
                ) from None
            if not isinstance(part, torch.Tensor) or tuple(part.shape) != chunk.sizes or part.dtype != dtype:
                raise CheckpointError(
                    f"{self.name}: a chunk of {key} in {chunk.file} is not what .metadata says."
                )
            view = out
            for dim, (o, s) in enumerate(zip(chunk.offsets, chunk.sizes, strict=True)):
                view = view.narrow(dim, o, s)
            view.copy_(part)
            covered += part.numel()
        if covered < info.numel:
            raise CheckpointError(f"{self.name}: the chunks of {key} do not cover the whole tensor.")
        return out

    def close(self) -> None:
        if self._mapped is not None:
            self._mapped.close()
