"""Builders of real checkpoints (made with torch in a test's folder) and of broken files.

Every ``build_*`` function takes a folder (and, where torch allows both, ``fmt`` = "zip" or
"legacy"), writes one file and returns a :class:`BuiltCheckpoint`: its path plus what the builder
knows that torch cannot tell after loading (which storages were tagged ``cuda:N`` when saved).
``BuiltCheckpoint.torch_view()`` loads the file with torch itself and lists what torch sees, so
tests compare the inspector against torch rather than against hand-written numbers.

The ``write_*`` functions make hostile or broken inputs and return the path only.
"""

from __future__ import annotations

import argparse
import collections
import io
import pickle
import random
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inspector.core.model import PathPart, join_key, path_part

#: Both on-disk layouts of ``torch.save``.
FORMATS = ("zip", "legacy")

#: What ``CheckpointIndex.format`` / the JSON ``format`` field says for each layout.
FORMAT_NAMES = {"zip": "torch-zip", "legacy": "torch-legacy"}

#: Every dtype torch 2.x can create and round-trip through its zip format. Left out: the
#: quantized dtypes (no plain tensors of them) and int1..int7 / uint1..uint7 (torch cannot
#: save them).
ZIP_DTYPES: tuple[torch.dtype, ...] = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
    torch.float8_e4m3fnuz,
    torch.float8_e5m2fnuz,
    torch.float8_e8m0fnu,
    torch.float4_e2m1fn_x2,
    torch.complex32,
    torch.complex64,
    torch.complex128,
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint16,
    torch.uint32,
    torch.uint64,
    torch.bits8,
    torch.bits16,
    torch.bits1x8,
    torch.bits2x4,
    torch.bits4x2,
)

#: The legacy writer has a storage class only for the classic dtypes: for float8, float4,
#: complex32, uint16/32/64 and the bits types ``torch.save`` succeeds but ``torch.load`` fails
#: (AttributeError on ``UntypedStorage.dtype``), so the legacy dtype file holds only these.
LEGACY_DTYPES: tuple[torch.dtype, ...] = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.complex64,
    torch.complex128,
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 → "bfloat16" (the name the inspector reports)."""
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------------------------
# What torch sees


@dataclass(frozen=True)
class TorchTensor:
    """One tensor as torch loads it, with the saved device the builder knows."""

    path: tuple[PathPart, ...]
    key: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    nbytes: int
    itemsize: int
    storage_offset: int
    stride: tuple[int, ...]
    storage_nbytes: int
    storage_id: int  # identity of the loaded storage: equal for tensors sharing one storage
    saved_device: str
    requires_grad: bool
    is_parameter: bool


@dataclass
class TorchView:
    """Everything ``torch.load(path, map_location="cpu", weights_only=True)`` shows of a file."""

    tensors: dict[tuple[PathPart, ...], TorchTensor]
    values: dict[tuple[PathPart, ...], Any]  # scalar leaves: int, float, str, bool, None, bytes
    objects: dict[tuple[PathPart, ...], Any]  # anything else (argparse.Namespace …)

    @property
    def total_params(self) -> int:
        """Numel of each distinct tensor once: aliases of the same view of a storage count once."""
        seen: dict[tuple[object, ...], int] = {}
        for t in self.tensors.values():
            seen[(t.storage_id, t.storage_offset, t.shape, t.stride, t.dtype)] = t.numel
        return sum(seen.values())

    @property
    def total_bytes(self) -> int:
        """Bytes of tensor data the file holds: each storage once."""
        return sum({t.storage_id: t.storage_nbytes for t in self.tensors.values()}.values())

    def sharing(self) -> set[frozenset[str]]:
        """Groups of keys whose tensors share one storage (groups of two or more)."""
        groups: dict[int, set[str]] = collections.defaultdict(set)
        for t in self.tensors.values():
            groups[t.storage_id].add(t.key)
        return {frozenset(g) for g in groups.values() if len(g) > 1}


@dataclass(frozen=True)
class BuiltCheckpoint:
    """A checkpoint file written by a builder and what the builder knows about it."""

    case: str
    fmt: str  # "zip" or "legacy"
    path: Path
    devices: Mapping[str, str] = field(default_factory=dict)  # key → saved device if not "cpu"
    safe_globals: tuple[Any, ...] = ()  # globals torch needs allowlisted to load the file

    @property
    def id(self) -> str:
        return f"{self.case}-{self.fmt}"

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES[self.fmt]

    def saved_device(self, key: str) -> str:
        return self.devices.get(key, "cpu")

    def torch_load(self, map_location: str = "cpu") -> Any:
        with torch.serialization.safe_globals(list(self.safe_globals)):
            return torch.load(self.path, map_location=map_location, weights_only=True)

    def torch_view(self) -> TorchView:
        view = TorchView(tensors={}, values={}, objects={})
        for path, leaf in walk(self.torch_load("cpu")):
            if isinstance(leaf, torch.Tensor):
                key = join_key(path)
                storage = leaf.untyped_storage()
                view.tensors[path] = TorchTensor(
                    path=path,
                    key=key,
                    shape=tuple(leaf.shape),
                    dtype=dtype_name(leaf.dtype),
                    numel=leaf.numel(),
                    nbytes=leaf.numel() * leaf.element_size(),
                    itemsize=leaf.element_size(),
                    storage_offset=leaf.storage_offset(),
                    stride=tuple(leaf.stride()),
                    storage_nbytes=storage.nbytes(),
                    storage_id=storage._cdata,
                    saved_device=self.saved_device(key),
                    requires_grad=leaf.requires_grad,
                    is_parameter=isinstance(leaf, nn.Parameter),
                )
            elif leaf is None or isinstance(leaf, (bool, int, float, complex, str, bytes)):
                view.values[path] = leaf
            else:
                view.objects[path] = leaf
        return view


def walk(obj: Any, path: tuple[PathPart, ...] = ()) -> Iterator[tuple[tuple[PathPart, ...], Any]]:
    """Leaves of a loaded object with their container paths, by the inspector's path rule."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from walk(value, (*path, path_part(key)))
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from walk(value, (*path, index))
    else:
        yield path, obj


