"""The formats the static reader tells apart, and what each one allows.

A ``Format`` is the value of ``CheckpointIndex.format`` (a string: the JSON ``format`` is its value)
and knows its capabilities; every consumer asks these properties instead of comparing names. Each
reader declares the formats it yields (``core/readers.py``, ``core/peek.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Format(enum.StrEnum):
    """One format of checkpoint, by the name the JSON report gives it."""

    TORCH_ZIP = "torch-zip"  # torch.save's zip archive
    TORCHSCRIPT = "torchscript"  # a zip archive torch.jit.save wrote (code and constants beside data.pkl)
    TORCH_LEGACY = "torch-legacy"  # torch.save's stream of pickles (_use_new_zipfile_serialization=False)
    TORCH_TAR = "torch-tar"  # the torch 0.1 tar archive
    PICKLE = "pickle"  # a plain pickle, not in torch.save's layout
    POLYGLOT = "polyglot"  # a zip archive hidden in or behind another file, which torch does not read
    SAFETENSORS = "safetensors"
    HF_SHARDED = "hf-sharded"  # a Hugging Face shard set: an *.index.json and the files it names
    DCP = "dcp"  # a torch.distributed.checkpoint folder

    @property
    def torch_load(self) -> bool:
        """``torch.load`` reads the file by its content (TorchScript it hands to ``torch.jit.load``;
        the 0.1 tar it reads only with ``weights_only=False``). Recent torch also opens a path
        ending in ``.safetensors``, by its name, through the safetensors library."""
        return _CAPABILITIES[self].torch_load

    @property
    def mmap(self) -> bool:
        """``torch.load(..., mmap=True)`` maps the file instead of reading it (zip archives only)."""
        return _CAPABILITIES[self].mmap

    @property
    def zip_records(self) -> bool:
        """Its storages are records of a zip archive, found through the archive's directory."""
        return _CAPABILITIES[self].zip_records

    @property
    def located_records(self) -> bool:
        """The static read located every storage's bytes (``CheckpointIndex.storage_spans``)."""
        return _CAPABILITIES[self].located_records

    @property
    def direct_reads(self) -> bool:
        """One tensor of the file can be read from its bytes alone, without loading the file."""
        return self.zip_records or self.located_records

    @property
    def several_files(self) -> bool:
        """The checkpoint is made of several files: the tree shows each tensor's file, and
        ``torch.load`` cannot open it whole."""
        return _CAPABILITIES[self].several_files

    @property
    def hf_shard(self) -> bool:
        """A file of this format may be one shard of a Hugging Face set (transformers loads it)."""
        return _CAPABILITIES[self].hf_shard

    @property
    def exportable(self) -> bool:
        """The engine can read every tensor of it to write a copy (of an archive that holds code,
        its weights only)."""
        return _CAPABILITIES[self].exportable

    @property
    def holds_code(self) -> bool:
        """It carries code that runs when it is loaded (TorchScript), whatever its pickles hold."""
        return _CAPABILITIES[self].holds_code

    @property
    def flat(self) -> bool:
        """It is one flat map of tensor names to tensors: the whole checkpoint is the model."""
        return _CAPABILITIES[self].flat

    @property
    def string_metadata(self) -> bool:
        """Its header carries a map of strings (safetensors' ``__metadata__``), which export keeps."""
        return _CAPABILITIES[self].string_metadata


@dataclass(frozen=True, slots=True)
class _Capabilities:
    torch_load: bool = False
    mmap: bool = False
    zip_records: bool = False
    located_records: bool = False
    several_files: bool = False
    hf_shard: bool = False
    exportable: bool = False
    holds_code: bool = False
    flat: bool = False
    string_metadata: bool = False


_CAPABILITIES: dict[Format, _Capabilities] = {
    Format.TORCH_ZIP: _Capabilities(
        torch_load=True, mmap=True, zip_records=True, hf_shard=True, exportable=True
    ),
    Format.TORCHSCRIPT: _Capabilities(torch_load=True, zip_records=True, exportable=True, holds_code=True),
    Format.TORCH_LEGACY: _Capabilities(torch_load=True, located_records=True, hf_shard=True, exportable=True),
    Format.TORCH_TAR: _Capabilities(torch_load=True),
    Format.PICKLE: _Capabilities(),
    Format.POLYGLOT: _Capabilities(),
    Format.SAFETENSORS: _Capabilities(
        located_records=True, hf_shard=True, exportable=True, flat=True, string_metadata=True
    ),
    Format.HF_SHARDED: _Capabilities(several_files=True, exportable=True, flat=True),
    Format.DCP: _Capabilities(several_files=True, exportable=True),
}
