"""A torch.distributed.checkpoint folder where it lives: its ``.metadata`` fetched and read by core's
DCP reader, and each data file's size asked for (one request each; no listing is needed).

A folder URL ends with ``/`` (``s3://bucket/ckpt/``) or names its ``.metadata``. Data files are
named as core checks local ones, and are always the folder's URL plus the quoted name.
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from inspector.core.dcp_folder import MAX_METADATA_BYTES, read_dcp_metadata
from inspector.core.errors import CheckpointError, MissingFileError
from inspector.core.layout import DCP_METADATA, check_shard_name
from inspector.core.model import CheckpointIndex

from .locations import RemoteLocation
from .opening import open_buffer, remote_size
from .range_buffer import Transfer


def is_dcp_folder(location: RemoteLocation) -> bool:
    return location.shown.endswith("/") or location.shown.endswith("/" + DCP_METADATA)


def folder_location(location: RemoteLocation) -> RemoteLocation:
    """The folder itself (without a trailing ``/`` or ``.metadata``), as data files are named from."""
    url, shown = (text.removesuffix(DCP_METADATA).rstrip("/") for text in (location.url, location.shown))
    return RemoteLocation(url, location.protocol, shown, location.headers)


def folder_name(location: RemoteLocation) -> str:
    """The folder as sentences quote it (“ckpt”)."""
    shown = folder_location(location).shown
    return f"“{posixpath.basename(shown) or shown}”"


def data_location(location: RemoteLocation, rel: str) -> RemoteLocation:
    """Where the data file ``rel`` of the folder lives; a name that would leave the folder is refused."""
    folder, name = folder_location(location), folder_name(location)
    check_shard_name(rel, name)
    if ":" in rel.split("/", 1)[0]:
        raise CheckpointError(
            f"{name} names a data file outside its folder ({rel[:200]!r}); so nothing was opened."
        )
    part = "/".join(quote(p) for p in rel.split("/")) if location.protocol in ("http", "https") else rel
    return RemoteLocation(
        f"{folder.url}/{part}", location.protocol, f"{folder.shown}/{rel}", location.headers
    )


def peek_dcp_folder(location: RemoteLocation) -> tuple[CheckpointIndex, Transfer]:
    """The folder's tree, and what reading its ``.metadata`` and the data files' sizes cost."""
    folder, name = folder_location(location), folder_name(location)
    meta = RemoteLocation(f"{folder.url}/{DCP_METADATA}", location.protocol, f"{folder.shown}/{DCP_METADATA}",
                          location.headers)  # fmt: skip
    try:
        buffer = open_buffer(meta, MAX_METADATA_BYTES + 1)
    except MissingFileError:
        raise CheckpointError(f"{name} is not a checkpoint folder (it has no {DCP_METADATA} file).") from None
    with buffer:
        if buffer.size > MAX_METADATA_BYTES:
            raise CheckpointError(f"{name}: its {DCP_METADATA} is larger than 1 GiB; it is not read.")
        data = buffer.read()
    transfer = buffer.transfer

    def data_size(rel: str) -> int:
        where = data_location(location, rel)
        transfer.requests += 1
        try:
            size = remote_size(where)
        except MissingFileError:
            return -1
        transfer.size += size
        return size

    index = read_dcp_metadata(folder.shown + "/", name, data, buffer.size, data_size)  # a URL that reopens it
    return index, transfer
