"""torch.distributed.checkpoint folders read as one tree: a ``.metadata`` pickle (read by the safe
interpreter, never by ``pickle``) beside ``__<rank>_<n>.distcp`` data files.

The tree shows each tensor's global shape and dtype and the chunks each data file holds; a data
file named outside the folder is refused (``core/layout.py``'s ``shard_path``), nothing outside is
opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from .dtypes import ITEMSIZE
from .errors import CheckpointError, DamagedCheckpointError
from .formats import Format
from .formatting import display_name
from .layout import DCP_METADATA, Layout, shard_path
from .model import CheckpointIndex, ChunkInfo, OpaqueValue, TensorInfo
from .reading import ReadState, finish_index, limited
from .safety import in_format
from .tree import TreeBuilder
from .unpickler import Call, Global, Instance, NeedMoreData, PDict

MAX_METADATA_BYTES = 1 << 30


class DcpFolderReader:
    """The reader of a DCP folder: global shapes and dtypes, each tensor's chunks, non-tensor items."""

    formats = (Format.DCP,)

    def read(self, layout: Layout, read_file: Callable[[str], CheckpointIndex]) -> CheckpointIndex:
        """The folder's tree; its data files are looked at (their sizes), never read as checkpoints."""
        return _read_dcp(layout.path)


def _state(obj: Any) -> dict[Any, Any]:
    """The attributes of an unpickled record (its BUILD state dict), or an empty dict."""
    if isinstance(obj, (Instance, Call)):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], PDict):
            state = state[1] if not isinstance(state[0], PDict) else state[0]
        if isinstance(state, PDict):
            return {k: v for k, v in state.items if isinstance(k, str)}
    return {}


def _class_name(obj: Any) -> str:
    if isinstance(obj, Instance) and isinstance(obj.cls, Global):
        return obj.cls.qualname
    if isinstance(obj, Call) and isinstance(obj.func, Global):
        return obj.func.qualname
    return ""


