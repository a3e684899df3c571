"""A Hugging Face shard set where it lives: its ``*.index.json`` fetched, each shard read by ranges.

The set is read by core's shard-set reader, as a local one is; each shard's name is checked as
core checks local ones, and a shard URL is always the index's own folder plus the quoted name, so
no index can send the read outside its repository or bucket.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from inspector.core.errors import CheckpointError
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

from .locations import RemoteLocation
from .opening import open_buffer
from .range_buffer import Transfer


def is_index(location: RemoteLocation) -> bool:
    return location.shown.endswith(INDEX_SUFFIX)


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
    for shard in hf.shards:
        check_shard_name(shard, location.name)
        if ":" in shard.split("/", 1)[0]:  # a URL of its own (``https:``, ``s3:``), however spelled
            raise CheckpointError(
                f"{location.name} names a shard outside its repository ({shard[:200]!r}); so nothing "
                "was opened."
            )
    folder = posixpath.dirname(location.url)
    shown_folder = posixpath.dirname(location.shown)
    quoted = location.protocol in ("http", "https")

    def read_shard(full: str) -> CheckpointIndex:
        name = full[len(shown_folder) + 1 :]
        url = f"{folder}/{'/'.join(quote(p) for p in name.split('/')) if quoted else name}"
        shard = RemoteLocation(url, location.protocol, full, location.headers)
        with open_buffer(shard, budget) as buffer:
            try:
                return peek_source(buffer, full, buffer.size)
            finally:
                total.requests += buffer.transfer.requests
                total.fetched += buffer.transfer.fetched
                total.size += buffer.transfer.size

    layout = Layout(LayoutKind.HF_SHARD_SET, location.shown, shown_folder, location.shown, hf, remote=True)
    index = HfShardSetReader().read(layout, read_shard)
    index.file_size += len(raw)
    return index, total