# --------------------------------------------------------------------------------------------
# Helpers


def _save(obj: Any, path: Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


class TinyNet(nn.Module):
    """A small model whose state_dict has nested dotted keys, buffers and an int64 counter."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(2))
        self.norm = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


class TiedNet(nn.Module):
    """Input embedding and output projection share one weight (as in GPT-2)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(6, 4)
        self.lm_head = nn.Linear(4, 6, bias=False)
        self.lm_head.weight = self.embed.weight


def _tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


# --------------------------------------------------------------------------------------------
# Builders of well-formed checkpoints


def build_state_dict(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """``model.state_dict()`` of a small module (OrderedDict, dotted keys, buffers)."""
    path = _save(_tiny_net().state_dict(), directory / f"state_dict_{fmt}.pt", fmt)
    return BuiltCheckpoint("state_dict", fmt, path)


def build_data_parallel(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """An ``nn.DataParallel`` state_dict: every key starts with ``module.``."""
    wrapped = nn.DataParallel(_tiny_net())
    state = wrapped.state_dict()
    assert all(k.startswith("module.") for k in state)
    path = _save(state, directory / f"data_parallel_{fmt}.pth", fmt)
    return BuiltCheckpoint("data_parallel", fmt, path)


def build_training(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A full training checkpoint: model, Adam after two steps, StepLR, epoch and args."""
    model = _tiny_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    ids = torch.tensor([[0, 1, 2], [3, 4, 0]])
    for _ in range(2):
        optimizer.zero_grad()
        model(ids.view(-1)).sum().backward()
        optimizer.step()
        scheduler.step()
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": 7,
        "args": {"lr": 0.001, "name": "run"},
    }
    assert set(checkpoint["optimizer"]["state"][0]) >= {"step", "exp_avg", "exp_avg_sq"}
    path = _save(checkpoint, directory / f"training_{fmt}.ckpt", fmt)
    return BuiltCheckpoint("training", fmt, path)


def build_bare_tensor(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """One tensor, no container: the inspector lists it with key "" and path []."""
    torch.manual_seed(1)
    path = _save(torch.randn(3, 5), directory / f"bare_tensor_{fmt}.pt", fmt)
    return BuiltCheckpoint("bare_tensor", fmt, path)


def build_tensor_list(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A list of tensors (and a tuple inside it): paths are list indices."""
    torch.manual_seed(2)
    obj = [torch.randn(2), torch.arange(6).view(2, 3), (torch.ones(1), torch.zeros(2, 2))]
    path = _save(obj, directory / f"tensor_list_{fmt}.pt", fmt)
    return BuiltCheckpoint("tensor_list", fmt, path)


def build_int_keys(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """Dicts keyed by ints (as an optimizer's ``state`` is), mixed with string keys."""
    obj = {
        0: torch.ones(2),
        1: {"exp_avg": torch.zeros(3), 2: torch.arange(4)},
        -3: torch.full((2, 2), 5.0),
        "name": {10: torch.tensor([1, 2, 3], dtype=torch.int16)},
    }
    path = _save(obj, directory / f"int_keys_{fmt}.pt", fmt)
    return BuiltCheckpoint("int_keys", fmt, path)


def build_dtypes(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """One tensor of every dtype the format can round-trip, keyed by the dtype's name."""
    dtypes = ZIP_DTYPES if fmt == "zip" else LEGACY_DTYPES
    obj: dict[str, torch.Tensor] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex32 is "experimental"
        for dtype in dtypes:
            obj[dtype_name(dtype)] = torch.zeros((2, 3), dtype=dtype)
    path = _save(obj, directory / f"dtypes_{fmt}.pt", fmt)
    return BuiltCheckpoint("dtypes", fmt, path)


def build_odd_shapes(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """Zero-element and 0-dim tensors."""
    obj = {
        "empty": torch.zeros(0),
        "empty_rows": torch.zeros(0, 4),
        "empty_cols": torch.zeros(3, 0, dtype=torch.int64),
        "scalar": torch.tensor(3.5),
        "scalar_int": torch.tensor(7),
        "scalar_bool": torch.tensor(True),
        "regular": torch.ones(2, 1, 1),
    }
    path = _save(obj, directory / f"odd_shapes_{fmt}.pt", fmt)
    return BuiltCheckpoint("odd_shapes", fmt, path)


def build_non_ascii(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """Non-ASCII keys at every level."""
    obj = {
        "权重": torch.ones(2, 2),
        "é": torch.zeros(3),
        "模型": {"层.0.偏置": torch.arange(3.0), "naïve": torch.ones(1)},
    }
    path = _save(obj, directory / f"non_ascii_{fmt}.pt", fmt)
    return BuiltCheckpoint("non_ascii", fmt, path)


def build_shared(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """Tied weights (two keys, one tensor) and views of one storage (slice, transpose, column)."""
    torch.manual_seed(3)
    base = torch.randn(4, 3)
    obj = {
        "tied": TiedNet().state_dict(),
        "views": {
            "t": base,
            "same": base,
            "tail": base[1:],
            "t_T": base.t(),
            "column": base[:, 1],
        },
        "alone": torch.ones(2),
    }
    path = _save(obj, directory / f"shared_{fmt}.pt", fmt)
    return BuiltCheckpoint("shared", fmt, path)


def build_parameters(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """``nn.Parameter`` values (trainable and frozen) and a plain tensor with requires_grad."""
    torch.manual_seed(4)
    frozen = nn.Parameter(torch.randn(2), requires_grad=False)
    obj = {
        "weight": nn.Parameter(torch.randn(2, 3)),
        "frozen": frozen,
        "leaf_grad": torch.randn(3).requires_grad_(),
        "buffer": torch.zeros(2),
    }
    path = _save(obj, directory / f"parameters_{fmt}.pt", fmt)
    return BuiltCheckpoint("parameters", fmt, path)


@contextmanager
def saved_on_devices(devices: Mapping[int, str]) -> Iterator[None]:
    """While active, ``torch.save`` tags the storages whose data_ptr is in ``devices`` with that
    device (e.g. "cuda:1") — the way torch tags real CUDA storages — on a CPU-only machine."""

    def tagger(storage: Any) -> str | None:
        return devices.get(storage.data_ptr())

    def deserializer(storage: Any, location: str) -> None:
        return None

    registry = torch.serialization._package_registry
    torch.serialization.register_package(5, tagger, deserializer)
    try:
        yield
    finally:
        registry[:] = [entry for entry in registry if entry[1] is not tagger]


def build_cuda_tagged(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """Storages saved on cuda:0 and cuda:1 (tagged on this CPU machine) and one on cpu."""
    torch.manual_seed(5)
    on_0 = torch.randn(2, 3)
    on_1 = torch.randn(4)
    on_1_view = on_1[2:]
    on_cpu = torch.ones(2)
    obj = {
        "encoder": {"weight": on_0},
        "decoder": {"weight": on_1, "bias": on_1_view},
        "cpu_buffer": on_cpu,
    }
    tags = {
        on_0.untyped_storage().data_ptr(): "cuda:0",
        on_1.untyped_storage().data_ptr(): "cuda:1",
    }
    path = directory / f"cuda_tagged_{fmt}.pt"
    with saved_on_devices(tags):
        _save(obj, path, fmt)
    raw = _read_zip_member(path, "data.pkl") if fmt == "zip" else path.read_bytes()
    assert b"cuda:0" in raw and b"cuda:1" in raw, "the tagger did not take effect"
    devices = {
        "encoder.weight": "cuda:0",
        "decoder.weight": "cuda:1",
        "decoder.bias": "cuda:1",
    }
    return BuiltCheckpoint("cuda_tagged", fmt, path, devices=devices)


def _read_zip_member(path: Path, name: str) -> bytes:
    """A member of a torch zip by its name below the archive folder, whatever that folder is."""
    with zipfile.ZipFile(path) as archive:
        member = next(n for n in archive.namelist() if n.split("/", 1)[-1] == name)
        return archive.read(member)


def build_renamed_archive(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A zip checkpoint whose top-level folder is neither ``archive/`` nor the file's stem."""
    if fmt != "zip":
        raise ValueError("only zip files have an archive folder")
    source = build_state_dict(_subdir(directory, "renamed_src"), "zip").path
    path = directory / "renamed_archive.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            _, rest = info.filename.split("/", 1)
            dst.writestr("some.other-Folder_9/" + rest, src.read(info.filename))
    return BuiltCheckpoint("renamed_archive", "zip", path)


def build_archive_folder(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A zip checkpoint saved through a buffer, so its folder is torch's default ``archive/``."""
    if fmt != "zip":
        raise ValueError("only zip files have an archive folder")
    buffer = io.BytesIO()
    torch.save(_tiny_net().state_dict(), buffer)
    path = directory / "from_buffer.bin"
    path.write_bytes(buffer.getvalue())
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[0] == "archive/data.pkl"
    return BuiltCheckpoint("archive_folder", "zip", path)


def build_pth_tar(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A zip checkpoint named ``.pth.tar`` (the name says tar, the content is a zip)."""
    path = _save(_tiny_net().state_dict(), directory / f"model_best_{fmt}.pth.tar", fmt)
    return BuiltCheckpoint("pth_tar", fmt, path)


def _subdir(directory: Path, name: str) -> Path:
    (directory / name).mkdir(exist_ok=True)
    return directory / name


class _OldStorage:
    """Stands in for a 0.4-era storage while pickling: persistent_id turns it into a record."""

    def __init__(self, key: str, storage_type: type, itemsize: int, data: bytes) -> None:
        self.key = key
        self.storage_type = storage_type
        self.numel = len(data) // itemsize
        self.data = data


class _OldTensor:
    """Pickles as ``torch._utils._rebuild_tensor(storage, offset, size, stride)`` (torch 0.4)."""

    def __init__(
        self, storage: _OldStorage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.args = (storage, offset, size, stride)

    def __reduce__(self) -> tuple[Any, ...]:
        return (torch._utils._rebuild_tensor, self.args)


class _OldPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _OldStorage):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel, None)
        return None


def build_torch04(directory: Path, fmt: str = "legacy") -> BuiltCheckpoint:
    """A legacy stream as torch 0.4 wrote it, with the 4-argument ``_rebuild_tensor``.

    Two storages: a float one viewed three ways (weight, a row, a transposed view) and a long one.
    """
    if fmt != "legacy":
        raise ValueError("torch 0.4 wrote only the legacy format")
    floats = _OldStorage("94343318721472", torch.FloatStorage, 4, struct.pack("<6f", *range(6)))
    longs = _OldStorage("94343318725056", torch.LongStorage, 8, struct.pack("<3q", 1, 2, 3))
    state = collections.OrderedDict(
        [
            ("fc.weight", _OldTensor(floats, 0, (2, 3), (3, 1))),
            ("fc.row", _OldTensor(floats, 3, (3,), (1,))),
            ("fc.weight_t", _OldTensor(floats, 0, (3, 2), (1, 3))),
            ("steps", _OldTensor(longs, 0, (3,), (1,))),
        ]
    )
    sys_info = {
        "protocol_version": _LEGACY_PROTOCOL,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    stream = io.BytesIO()
    pickle.dump(_LEGACY_MAGIC, stream, protocol=2)
    pickle.dump(_LEGACY_PROTOCOL, stream, protocol=2)
    pickle.dump(sys_info, stream, protocol=2)
    _OldPickler(stream, protocol=2).dump(state)
    storages = [floats, longs]
    pickle.dump([s.key for s in storages], stream, protocol=2)
    for storage in storages:
        stream.write(struct.pack("<q", storage.numel))
        stream.write(storage.data)
    path = directory / "torch04_legacy.pth"
    path.write_bytes(stream.getvalue())
    return BuiltCheckpoint("torch04", "legacy", path)


def build_namespace(directory: Path, fmt: str = "zip") -> BuiltCheckpoint:
    """A checkpoint carrying ``argparse.Namespace``: weights-only loading refuses it."""
    obj = {
        "model": _tiny_net().state_dict(),
        "args": argparse.Namespace(lr=0.1, name="run"),
        "epoch": 3,
    }
    path = _save(obj, directory / f"namespace_{fmt}.pt", fmt)
    return BuiltCheckpoint("namespace", fmt, path, safe_globals=(argparse.Namespace,))


#: case name → (builder, formats it is built in). Cases with one format are single-format by nature.
BUILDERS: dict[str, tuple[Callable[[Path, str], BuiltCheckpoint], tuple[str, ...]]] = {
    "state_dict": (build_state_dict, FORMATS),
    "data_parallel": (build_data_parallel, FORMATS),
    "training": (build_training, FORMATS),
    "bare_tensor": (build_bare_tensor, FORMATS),
    "tensor_list": (build_tensor_list, FORMATS),
    "int_keys": (build_int_keys, FORMATS),
    "dtypes": (build_dtypes, FORMATS),
    "odd_shapes": (build_odd_shapes, FORMATS),
    "non_ascii": (build_non_ascii, FORMATS),
    "shared": (build_shared, FORMATS),
    "parameters": (build_parameters, FORMATS),
    "cuda_tagged": (build_cuda_tagged, FORMATS),
    "renamed_archive": (build_renamed_archive, ("zip",)),
    "archive_folder": (build_archive_folder, ("zip",)),
    "pth_tar": (build_pth_tar, FORMATS),
    "torch04": (build_torch04, ("legacy",)),
    "namespace": (build_namespace, FORMATS),
}

#: Every (case, format) id, e.g. "training-zip", "torch04-legacy".
CASE_IDS: tuple[str, ...] = tuple(
    f"{case}-{fmt}" for case, (_, formats) in BUILDERS.items() for fmt in formats
)


def build_all(directory: Path) -> dict[str, BuiltCheckpoint]:
    """Build every case in every format into ``directory``; keys are the ``CASE_IDS``."""
    built: dict[str, BuiltCheckpoint] = {}
    for case_id in CASE_IDS:
        case, fmt = case_id.rsplit("-", 1)
        builder, _ = BUILDERS[case]
        folder = directory / case_id
        folder.mkdir(parents=True, exist_ok=True)
        built[case_id] = builder(folder, fmt)
    return built


# --------------------------------------------------------------------------------------------
# Broken and hostile inputs (path only; the sentence the CLI must say is checked by the tests)


def write_missing(directory: Path) -> Path:
    """A path that does not exist."""
    return directory / "no_such_model.pth"


def write_directory(directory: Path) -> Path:
    """A folder where a file was expected."""
    path = directory / "weights_folder.pt"
    path.mkdir()
    return path


def write_empty(directory: Path) -> Path:
    path = directory / "empty_model.pth"
    path.write_bytes(b"")
    return path


def write_truncated_zip(directory: Path) -> Path:
    """The first half of a real zip checkpoint: local headers but no central directory."""
    source = build_state_dict(_subdir(directory, "truncated_src"), "zip").path
    data = source.read_bytes()
    path = directory / "half_model.pt"
    path.write_bytes(data[: len(data) // 2])
    return path


def write_random_bytes(directory: Path) -> Path:
    """4 KiB of (seeded) random bytes that start with no known magic number."""
    path = directory / "noise.ckpt"
    path.write_bytes(b"\x13\x37" + random.Random(0).randbytes(4094))
    return path


def write_png(directory: Path) -> Path:
    """A small but valid PNG image renamed ``.pth``."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    width = height = 2
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    path = directory / "picture.pth"
    path.write_bytes(png)
    return path


def write_path_config(directory: Path) -> Path:
    """A Python path-configuration file (site-packages ``*.pth``), which is text."""
    path = directory / "distutils-precedence.pth"
    path.write_text("import os\n/some/dir\n", encoding="utf-8")
    return path


def write_plain_zip(directory: Path) -> Path:
    """A zip archive holding a text file: a zip, but not a checkpoint."""
    path = directory / "notes_bundle.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes/readme.txt", "hello, this is not a tensor\n")
    return path


#: name → writer of one broken input.
BROKEN_WRITERS: dict[str, Callable[[Path], Path]] = {
    "missing": write_missing,
    "directory": write_directory,
    "empty": write_empty,
    "truncated_zip": write_truncated_zip,
    "random_bytes": write_random_bytes,
    "png": write_png,
    "path_config": write_path_config,
    "plain_zip": write_plain_zip,
}


def write_all_broken(directory: Path) -> dict[str, Path]:
    """Write every broken input into its own sub-folder of ``directory``."""
    paths: dict[str, Path] = {}
    for name, writer in BROKEN_WRITERS.items():
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        paths[name] = writer(folder)
    return paths
