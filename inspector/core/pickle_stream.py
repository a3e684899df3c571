"""Files torch.load reads as a stream of pickles from their first byte: a plain pickle, and every
file that looks like something else (torch would unpickle it all the same).

A plain pickle is read to its end, and the pickles after it for their globals (a reader that loads
one after another runs them all). A file that looks like something else is a pickle when it reads
as one; otherwise it is a polyglot when a zip archive hides in it, else what it looks like. A zip
archive appended to a pickle stream is read for its globals too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import CheckpointError, NotACheckpointError
from .formats import Format
from .lookalikes import text_kind
from .model import CheckpointIndex
from .reading import MAX_PICKLE_BYTES, FileReader, OpenedFile, ReadState, read_growing
from .torch_zip import appended_zip, read_archive, scan_member_pickles
from .unpickler import Global, Limits, NeedMoreData, PickleError, SafeUnpickler
from .ziparchive import ZipArchive

#: First bytes of protocol 0 and 1 pickles (their opcodes are ASCII).
_TEXT_OPCODES = (b"(", b"c", b"}", b"]", b")", b"N")
_FIRST_OPCODES = (b"(", b"}", b"]", b")", b"c", b"q")


#: Every byte that is a pickle opcode (protocols 0 to 5, as ``pickletools.opcodes`` lists them: a
#: literal, so that telling a file's kind does not import pickletools and pickle).
OPCODES = frozenset(
    b"().012BCFGIJKLMNPQRSTUVX]abcdeghijlopqrstu}\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b"
    b"\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98"
)


def protocol_2_or_later(head: bytes, size: int) -> bool:
    """The PROTO opcode of pickle protocols 2 to 5, then an opcode: a file whose third byte is none
    (a safetensors header of 128 bytes starts 0x80 0x00 0x00) is no pickle any unpickler reads."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] <= 5 and (len(head) < 3 or head[2] in OPCODES)


def text_pickle(head: bytes, size: int) -> bool:
    """A protocol 0 or 1 pickle, which is ASCII text: it starts with an opcode and ends with "."."""
    return text_kind(head) is not None and head[:1] in _TEXT_OPCODES and head.rstrip().endswith(b".")


def opcode_first(head: bytes, size: int) -> bool:
    """Binary bytes that start with an opcode of the oldest protocols."""
    return head[:1] in _FIRST_OPCODES


class PickleReader(FileReader):
    """A plain pickle (not torch.save's layout), taken by one of the probes above."""

    formats = (Format.PICKLE,)

    def __init__(self, probe: Callable[[bytes, int], bool]) -> None:
        self._probe = probe

    def probe(self, head: bytes, size: int) -> bool:
        return self._probe(head, size)

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        top = read_pickle(file, state, warnings)
        scan_appended_zip(file, state, warnings)
        return state.index(file, Format.PICKLE, top, warnings)


class Lookalike(FileReader):
    """A file that looks like something other than a checkpoint (``describe`` says what)."""

    formats = (Format.PICKLE, Format.POLYGLOT)

    def __init__(self, describe: Callable[[bytes, int], str | None]) -> None:
        self.describe = describe

    def probe(self, head: bytes, size: int) -> bool:
        return self.describe(head, size) is not None

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        return read_unlike_pickle(file, state, warnings, self.describe(file.head, file.size))


class MisplacedZip(FileReader):
    """A zip archive that does not start with a local header: torch.load does not read it as a zip."""

    formats = (Format.PICKLE, Format.POLYGLOT)

    def __init__(self, start: bytes) -> None:
        self.start = start

    def probe(self, head: bytes, size: int) -> bool:
        return head.startswith(self.start)

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        return read_unlike_pickle(file, state, warnings, None, zip_archive=True)