def _int_tuple(v: Any) -> tuple[int, ...] | None:
    if isinstance(v, (tuple, list)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return tuple(v)
    return None


def _dtype_name(props: Any) -> tuple[str, bool]:
    """(dtype, requires_grad) from a TensorProperties record (state tuple or dict)."""
    state = props.state if isinstance(props, (Instance, Call)) else None
    dtype: Any = None
    grad: Any = False
    if isinstance(state, tuple) and state:
        dtype = state[0]
        grad = state[2] if len(state) > 2 else False
    else:
        d = _state(props)
        dtype, grad = d.get("dtype"), d.get("requires_grad", False)
    if isinstance(dtype, Global) and dtype.module == "torch":
        return dtype.name, grad is True
    return "", False


def _read_dcp(folder: str) -> CheckpointIndex:
    name = display_name(folder)
    meta_path = os.path.join(folder, DCP_METADATA)
    try:
        st = os.lstat(meta_path)
    except OSError:
        raise CheckpointError(
            f"{name} is a folder, not a checkpoint (it has no {DCP_METADATA} file)."
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{name}: its {DCP_METADATA} is not a regular file, so it is not read.")
    if st.st_size > MAX_METADATA_BYTES:
        raise CheckpointError(f"{name}: its {DCP_METADATA} is larger than 1 GiB; it is not read.")
    with open(meta_path, "rb") as f:
        data = f.read(MAX_METADATA_BYTES)

    def data_size(rel: str) -> int:
        try:
            data_st = os.stat(shard_path(folder, rel, name))
        except OSError:
            return -1
        return data_st.st_size if stat.S_ISREG(data_st.st_mode) else -2

    return read_dcp_metadata(os.path.abspath(folder), name, data, st.st_size, data_size)


def read_dcp_metadata(
    path: str, name: str, data: bytes, meta_size: int, data_size: Callable[[str], int]
) -> CheckpointIndex:
    """The tree of a DCP folder from its ``.metadata`` bytes; ``data_size(relative_path)`` is a data
    file's size (-1: missing, -2: not a regular file) and refuses a name that leaves the folder.

    A local folder and one read where it lives (``inspector.remote``) are read by this one function.
    """
    read_state = ReadState(name)
    warnings: list[str] = []
    try:
        top, _ = read_state.unpickle(data, 0, DCP_METADATA)
    except NeedMoreData:
        raise DamagedCheckpointError(
            f"{name} is damaged: its {DCP_METADATA} stops in the middle of a pickle.",
            None,
            list(read_state.globals),
        ) from None
    except CheckpointError as exc:
        if read_state.globals:
            raise DamagedCheckpointError(exc.message, exc.details, list(read_state.globals)) from None
        raise
    globals_ = in_format(read_state.globals, Format.DCP)  # DCP's own metadata records are data
    warnings.extend(read_state.nested_warnings)
    top_items = PDict()
    sizes: dict[str, int] = {}
    if _class_name(top) != "torch.distributed.checkpoint.metadata.Metadata":
        warnings.append(f"its {DCP_METADATA} is not torch's Metadata record, so no tensors are listed")
    else:
        state = _state(top)
        storage: dict[tuple[str, tuple[int, ...] | None], dict[Any, Any]] = {}
        sd = state.get("storage_data")
        for k, v in sd.items if isinstance(sd, PDict) else []:
            ks, vs = _state(k), _state(v)
            fqn = ks.get("fqn")
            if isinstance(fqn, str):
                storage[(fqn, _int_tuple(ks.get("offset")))] = vs
        problems: list[str] = []
        sdm = state.get("state_dict_metadata")
        for fqn, item in sdm.items if isinstance(sdm, PDict) else []:
            if not isinstance(fqn, str):
                continue
            kind = _class_name(item)
            if kind.endswith("BytesStorageMetadata"):
                info = storage.get((fqn, None), {})
                where = info.get("relative_path", "?")
                top_items.items.append(
                    (
                        fqn,
                        OpaqueValue(f"(a pickled object in {where}, not read unless the folder is trusted)"),
                    )
                )
                continue
            d = _state(item)
            shape = _int_tuple(d.get("size"))
            dtype, grad = _dtype_name(d.get("properties"))
            if shape is None or dtype not in ITEMSIZE:
                problems.append(f"{fqn} is described in a way torch does not write")
                continue
            chunks: list[ChunkInfo] = []
            raw_chunks = d.get("chunks")
            for c in raw_chunks if isinstance(raw_chunks, list) else []:
                cs = _state(c)
                offs, szs = _int_tuple(cs.get("offsets")), _int_tuple(cs.get("sizes"))
                if offs is None or szs is None or len(offs) != len(shape) or len(szs) != len(shape):
                    problems.append(f"a chunk of {fqn} has invalid offsets or sizes")
                    continue
                if any(o < 0 or s < 0 or o + s > n for o, s, n in zip(offs, szs, shape, strict=True)):
                    problems.append(f"a chunk of {fqn} lies outside the tensor")
                    continue
                loc = storage.get((fqn, offs))
                if loc is None:
                    problems.append(f"a chunk of {fqn} has no data file")
                    continue
                rel, off, length = loc.get("relative_path"), loc.get("offset"), loc.get("length")
                if not (isinstance(rel, str) and isinstance(off, int) and isinstance(length, int)):
                    problems.append(f"a chunk of {fqn} has an invalid data location")
                    continue
                if rel not in sizes:
                    sizes[rel] = data_size(rel)
                if sizes[rel] == -2:
                    problems.append(f"the data file {rel} of {fqn} is not a regular file, so it is not read")
                elif sizes[rel] < 0:
                    problems.append(f"the data file {rel} of {fqn} is missing")
                elif off < 0 or length < 0 or off + length > sizes[rel]:
                    problems.append(f"the data of {fqn} lies beyond the end of {rel}")
                if loc.get("transform_descriptors"):
                    problems.append(f"the data of {fqn} is transformed (compressed); it is listed, not read")
                chunks.append(ChunkInfo(rel, offs, szs, off, length))
            stride: list[int] = []
            acc = 1
            for s in reversed(shape):
                stride.insert(0, acc)
                acc *= s
            files = sorted({c.file for c in chunks})
            itemsize = ITEMSIZE[dtype]
            numel = acc
            top_items.items.append((fqn, TensorInfo(
                shape=shape, dtype=dtype, saved_device="cpu", storage_key=f"dcp:{fqn}", storage_offset=0,
                stride=tuple(stride), storage_nbytes=numel * itemsize, itemsize=itemsize,
                requires_grad=grad, shard=", ".join(files), chunks=tuple(chunks),
            )))  # fmt: skip
        warnings.extend(limited(problems, "problems with tensor chunks"))
    builder = TreeBuilder()
    root = builder.build(top_items)
    warnings.extend(builder.warnings)
    total = meta_size + sum(s for s in sizes.values() if s > 0)
    return finish_index(path, Format.DCP, root, globals_, total, warnings)
