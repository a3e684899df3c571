"""The readers of single files, in the order torch.load tells formats apart.

torch.load reads a file as a zip when its first four bytes are a local header, else as a tar when
``tarfile`` opens it (a first header whose checksum holds, whatever its magic), else as a stream
of pickles from its first byte. The readers are tried in that order and the first whose probe
takes the file reads it; the stream readers come in the order their first bytes are told apart
(safetensors, which torch cannot read, is taken by its header before the files it is not).
Formats are told by content, never by a file's name.
"""

from __future__ import annotations

from .lookalikes import binary_data, damaged_tar, known_format, text_kind
from .pickle_stream import (
    Lookalike,
    MisplacedZip,
    PickleReader,
    opcode_first,
    protocol_2_or_later,
    text_pickle,
)
from .reading import FileReader
from .safetensors_header import SafetensorsReader
from .torch_legacy import TorchLegacyReader
from .torch_tar import TorchTarReader
from .torch_zip import TorchZipReader

READERS: tuple[FileReader, ...] = (
    TorchZipReader(),  # a zip: the file starts with a local header
    MisplacedZip(b"PK\x05\x06"),  # a zip that starts with its directory, which torch does not read
    TorchTarReader(),  # a tar: tarfile accepts the first block as a header
    # A stream of pickles, by what its first bytes are:
    TorchLegacyReader(),  # torch.save's legacy magic number
    PickleReader(protocol_2_or_later),
    Lookalike(damaged_tar),
    SafetensorsReader(),
    Lookalike(known_format),  # images, archives, executables, other models
    MisplacedZip(b"PK"),  # a zip that starts with some other record
    PickleReader(text_pickle),  # protocol 0 and 1 are ASCII
    Lookalike(text_kind),
    PickleReader(opcode_first),
    Lookalike(binary_data),  # takes every file left
)


def reader_for(head: bytes, size: int) -> FileReader:
    """The reader of a file whose first 4 KiB are ``head``: the first in ``READERS`` to take it."""
    return next(r for r in READERS if r.probe(head, size))
