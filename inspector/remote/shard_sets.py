"""A Hugging Face shard set where it lives: its ``*.index.json`` fetched, each shard read by ranges.

The set is read by core's shard-set reader, as a local one is; each shard's name is checked as
core checks local ones, and a shard URL is always the index's own folder plus the quoted name, so
no index can send the read outside its repository or bucket. The shards' heads are fetched
several at a time (``concurrent_reads``); the reader takes them in the index's order, so the tree
and every sentence are those of reading them one after another.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from inspector.core.errors import CheckpointError, MissingFileError
from inspector.core.hf_shard_set import HfShardSetReader
from inspector.core.layout import (
    INDEX_SUFFIX,
    MAX_INDEX_BYTES,
    Layout,
    LayoutKind,
    check_shard_name,
    parse_hf_index,
)
from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek_source

from .concurrent_reads import ConcurrentReads
from .locations import RemoteLocation
from .opening import open_buffer, remote_size
from .range_buffer import Transfer

#: The files of a model repository that transformers loads, in the order it looks for them.
REPO_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # fmt: skip


def is_index(location: RemoteLocation) -> bool:
    return location.shown.endswith(INDEX_SUFFIX)


def shard_location(index: RemoteLocation, shard: str) -> RemoteLocation:
    """Where ``shard`` of the set whose index is ``index`` lives: the index's folder plus the name,
    quoted for HTTP; a name that would leave the folder (or is a URL of its own) is refused."""
    check_shard_name(shard, index.name)
    if ":" in shard.split("/", 1)[0]:  # a URL of its own (``https:``, ``s3:``), however spelled
        raise CheckpointError(
            f"{index.name} names a shard outside its repository ({shard[:200]!r}); so nothing was opened."
        )
    part = "/".join(quote(p) for p in shard.split("/")) if index.protocol in ("http", "https") else shard
    return RemoteLocation(f"{posixpath.dirname(index.url)}/{part}", index.protocol,
                          f"{posixpath.dirname(index.shown)}/{shard}", index.headers)  # fmt: skip


def repo_weights(repo: RemoteLocation) -> tuple[RemoteLocation, int]:
    """The checkpoint of a Hub repository (``hf://org/repo``): the first of ``REPO_WEIGHTS`` it holds,
    asked for one by one (no listing call), and the requests that took."""
    for requests, name in enumerate(REPO_WEIGHTS, start=1):
        found = RemoteLocation(repo.url + quote(name), repo.protocol, f"{repo.shown}/{name}", repo.headers)
        try:
            remote_size(found)
        except MissingFileError:
            continue
        return found, requests
    raise CheckpointError(
        f"{repo.shown} holds none of the files transformers loads ({', '.join(REPO_WEIGHTS)}); open the "
        f"checkpoint by its own URL ({repo.shown}/FILE)."
    )


def peek_shard_set(location: RemoteLocation, budget: int) -> tuple[CheckpointIndex, Transfer]:
    """The whole set's tree, and what reading the index and every shard cost together."""
    with open_buffer(location, MAX_INDEX_BYTES + 1) as buffer:
        if buffer.size > MAX_INDEX_BYTES:
            raise CheckpointError(f"{location.name} is larger than an HF index ever is; it is not read.")
        raw = buffer.read()
    total = buffer.transfer
    hf = parse_hf_index(location.shown, raw)
    if hf is None:
        raise CheckpointError(f"{location.name} is not a Hugging Face index (no weight_map in JSON).")
    shards = {posixpath.join(posixpath.dirname(location.shown), s): shard_location(location, s)
              for s in hf.shards}  # fmt: skip

    def read_one(full: str) -> tuple[CheckpointIndex | CheckpointError, Transfer]:
        with open_buffer(shards[full], budget) as buffer:
            try:
                return peek_source(buffer, full, buffer.size), buffer.transfer
            except CheckpointError as exc:
                return exc, buffer.transfer

    def read_shard(full: str) -> CheckpointIndex:
        read, cost = fetched(full)
        total.requests += cost.requests
        total.fetched += cost.fetched
        total.size += cost.size
        if isinstance(read, CheckpointError):
            raise read
        return read

    layout = Layout(LayoutKind.HF_SHARD_SET, location.shown, posixpath.dirname(location.shown),
                    location.shown, hf, remote=True)  # fmt: skip
    with ConcurrentReads(shards, read_one) as fetched:
        index = HfShardSetReader().read(layout, read_shard)
    index.file_size += len(raw)
    return index, total