def read_pickle(file: OpenedFile, state: ReadState, warnings: list[str]) -> Any:
    """The object of a plain pickle; pickles that follow it are read for their globals, as many as
    there are."""
    f, size = file.f, file.size

    def parse(data: bytes) -> tuple[Any, int]:
        state.reset()
        return state.unpickle(data, 0, "pickle")

    top, end = read_growing(f, size, parse, state.name)
    warnings.append("this is a plain pickle, not a torch.save file: torch.load cannot open it")
    if end < size:
        f.seek(end)
        rest = f.read(min(size - end, MAX_PICKLE_BYTES))
        n = 0
        pos = 0
        while pos < len(rest):
            before = len(state.globals)
            tried: list[str] = []
            nxt = state.scan_only(rest, pos, f"pickle {n + 2}", tried)
            if nxt is None:  # a damaged pickle, or bytes that are none
                if len(state.globals) > before or rest[pos] == 0x80:
                    n += 1
                    warnings.extend(tried)
                break
            n += 1
            pos = nxt
        if n:
            warnings.append(
                f"{n} more pickle(s) follow the first; a reader that loads them one after another "
                "would run them too, so their globals are listed"
            )
        if pos < len(rest):
            warnings.append(f"{size - end - pos:,} bytes follow the pickle's end")
    return top


def read_unlike_pickle(
    file: OpenedFile, state: ReadState, warnings: list[str], what: str | None, *, zip_archive: bool = False
) -> CheckpointIndex:
    """A file that does not look like a pickle: torch.load would still unpickle it from its first
    byte, so it is a pickle when it reads as one (to its end, or naming a global before it fails);
    otherwise a ``zip_archive`` is read as zip readers that search for the directory read it, and
    any other file is ``what`` it looks like, or a polyglot with a zip archive appended."""
    f, size, name = file.f, file.size, state.name
    if _may_be_pickle(file):
        try:
            top = read_pickle(file, state, warnings)
        except CheckpointError:
            if state.globals:
                raise
        else:
            scan_appended_zip(file, state, warnings)
            return state.index(file, Format.PICKLE, top, warnings)
        state.reset()
    if zip_archive:
        warnings.append(
            "this zip archive does not start with a local file header, so torch.load does not read it "
            "as a zip; zip readers that search for the directory do"
        )
        _, top = read_archive(ZipArchive.as_zipfile_reads_it(f, size, name), state, warnings)
        return state.index(file, Format.POLYGLOT, top, warnings)
    archive = appended_zip(f, size, name)
    if archive is None:
        raise NotACheckpointError(f"{name} is {what}, not a checkpoint.")
    warnings.append(
        f"this file is {what} with a zip archive appended (a polyglot file): torch.load "
        "cannot open it, but zip readers can; the archive was read without running anything"
    )
    _, top = read_archive(archive, state, warnings)
    return state.index(file, Format.POLYGLOT, top, warnings)


def scan_appended_zip(file: OpenedFile, state: ReadState, warnings: list[str]) -> None:
    """The globals of a zip archive appended to a pickle stream, which torch does not read but
    zip readers that search for the directory do."""
    appended = appended_zip(file.f, file.size, state.name)
    if appended is not None:
        warnings.append(
            "a zip archive is appended to the pickle (a polyglot file): torch.load reads "
            "the pickle, other tools may read the zip; the globals of both are listed"
        )
        scan_member_pickles(appended, "", state, warnings, skip=None)


def _may_be_pickle(file: OpenedFile) -> bool:
    """Whether the file's first 64 KiB read as a pickle (to its end, or naming a global, or still
    going): most files that are not one fail on their first bytes, before a longer read."""
    file.f.seek(0)
    head = file.f.read(1 << 16)
    named: list[Global] = []
    try:
        SafeUnpickler(head, on_global=named.append, limits=Limits(max_opcodes=100_000)).load()
    except NeedMoreData:
        return True
    except PickleError as exc:  # malformed: a pickle only if it named a global before; or a limit hit
        return bool(named) or exc.unscanned
    return True
