"""safetensors files: the JSON header only, checked the way the reference reader checks it."""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

from .dtypes import ITEMSIZE
from .errors import CheckpointError
from .model import CheckpointIndex, Node, NodeKind
from .tree import TreeBuilder
from .unpickler import PDict

MAX_HEADER = 100 * 1000 * 1000  # the reference implementation's cap

SAFETENSORS_DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32",
    "F64": "float64", "I64": "int64", "U64": "uint64", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "F4": "float4_e2m1fn_x2",
}  # fmt: skip


def peek_safetensors(f: BinaryIO, path: str, size: int, name: str) -> CheckpointIndex:
    """Read and check a safetensors header; no tensor data is read."""
    from .peek import _finish
    from .torch_pickle import StorageRef, TensorRef

    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER:
        raise CheckpointError(f"{name} claims a safetensors header of {n:,} bytes (the limit is 100 MB).")
    if 8 + n > size:
        raise CheckpointError(f"{name} is truncated: its safetensors header runs past the end of the file.")
    raw = f.read(n)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{name} has a safetensors header that is not valid JSON.", str(exc)) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} has a safetensors header that is not a JSON object.")
    data_len = size - 8 - n
    metadata = header.pop("__metadata__", None)
    entries: list[tuple[int, int, str]] = []
    top = PDict()
    for key, spec in header.items():
        if not isinstance(spec, dict):
            raise CheckpointError(f"{name}: the header entry for {key} is not an object.")
        dtype = SAFETENSORS_DTYPES.get(spec.get("dtype", ""))
        shape = spec.get("shape")
        offs = spec.get("data_offsets")
        if dtype is None:
            raise CheckpointError(f"{name}: tensor {key} has an unknown dtype {spec.get('dtype')!r}.")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise CheckpointError(f"{name}: tensor {key} has an invalid shape.")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)):
            raise CheckpointError(f"{name}: tensor {key} has invalid data offsets.")
        begin, end = offs
        numel = 1
        for s in shape:
            numel *= s
        if end < begin or end > data_len:
            raise CheckpointError(f"{name}: tensor {key} points outside the file's data.")
        if numel * ITEMSIZE[dtype] != end - begin:
            raise CheckpointError(
                f"{name}: tensor {key} is {end - begin:,} bytes but its shape and dtype need "
                f"{numel * ITEMSIZE[dtype]:,}."
            )
        entries.append((begin, end, key))
        st = StorageRef(key=key, dtype=dtype, location="cpu", numel=numel)
        stride: list[int] = []
        acc = 1
        for s in reversed(shape):
            stride.insert(0, acc)
            acc *= s
        top.items.append((key, TensorRef(st, 0, tuple(shape), tuple(stride), dtype, "cpu")))
    entries.sort()
    expected = 0
    for begin, end, key in entries:
        if begin != expected:
            what = "overlaps the one before it" if begin < expected else "leaves a gap before it"
            raise CheckpointError(f"{name}: the data of tensor {key} {what}.")
        expected = end
    if expected != data_len:
        raise CheckpointError(f"{name}: its data section has {data_len - expected:,} bytes no tensor uses.")
    builder = TreeBuilder()
    root: Node = builder.build(top)
    if isinstance(metadata, dict):
        meta = root.add(
            Node(name="__metadata__", kind=NodeKind.DICT, key="__metadata__", path=("__metadata__",))
        )
        for k, v in metadata.items():
            meta.add(Node(name=str(k), kind=NodeKind.VALUE, key=f"__metadata__.{k}",
                          path=("__metadata__", str(k)), value=repr(v)))  # fmt: skip
    index = _finish(path, "safetensors", root, [], size, builder.warnings)
    index.storage_spans = {key: (8 + n + begin, end - begin) for begin, end, key in entries}
    return index
