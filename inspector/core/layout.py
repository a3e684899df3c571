"""What a path is: one checkpoint file, a Hugging Face shard set, or a torch.distributed.checkpoint folder.

Every consumer (the static read, direct reads, statistics, export, loading) asks ``resolve_layout``,
so a shard set opened through its ``*.index.json``, through any of its shards or as its folder is
the same checkpoint with the same files. Shard names are normalised (``./x`` and ``x`` are one
file) and must stay inside the set's folder. A neighbouring ``*.index.json`` is only ever a
candidate: one that is too large, too deep, not UTF-8 or not JSON is passed over, never an error
of the file that was opened. Standard library only.
"""

from __future__ import annotations

import enum
import json
import os
import posixpath
import stat
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckpointError
from .formatting import display_name
from .pickle_stream import Lookalike
from .readers import reader_for

MAX_INDEX_BYTES = 64 << 20  # a weight_map of millions of keys stays far below this
MAX_INDEX_CANDIDATES = 32  # *.index.json files looked at beside a shard or in a folder
INDEX_SUFFIX = ".index.json"
DCP_METADATA = ".metadata"


class LayoutKind(enum.Enum):
    """How a checkpoint is laid out on disk."""

    FILE = "file"  # one file, read by the format its content shows
    HF_SHARD_SET = "hf-shard-set"  # an *.index.json whose weight_map names shard files beside it
    DCP_FOLDER = "dcp-folder"  # a torch.distributed.checkpoint folder (.metadata + *.distcp)


@dataclass(frozen=True)
class HfIndex:
    """A parsed ``*.index.json``: each tensor's shard, by normalised shard name."""

    path: str
    weight_map: dict[str, str]  # tensor key → shard name (normalised)
    shards: tuple[str, ...]  # distinct shard names, in the order the index first names them
    duplicates: tuple[str, ...] = ()  # keys the weight_map lists more than once
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # shard → its spellings (> 1)
    metadata: Any = None  # the index's "metadata" value, as in the file


@dataclass(frozen=True)
class Layout:
    """One checkpoint on disk: its kind, the path that stands for it and the folder of its pieces."""

    kind: LayoutKind
    path: str  # the file, the *.index.json, or the DCP folder
    folder: str  # the folder that holds its pieces (absolute)
    opened: str  # the path the user gave
    hf_index: HfIndex | None = None
    notes: tuple[str, ...] = ()  # what the resolution chose and why (shown as warnings)
    remote: bool = False  # its pieces are URLs: whether one exists is learned by reading it

    @property
    def is_set(self) -> bool:
        return self.kind is not LayoutKind.FILE

    def shard_files(self) -> list[tuple[str, str]]:
        """(shard name, full path) of every shard of an HF set, each once; empty otherwise."""
        if self.hf_index is None:
            return []
        return [(s, os.path.join(self.folder, s)) for s in self.hf_index.shards]


def normalise_shard(name: str) -> str:
    """The one spelling of a shard name: ``./x``, ``x`` and ``sub//x/.`` name the same file."""
    return posixpath.normpath(name) if name else name


def shard_path(folder: str, shard: str, owner: str) -> str:
    """The path of ``shard`` inside ``folder``; raises when it would leave the folder."""
    check_shard_name(shard, owner)
    full = os.path.join(folder, shard)
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(full)
    if os.path.commonpath([real_folder, real]) != real_folder:
        raise CheckpointError(
            f"{owner} names a shard, {shard[:200]}, that is a link pointing outside its folder; "
            "so nothing was opened."
        )
    return full


def check_shard_name(shard: str, owner: str) -> None:
    """Refuse a shard name that would leave its set's folder (or repository): absolute, or with ``..``."""
    parts = shard.replace("\\", "/").split("/")
    if (
        not shard
        or "\x00" in shard
        or os.path.isabs(shard)
        or shard.startswith(("/", "\\"))
        or (len(shard) > 1 and shard[1] == ":")
        or ".." in parts
    ):
        raise CheckpointError(
            f"{owner} names a shard outside its folder ({shard[:200]!r}); shards must lie beside it, "
            "so nothing was opened."
        )


# -- Hugging Face indexes -------------------------------------------------------------------------


def parse_hf_index(path: str, raw: bytes) -> HfIndex | None:
    """The index when ``raw`` is an HF ``*.index.json`` (UTF-8 JSON, a dict with a ``weight_map``).

    Anything else is ``None``: not UTF-8 (JSON's UTF-16 detection is not applied), not JSON,
    nested deeper than the parser's recursion allows, or too large for memory.
    """
    if len(raw) > MAX_INDEX_BYTES:
        return None
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out

    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("weight_map"), dict):
        return None
    raw_map: dict[str, Any] = data["weight_map"]
    weight_map: dict[str, str] = {}
    spellings: dict[str, dict[str, None]] = {}
    for key, shard in raw_map.items():
        if not isinstance(shard, str):
            name = display_name(path)
            raise CheckpointError(f"{name}: the weight_map entry of {key[:200]} is not a file name.")
        norm = normalise_shard(shard)
        weight_map[key] = norm
        spellings.setdefault(norm, {})[shard] = None
    return HfIndex(
        path=path,
        weight_map=weight_map,
        shards=tuple(spellings),
        duplicates=tuple(k for k in duplicates if k in raw_map),
        spellings={s: tuple(names) for s, names in spellings.items() if len(names) > 1},
        metadata=data.get("metadata"),
    )


