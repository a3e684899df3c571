"""Hugging Face shard sets read as one tree: an ``*.index.json`` (``weight_map``: tensor → shard
file) beside its shards, each shard read by the ordinary static read.

The set's files are those of its ``Layout`` (``core/layout.py``), which keeps every shard inside
the set's folder: nothing outside is opened.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from .errors import CheckpointError, DamagedCheckpointError, MissingFileError
from .formats import Format
from .layout import Layout
from .model import CheckpointIndex, GlobalRef, OpaqueValue, TensorInfo
from .reading import finish_index, limited
from .tree import TreeBuilder
from .unpickler import PDict


class HfShardSetReader:
    """The reader of an HF shard set; ``read_file`` reads one shard as a file of its own."""

    formats = (Format.HF_SHARDED,)

    def read(self, layout: Layout, read_file: Callable[[str], CheckpointIndex]) -> CheckpointIndex:
        """One tree for the whole shard set; problems of the set are warnings, paths out are refused.

        Each shard is read once however the index spells it; the globals of every shard count for the
        set, those of a shard that could not be read to the end included.
        """
        hf = layout.hf_index
        assert hf is not None
        path = layout.path
        weight_map = hf.weight_map
        warnings: list[str] = list(layout.notes)
        if hf.duplicates:
            twice_listed = [f"the index lists {k} twice" for k in hf.duplicates]
            warnings.extend(limited(twice_listed, "tensors listed twice"))
        spelled = [f"the index names shard {s} in {len(n):,} spellings ({', '.join(n[:3])}"
                   + (" …" if len(n) > 3 else "") + "); they are read as one file"
                   for s, n in hf.spellings.items()]  # fmt: skip
        warnings.extend(limited(spelled, "shards named in several spellings"))
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
            if not layout.remote and not os.path.isfile(full):
                missing.append(f"{shard} ({len(keys):,} tensors)")
                continue
            try:
                sub = read_file(full)
            except MissingFileError:
                missing.append(f"{shard} ({len(keys):,} tensors)")
                continue
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
            if not sub.format.hf_shard:
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
                info = replace(
                    t, storage_key=f"{shard}/{t.storage_key}" if t.storage_key else "", shard=shard
                )
                found[node.key] = info
                where[node.key] = shard
                if node.key not in listed:
                    unlisted.append(node.key)
            warnings.extend(limited(twice, "tensors stored in two shards"))
            if unlisted:
                shown = ", ".join(unlisted[:5]) + (" …" if len(unlisted) > 5 else "")
                warnings.append(
                    f"shard {shard} holds {len(unlisted):,} tensor(s) the index does not list: {shown}"
                )
            absent = [k for k in keys if k not in found]
            if absent:
                shown = ", ".join(absent[:5]) + (" …" if len(absent) > 5 else "")
                warnings.append(
                    f"shard {shard} lacks {len(absent):,} tensor(s) the index puts there: {shown}"
                )
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
        index = finish_index(path, Format.HF_SHARDED, root, globals_, size + file_bytes, [*unread, *warnings])
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
