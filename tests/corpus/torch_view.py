"""What torch itself loads from a corpus file: every tensor with its path, dtype and saved device.

Torch files are loaded with ``weights_only=True`` and a ``map_location`` callable that records each
storage's saved location, allowing the globals torch lists for the file (zip files) plus each one
its refusal names until it loads: that set is what ``weights_only`` needs.
TorchScript archives are loaded with ``torch.jit.load`` (these files are pinned by sha256; the
app itself never does this), safetensors files with the safetensors library.
"""

from __future__ import annotations

import contextlib
import pickle
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from inspector.core.model import PathPart, join_key
from tests.checkpoints import dtype_name, walk
from tests.corpus import stand_ins
from tests.corpus.fetch import CorpusFile

#: How torch's weights-only unpickler names what it refused.
_REFUSED = (re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global"),
            re.compile(r"but got <class '([^']+)'>"))  # fmt: skip
_MAX_NEEDS = 64


@dataclass(frozen=True)
class LoadedTensor:
    """One tensor as torch loads it, with the location its storage was saved on."""

    path: tuple[PathPart, ...]
    tensor: torch.Tensor
    saved_device: str

    @property
    def key(self) -> str:
        return join_key(self.path)

    def facts(self) -> dict[str, Any]:
        """What the static tree must agree on."""
        t = self.tensor
        return {"shape": tuple(t.shape), "dtype": dtype_name(t.dtype), "saved_device": self.saved_device}


@dataclass
class TorchView:
    """Every tensor torch loads from one file, and the globals it needed allowed."""

    tensors: dict[tuple[PathPart, ...], LoadedTensor]
    needs: tuple[str, ...] = ()  # the globals weights-only loading needed allowed
    leaves: dict[tuple[PathPart, ...], Any] = field(default_factory=dict)  # every leaf, tensors too

    def by_key(self) -> dict[str, LoadedTensor]:
        return {t.key: t for t in self.tensors.values()}


def torch_needs(path: Path, fmt: str) -> tuple[str, ...]:
    """The globals outside weights-only that torch lists for a torch zip file (others: none)."""
    if fmt != "torch-zip":
        return ()
    return tuple(dict.fromkeys(str(g) for g in torch.serialization.get_unsafe_globals_in_checkpoint(path)))


def load_needing(path: Path, fmt: str) -> tuple[Any, dict[int, str], tuple[str, ...]]:
    """Load allowing torch's list, then each global a refusal names: (object, locations, needs)."""
    needs = list(torch_needs(path, fmt))
    while True:
        try:
            obj, locations = load_torch_file(path, tuple(needs))
            return obj, locations, tuple(needs)
        except pickle.UnpicklingError as exc:
            found = [m.group(1) for pattern in _REFUSED for m in [pattern.search(str(exc))] if m]
            if not found or found[0] in needs or len(needs) > _MAX_NEEDS:
                raise
            needs.append(found[0])


def load_torch_file(path: Path, needs: tuple[str, ...]) -> tuple[Any, dict[int, str]]:
    """``torch.load(weights_only=True)`` allowing exactly ``needs``: (object, storage → saved location)."""
    locations: dict[int, str] = {}

    def record(storage: Any, location: str) -> Any:
        locations[storage._cdata] = location
        return storage

    allowed = stand_ins.allowlist(needs)
    with torch.serialization.safe_globals(allowed) if allowed else contextlib.nullcontext():
        obj = torch.load(path, map_location=record, weights_only=True)
    return obj, locations


def torch_view(f: CorpusFile, path: Path) -> TorchView:
    if f.format == "safetensors":
        return _safetensors_view(path)
    if f.format == "torchscript":
        return _script_view(path)
    obj, locations, needs = load_needing(path, f.format)
    view = TorchView(tensors={}, needs=needs)
    for leaf_path, leaf in walk(obj):
        view.leaves[leaf_path] = leaf
        if isinstance(leaf, torch.Tensor):
            saved = locations[leaf.untyped_storage()._cdata]
            view.tensors[leaf_path] = LoadedTensor(leaf_path, leaf, saved)
    return view


def _safetensors_view(path: Path) -> TorchView:
    view = TorchView(tensors={})
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            view.tensors[(key,)] = LoadedTensor((key,), f.get_tensor(key), "cpu")
    view.leaves = {p: t.tensor for p, t in view.tensors.items()}
    return view


def _script_view(path: Path) -> TorchView:
    """Every tensor attribute of the loaded module tree (parameters, buffers and plain attributes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "torch.jit.load is deprecated"
        module = torch.jit.load(str(path))
    view = TorchView(tensors={})
    for name, value in _script_attributes(module):
        if isinstance(value, torch.Tensor):
            p = tuple(name.split("."))
            view.tensors[p] = LoadedTensor(p, value, str(value.device))
    view.leaves = {p: t.tensor for p, t in view.tensors.items()}
    return view


def _script_attributes(module: torch.jit.ScriptModule) -> Iterator[tuple[str, Any]]:
    yield from torch._C._jit_debug_module_iterators(module._c)["named_attributes_r"]