def _read_index_file(path: str, mentions: str | None = None) -> HfIndex | None:
    """The HF index at ``path`` if it is one (a regular file within the size bound), else ``None``.

    With ``mentions``, a file whose bytes do not contain that name is not parsed at all.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_INDEX_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if mentions is None:
        return parse_hf_index(path, raw)
    if mentions.isascii() and mentions.encode() not in raw:
        return None
    try:
        return parse_hf_index(path, raw)
    except CheckpointError:  # a neighbour's bad entry is no concern of the file that was opened
        return None


def _index_candidates(folder: str, skip: str = "") -> list[str]:
    """Paths of the ``*.index.json`` entries of ``folder`` (at most ``MAX_INDEX_CANDIDATES``), sorted."""
    found: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(INDEX_SUFFIX) and entry.name != skip:
                    found.append(entry.path)
                    if len(found) >= MAX_INDEX_CANDIDATES:
                        break
    except OSError:
        return []
    return sorted(found)


def _index_naming(path: str) -> HfIndex | None:
    """The ``*.index.json`` beside ``path`` whose weight_map names this file, if there is one."""
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for candidate in _index_candidates(folder, skip=base):
        index = _read_index_file(candidate, mentions=base)
        if index is not None and base in index.shards:
            return index
    return None


def _checked(index: HfIndex) -> HfIndex:
    """``index`` after every shard name was checked to stay inside its folder."""
    folder = os.path.dirname(os.path.abspath(index.path))
    name = display_name(index.path)
    for shard in index.shards:
        shard_path(folder, shard, name)
    return index


def _hf_layout(index: HfIndex, opened: str, notes: tuple[str, ...] = ()) -> Layout:
    full = os.path.abspath(index.path)
    return Layout(LayoutKind.HF_SHARD_SET, full, os.path.dirname(full), opened, _checked(index), notes)


def _folder_layout(folder: str) -> Layout:
    name = display_name(folder)
    if os.path.lexists(os.path.join(folder, DCP_METADATA)):
        return Layout(LayoutKind.DCP_FOLDER, os.path.abspath(folder), os.path.abspath(folder), folder)
    indexes = [i for i in (_read_index_file(c) for c in _index_candidates(folder)) if i is not None]
    if len(indexes) > 1:
        # transformers loads the safetensors set when a folder holds it beside the .bin one
        preferred = [i for i in indexes if i.path.endswith(".safetensors" + INDEX_SUFFIX)]
        if len(preferred) == 1:
            others = ", ".join(os.path.basename(i.path) for i in indexes if i is not preferred[0])
            note = (
                f"the folder also holds {others}; the safetensors set "
                f"{os.path.basename(preferred[0].path)} is shown, as transformers loads it"
            )
            return _hf_layout(preferred[0], folder, (note,))
        shown = ", ".join(os.path.basename(i.path) for i in indexes[:5])
        raise CheckpointError(f"{name} holds several shard-set indexes ({shown}); open the one you mean.")
    if indexes:
        return _hf_layout(indexes[0], folder)
    raise CheckpointError(
        f"{name} is a folder, not a checkpoint file (a Hugging Face folder would hold an "
        f"{INDEX_SUFFIX} file, a torch.distributed.checkpoint folder a {DCP_METADATA} file)."
    )


def resolve_layout(path: str | os.PathLike[str], *, whole_set: bool = True) -> Layout:
    """What ``path`` is. A folder is a DCP folder or the HF set it holds; an HF index is its set;
    a shard that a neighbouring index names is that set unless ``whole_set`` is False.

    A path that cannot be inspected is a ``FILE`` layout: the reader then says what is wrong with
    it. Raises ``CheckpointError`` for a folder that holds no checkpoint and for a shard set that
    names files outside its folder.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError:
        return Layout(LayoutKind.FILE, p, os.path.dirname(os.path.abspath(p)), p)
    if stat.S_ISDIR(st.st_mode):
        return _folder_layout(p)
    single = Layout(LayoutKind.FILE, p, os.path.dirname(os.path.abspath(p)), p)
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return single
    if st.st_size <= MAX_INDEX_BYTES and _looks_like_json(p, st.st_size):
        own = _read_index_file(p)
        if own is not None:
            return _hf_layout(own, p)
        return single
    if whole_set:
        found = _index_naming(p)
        if found is not None:
            return _hf_layout(found, p)
    return single


def _looks_like_json(path: str, size: int) -> bool:
    """True for a file no checkpoint reader takes that starts like a JSON object."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return isinstance(reader_for(head, size), Lookalike) and head.lstrip()[:1] == b"{"
