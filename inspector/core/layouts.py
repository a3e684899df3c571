"""Checkpoints saved in pieces: Hugging Face shard sets and torch.distributed.checkpoint folders.

Both are shown as one tree. An HF set is an ``*.index.json`` (``weight_map``: tensor → shard file)
beside its shards, each read by the ordinary peek; a DCP folder is a ``.metadata`` pickle (read by
the safe interpreter, never by ``pickle``) beside ``__<rank>_<n>.distcp`` data files. A shard path
that leaves the folder (``../``, absolute, a symlink out) is refused: nothing outside is opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .dtypes import ITEMSIZE
from .errors import CheckpointError
from .layout import DCP_METADATA, Layout, shard_path
from .model import CheckpointIndex, ChunkInfo, GlobalRef, OpaqueValue, TensorInfo
from .safety import in_format
from .tree import TreeBuilder
from .unpickler import Call, Global, Instance, PDict

MAX_METADATA_BYTES = 1 << 30
#: Shard formats an HF set may hold; anything else in a set is reported, not shown.
SHARD_FORMATS = frozenset({"torch-zip", "torch-legacy", "safetensors"})
#: Formats made of several files: the tree shows each tensor's file; torch.load cannot open them whole.
SHARDED_FORMATS = frozenset({"hf-sharded", "dcp"})

PeekFile = Callable[[str], CheckpointIndex]


def _name(path: str) -> str:
    return f"“{os.path.basename(os.path.normpath(path)) or path}”"


# -- Hugging Face shard sets -----------------------------------------------------------------------


def peek_hf_index(layout: Layout, peek_file: PeekFile) -> CheckpointIndex:
    """One tree for the whole shard set; problems of the set are warnings, paths out are refused.

    Each shard is read once however the index spells it; the globals of every shard count for the
    set, those of a shard that could not be read to the end included.
    """
    from .peek import DamagedCheckpointError, _finish, _limited

    hf = layout.hf_index
    assert hf is not None
    path = layout.path
    weight_map = hf.weight_map
    warnings: list[str] = list(layout.notes)
    if hf.duplicates:
        twice_listed = [f"the index lists {k} twice" for k in hf.duplicates]
        warnings.extend(_limited(twice_listed, "tensors listed twice"))
    spelled = [f"the index names shard {s} in {len(n):,} spellings ({', '.join(n[:3])}"
               + (" …" if len(n) > 3 else "") + "); they are read as one file"
               for s, n in hf.spellings.items()]  # fmt: skip
    warnings.extend(_limited(spelled, "shards named in several spellings"))
    shards: dict[str, list[str]] = {s: [] for s in hf.shards}
    for key, shard in weight_map.items():
        shards[shard].append(key)
    found: dict[str, TensorInfo] = {}
    where: dict[str, str] = {}
    globals_: list[GlobalRef] = []
    missing: list[str] = []
    differentials: list[str] = []
    unread: list[str] = []  # shards that could not be read: what they would load is unknown
    file_bytes = 0
    for shard, full in layout.shard_files():
        keys = shards[shard]
        if not os.path.isfile(full):
            missing.append(f"{shard} ({len(keys):,} tensors)")
            continue
        try:
            sub = peek_file(full)
        except DamagedCheckpointError as exc:
            globals_.extend(replace(g, pickle=f"{shard} › {g.pickle}") for g in exc.globals)
            differentials.extend(f"shard {shard}: {d}" for d in exc.differentials)
            unread.append(f"shard {shard} cannot be read: {exc.message}")
            continue
        except CheckpointError as exc:
            unread.append(f"shard {shard} cannot be read: {exc.message}")
            continue
        file_bytes += sub.file_size
        globals_.extend(replace(g, pickle=f"{shard} › {g.pickle}") for g in sub.globals)
        differentials.extend(f"shard {shard}: {d}" for d in sub.differentials)
        warnings.extend(f"{shard}: {w}" for w in sub.warnings)
        if sub.format not in SHARD_FORMATS:
            warnings.append(f"shard {shard} is a {sub.format} file, not a torch or safetensors file")
            continue
        listed = set(keys)
        unlisted: list[str] = []
        twice: list[str] = []
        for node in sub.root.tensors():
            t = node.tensor
            assert t is not None
            if node.key in found:
                twice.append(f"{node.key} is stored in two shards ({where[node.key]} and {shard})")
                continue
            info = replace(t, storage_key=f"{shard}/{t.storage_key}" if t.storage_key else "", shard=shard)
            found[node.key] = info
            where[node.key] = shard
            if node.key not in listed:
                unlisted.append(node.key)
        warnings.extend(_limited(twice, "tensors stored in two shards"))
        if unlisted:
            shown = ", ".join(unlisted[:5]) + (" …" if len(unlisted) > 5 else "")
            warnings.append(
                f"shard {shard} holds {len(unlisted):,} tensor(s) the index does not list: {shown}"
            )
        absent = [k for k in keys if k not in found]
        if absent:
            shown = ", ".join(absent[:5]) + (" …" if len(absent) > 5 else "")
            warnings.append(f"shard {shard} lacks {len(absent):,} tensor(s) the index puts there: {shown}")
    if missing:
        warnings.insert(0, f"{len(missing)} shard(s) are missing: {', '.join(missing[:5])}")
    top = PDict()
    for key in weight_map:
        if key in found:
            top.items.append((key, found.pop(key)))
        elif where.get(key) is None:
            top.items.append((key, OpaqueValue(f"(in the missing shard {weight_map[key]})")))
    top.items.extend(found.items())  # tensors of a shard that the index does not list
    builder = TreeBuilder()
    root = builder.build(top)
    warnings.extend(builder.warnings)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    index = _finish(path, "hf-sharded", root, globals_, size + file_bytes, [*unread, *warnings])
    index.differentials, index.unread = differentials, unread
    meta = hf.metadata
    total = meta.get("total_size") if isinstance(meta, dict) else None
    if total is not None and not missing:
        actual = sum(n.nbytes for n in root.tensors())
        if not isinstance(total, int) or total != actual:
            index.warnings.append(
                f"the index's total_size is {total!r} but its tensors hold {actual:,} bytes"
            )
    return index


# -- torch.distributed.checkpoint folders --------------------------------------------------------


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


def peek_dcp(folder: str, reader_factory: Callable[[str], Any]) -> CheckpointIndex:
    """A DCP folder as one tree: global shapes and dtypes, each tensor's chunks, non-tensor items."""
    from .peek import _finish, _limited

    name = _name(folder)
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
    reader = reader_factory(name)
    warnings: list[str] = []
    from .unpickler import NeedMoreData

    try:
        top, _ = reader.unpickle(data, 0, DCP_METADATA)
    except NeedMoreData:
        from .peek import DamagedCheckpointError

        raise DamagedCheckpointError(
            f"{name} is damaged: its {DCP_METADATA} stops in the middle of a pickle.",
            None,
            list(reader.globals),
        ) from None
    except CheckpointError as exc:
        if reader.globals:
            from .peek import DamagedCheckpointError

            raise DamagedCheckpointError(exc.message, exc.details, list(reader.globals)) from None
        raise
    globals_ = in_format(reader.globals, "dcp")  # DCP's own metadata records are data
    warnings.extend(reader.nested_warnings)
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
                full = shard_path(folder, rel, name)
                if full not in sizes:
                    try:
                        data_st = os.stat(full)
                        sizes[full] = data_st.st_size if stat.S_ISREG(data_st.st_mode) else -2
                    except OSError:
                        sizes[full] = -1
                if sizes[full] == -2:
                    problems.append(f"the data file {rel} of {fqn} is not a regular file, so it is not read")
                elif sizes[full] < 0:
                    problems.append(f"the data file {rel} of {fqn} is missing")
                elif off < 0 or length < 0 or off + length > sizes[full]:
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
        warnings.extend(_limited(problems, "problems with tensor chunks"))
    builder = TreeBuilder()
    root = builder.build(top_items)
    warnings.extend(builder.warnings)
    total = st.st_size + sum(s for s in sizes.values() if s > 0)
    return _finish(os.path.abspath(folder), "dcp", root, globals_, total, warnings)
