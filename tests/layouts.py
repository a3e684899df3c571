"""Checkpoints in several files, and views torch itself would refuse, for the layout and direct-read tests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file


def sample_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {
        "model.layers.0.attn.weight": torch.randn(4, 6, generator=g),
        "model.layers.1.attn.weight": torch.randn(4, 6, generator=g),
        "model.embed.weight": torch.randn(10, 3, generator=g).to(torch.bfloat16),
        "lm_head.bias": torch.arange(5, dtype=torch.int64),
    }


def write_hf_set(folder: Path, state: dict[str, torch.Tensor], total_size: int | None = None) -> Path:
    """A two-shard set: the first half of the keys in safetensors, the rest in a torch .bin file."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(state)
    first, second = keys[: len(keys) // 2], keys[len(keys) // 2 :]
    save_file({k: state[k] for k in first}, str(folder / "model-00001-of-00002.safetensors"))
    torch.save({k: state[k] for k in second}, folder / "model-00002-of-00002.bin")
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first}
    weight_map.update({k: "model-00002-of-00002.bin" for k in second})
    size = sum(t.nbytes for t in state.values()) if total_size is None else total_size
    index = folder / "model.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": size}, "weight_map": weight_map}))
    return index


def write_dcp(folder: Path, state: dict[str, object]) -> Path:
    """A torch.distributed.checkpoint folder written by torch itself, in this one process."""
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save(state, checkpoint_id=str(folder))
    return folder


class ScaledLinear(torch.nn.Module):
    """A tiny module whose scripted forward has a recognisable line (``* 2.5``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(x)) * 2.5


def write_torchscript(path: Path) -> Path:
    """``torch.jit.save`` of a scripted ``ScaledLinear``: code members under ``<stem>/code/``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(ScaledLinear()), str(path))
    return path


def write_torch_tar(path: Path, obj: object) -> Path:
    """A torch 0.1 tar checkpoint, built by hand the way torch's ``legacy_load`` reads it back.

    Members: ``sys_info``, ``pickle`` (the object; tensors as persistent ids ``str(key)``),
    ``tensors`` (count, then per tensor ``(key, storage key, tensor type)`` and its metadata) and
    ``storages`` (count, then per storage ``(key, location, storage type)``, an int64 element count
    and the raw bytes, then the list of views). Tensors that share a storage share its key.
    """
    import io
    import pickle
    import struct
    import sys
    import tarfile

    tensors: dict[int, torch.Tensor] = {}
    storages: dict[int, torch.Tensor] = {}  # storage key → a contiguous tensor over its elements

    class Writer(pickle.Pickler):
        def persistent_id(self, o: object) -> str | None:
            if isinstance(o, torch.Tensor):
                key = id(o)
                tensors[key] = o
                base = o._base if o._base is not None else o
                storages.setdefault(id(base), base.detach().contiguous().view(-1))
                return str(key)
            return None

    main = io.BytesIO()
    Writer(main, protocol=2).dump(obj)
    tensors_f = io.BytesIO()
    pickle.dump(len(tensors), tensors_f, protocol=2)
    for key, t in tensors.items():
        base = t._base if t._base is not None else t
        pickle.dump((key, id(base), getattr(torch, t.type().split(".")[-1])), tensors_f, protocol=2)
        tensors_f.write(struct.pack("<i", t.dim()) + b"\0" * 4)
        tensors_f.write(struct.pack(f"<{t.dim()}q", *t.shape))
        tensors_f.write(struct.pack(f"<{t.dim()}q", *t.stride()))
        tensors_f.write(struct.pack("<q", t.storage_offset()))
    storages_f = io.BytesIO()
    pickle.dump(len(storages), storages_f, protocol=2)
    storage_types = {torch.float32: torch.FloatStorage, torch.int64: torch.LongStorage}
    for key, flat in storages.items():
        pickle.dump((key, "cpu", storage_types[flat.dtype]), storages_f, protocol=2)
        storages_f.write(struct.pack("<q", flat.numel()))
        storages_f.write(flat.numpy().tobytes())
    pickle.dump([], storages_f, protocol=2)
    sys_info = {"protocol_version": 1001, "little_endian": sys.byteorder == "little",
                "type_sizes": {"short": 2, "int": 4, "long": 4}}  # fmt: skip
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        members = {"sys_info": pickle.dumps(sys_info, protocol=2), "pickle": main.getvalue(),
                   "tensors": tensors_f.getvalue(), "storages": storages_f.getvalue()}  # fmt: skip
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_dcp_chunks(
    folder: Path, tensors: dict[str, tuple[tuple[int, ...], list[tuple[object, ...]]]], files: int = 1
) -> Path:
    """A DCP folder written the way torch's FileSystemWriter lays it out, with chunks chosen here.

    ``tensors``: key → (global shape, [(chunk offsets, chunk tensor[, sizes .metadata claims]), …]);
    every chunk is a ``torch.save`` stream in ``__0_0.distcp`` (chunk i of a tensor in
    ``__{i % files}_0.distcp``, as ranks write them) and ``.metadata`` is pickled from torch's own
    records (so a test can give a tensor several chunks, or chunks that lie).
    """
    import io
    import pickle

    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import (
        ChunkStorageMetadata,
        Metadata,
        MetadataIndex,
        TensorProperties,
        TensorStorageMetadata,
    )

    folder.mkdir(parents=True, exist_ok=True)
    datas = [io.BytesIO() for _ in range(files)]
    state: dict[str, object] = {}
    storage: dict[object, object] = {}
    for key, (shape, chunks) in tensors.items():
        records = []
        for i, (offsets, chunk, *claimed) in enumerate(chunks):
            assert isinstance(chunk, torch.Tensor)
            sizes = claimed[0] if claimed else tuple(chunk.shape)
            data, name = datas[i % files], f"__{i % files}_0.distcp"
            start = data.tell()
            torch.save(chunk.clone(), data)
            storage[MetadataIndex(key, torch.Size(offsets))] = _StorageInfo(name, start, data.tell() - start)
            records.append(ChunkStorageMetadata(torch.Size(offsets), torch.Size(sizes)))
        first = chunks[0][1] if chunks else None
        dtype = first.dtype if isinstance(first, torch.Tensor) else torch.float32
        state[key] = TensorStorageMetadata(TensorProperties(dtype), torch.Size(shape), records)
    for rank, data in enumerate(datas):
        (folder / f"__{rank}_0.distcp").write_bytes(data.getvalue())
    with open(folder / ".metadata", "wb") as f:
        pickle.dump(Metadata(state_dict_metadata=state, storage_data=storage), f)
    return folder


def write_view(path: Path, shape: tuple[int, ...], stride: tuple[int, ...], numel: int = 4) -> Path:
    """A torch zip holding ``{"w": view}``: a float32 view of ``shape``/``stride`` over a storage of
    ``numel`` elements, pickled by hand so that it may claim what torch refuses to build."""
    import collections
    import io
    import pickle

    from tests.hostile import torch_zip_bytes, zip_replacing_data_pkl

    class Storage:
        pass

    class View:
        def __reduce__(self) -> tuple[object, ...]:
            args = (Storage(), 0, shape, stride, False, collections.OrderedDict())
            return torch._utils._rebuild_tensor_v2, args

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if isinstance(obj, Storage) else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"w": View()})
    path.write_bytes(zip_replacing_data_pkl(torch_zip_bytes({"w": torch.zeros(numel)}), buf.getvalue()))
    return path
