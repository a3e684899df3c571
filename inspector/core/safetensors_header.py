"""safetensors files: the JSON header only, checked the way the reference reader checks it."""

from __future__ import annotations

import json
import re
import struct
from typing import BinaryIO

from .dtypes import DTYPES, ITEMSIZE, SAFETENSORS_DTYPE, SAFETENSORS_WITHOUT_TORCH, safetensors_bits
from .errors import CheckpointError
from .formats import Format
from .formatting import count_of, escape_text
from .model import CheckpointIndex, Node, NodeKind, TensorInfo, TensorTotals
from .reading import FileReader, OpenedFile, ReadState, finish_index
from .tree import TreeBuilder
from .unpickler import PDict

MAX_HEADER = 100 * 1000 * 1000  # the reference implementation's cap

MAX_JSON_DEPTH = 128  # the reference reader's (serde_json's) nesting limit


class SafetensorsReader(FileReader):
    """A safetensors file: an 8-byte header length, then a JSON header that starts with "{"."""

    formats = (Format.SAFETENSORS,)

    def probe(self, head: bytes, size: int) -> bool:
        if len(head) < 10:
            return False
        (n,) = struct.unpack_from("<Q", head, 0)
        if head[8:9] != b"{" or n < 2:
            return False
        # A header length past the end of the file is still a safetensors file that lies (the read
        # says so), unless the 8 bytes are printable text that happens to precede a brace.
        return n <= size - 8 or not all(0x20 <= b < 0x7F for b in head[:8])

    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        return read_safetensors(file.f, file.path, file.size, state.name)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogate(texts: list[str]) -> bool:
    """A lone surrogate (only an unpaired ``\\udXXX`` escape makes one): the reference reader refuses it."""
    return _SURROGATE.search("".join(texts)) is not None


def _header_text(raw: bytes, name: str) -> str:
    """The header as text: UTF-8 strictly, as the reference reader requires (never UTF-16 or -32)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(
            f"{name} has a safetensors header that is not valid UTF-8 (byte {exc.start:,}); "
            "the safetensors library refuses it."
        ) from None


def _too_deep(value: object) -> bool:
    """True when the parsed header nests deeper than the reference reader allows (no recursion)."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[dict[str, object] | list[object], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for c in item.values() if isinstance(item, dict) else item:
            if isinstance(c, list):  # a list of numbers (a shape, offsets) is looked at here at once
                for x in c:
                    if isinstance(x, (dict, list)):
                        stack.append((c, depth + 1))
                        break
                else:
                    if depth + 1 > MAX_JSON_DEPTH:
                        return True
            elif isinstance(c, dict):
                stack.append((c, depth + 1))
    return False


def _shown(key: str) -> str:
    """A key as a sentence names it (bounded, escaped)."""
    return escape_text(key[:200])


def _torch_dtype(code: object, key: str, name: str) -> str:
    """The torch dtype of a safetensors code; a code torch has no dtype for is refused by its name."""
    dtype = SAFETENSORS_DTYPE.get(code) if isinstance(code, str) else None
    if dtype is not None:
        return dtype
    if isinstance(code, str) and code in SAFETENSORS_WITHOUT_TORCH:
        _, what = SAFETENSORS_WITHOUT_TORCH[code]
        raise CheckpointError(
            f"{name}: tensor {key} has dtype {code} ({what}), which torch has no dtype for, so the "
            "file cannot be shown or loaded with torch."
        )
    shown = escape_text(code[:40]) if isinstance(code, str) else type(code).__name__
    raise CheckpointError(f"{name}: tensor {key} has an unknown dtype {shown!r}.")


def read_safetensors(f: BinaryIO, path: str, size: int, name: str) -> CheckpointIndex:
    """Read and check a safetensors header; no tensor data is read."""
    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER:
        raise CheckpointError(f"{name} claims a safetensors header of {n:,} bytes (the limit is 100 MB).")
    if 8 + n > size:
        raise CheckpointError(f"{name} is truncated: its safetensors header runs past the end of the file.")
    text = _header_text(f.read(n), name)
    deep = CheckpointError(
        f"{name} has a safetensors header nested deeper than {MAX_JSON_DEPTH} levels; the safetensors "
        "library refuses it."
    )
    try:
        header = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{name} has a safetensors header that is not valid JSON.", str(exc)) from None
    except RecursionError:
        raise deep from None
    # A header of tensor entries nests three levels; only what the checks below do not accept, or
    # an entry with keys of its own, is walked for its depth (the reference reader refuses a deep
    # header before anything else, so a failed check asks first whether the header was too deep).
    try:
        top, totals, spans = _checked_entries(header, name, 8 + n, size - 8 - n)
    except CheckpointError:
        if _too_deep(header):
            raise deep from None
        raise
    metadata = header.get("__metadata__")
    del header, text  # the parsed JSON is not needed for the tree: at 10^6 entries it is 0.5 GB
    builder = TreeBuilder()
    root: Node = builder.build(top)
    if isinstance(metadata, dict):
        meta = root.add(
            Node(name="__metadata__", kind=NodeKind.DICT, key="__metadata__", path=("__metadata__",),
                 entries=len(metadata))
        )  # fmt: skip
        for k, v in metadata.items():
            meta.add(Node(name=str(k), kind=NodeKind.VALUE, key=f"__metadata__.{k}",
                          path=("__metadata__", str(k)), value=repr(v)))  # fmt: skip
    # Each tensor is its own storage, filled exactly (checked above): the totals are the entries'
    # own, unless the tree was cut short and shows fewer.
    shown = None if builder.warnings else totals
    index = finish_index(path, Format.SAFETENSORS, root, [], size, builder.warnings, shown)
    index.storage_spans = spans
    return index


def _checked_entries(
    header: object, name: str, data_start: int, data_len: int
) -> tuple[PDict, TensorTotals, dict[str, tuple[int, int]]]:
    """The header's tensor entries checked as the reference reader checks them: the tensors as a
    ``PDict`` for the tree, their totals, and each one's bytes in the file (first byte, count)."""
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} has a safetensors header that is not a JSON object.")
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(
            f"{name} has a __metadata__ that is not a map of strings; the safetensors library refuses it."
        )
    texts = [*header, *(metadata or {}), *(metadata or {}).values()]
    if _has_surrogate(texts):
        raise CheckpointError(
            f"{name} has a safetensors header with an unpaired surrogate escape (\\udXXX) in a name; "
            "the safetensors library refuses it."
        )
    entries: list[tuple[int, int, str]] = []
    spans: dict[str, tuple[int, int]] = {}
    top = PDict()
    dtypes: dict[str, tuple[str, int, int]] = {}  # code → (dtype, bits per element, itemsize), once per code
    add = top.items.append
    irregular: list[dict[str, object]] = []  # entries with keys of their own: walked for their depth
    params = nbytes = 0
    for key, spec in header.items():
        if key == "__metadata__":
            continue
        if spec.__class__ is not dict:
            raise CheckpointError(f"{name}: the header entry for {_shown(key)} is not an object.")
        if len(spec) != 3:
            irregular.append(spec)
        shape = spec.get("shape")
        offs = spec.get("data_offsets")
        code = spec.get("dtype", "")
        known = dtypes.get(code) if code.__class__ is str else None
        if known is None:
            dtype = _torch_dtype(code, _shown(key), name)
            known = dtypes[code] = (dtype, safetensors_bits(code) or 8, ITEMSIZE.get(dtype, 1))
        dtype = known[0]
        if shape.__class__ is not list:
            raise CheckpointError(f"{name}: tensor {_shown(key)} has an invalid shape.")
        numel = 1
        for s in shape:
            if s.__class__ is not int or s < 0:
                raise CheckpointError(f"{name}: tensor {_shown(key)} has an invalid shape.")
            numel *= s
        if not (
            offs.__class__ is list and len(offs) == 2 and offs[0].__class__ is int
            and offs[1].__class__ is int and offs[0] >= 0 and offs[1] >= 0
        ):  # fmt: skip
            raise CheckpointError(f"{name}: tensor {_shown(key)} has invalid data offsets.")
        begin, end = offs
        if end < begin or end > data_len:
            raise CheckpointError(f"{name}: tensor {_shown(key)} points outside the file's data.")
        bits = numel * known[1]
        if bits % 8:
            raise CheckpointError(
                f"{name}: tensor {_shown(key)} has {count_of(numel, 'element')} of {code}, which do not fill "
                "whole bytes; the safetensors library refuses it."
            )
        if bits // 8 != end - begin:
            raise CheckpointError(
                f"{name}: tensor {_shown(key)} is {count_of(end - begin, 'byte')} but its shape and dtype "
                f"need {bits // 8:,}."
            )
        packed = DTYPES[dtype].packed
        if packed > 1:  # torch counts packed elements: the last dimension holds `packed` values each
            if not shape or shape[-1] % packed:
                raise CheckpointError(
                    f"{name}: tensor {_shown(key)} is {code} with a last dimension torch's {dtype} cannot "
                    f"hold (it packs {packed} values per element)."
                )
            shape = [*shape[:-1], shape[-1] // packed]
            numel //= packed
        entries.append((begin, end, key))
        spans[key] = (data_start + begin, end - begin)
        itemsize = known[2]
        params += numel
        nbytes += numel * itemsize
        # Each tensor is its own storage, contiguous from its start: what the tree shows of it.
        if len(shape) == 1:
            add((key, TensorInfo((shape[0],), dtype, "cpu", key, 0, (1,), numel * itemsize, itemsize)))
            continue
        stride: list[int] = []
        acc = 1
        for s in reversed(shape):
            stride.insert(0, acc)
            acc *= s
        add((key, TensorInfo(tuple(shape), dtype, "cpu", key, 0, tuple(stride), numel * itemsize, itemsize)))
    if irregular and _too_deep(irregular):  # a list of entries nests as deep as the header
        raise CheckpointError("too deep")  # (the caller names it)
    entries.sort()
    expected = 0
    for begin, end, key in entries:
        if begin != expected:
            what = "overlaps the one before it" if begin < expected else "leaves a gap before it"
            raise CheckpointError(f"{name}: the data of tensor {escape_text(key[:200])} {what}.")
        expected = end
    if expected != data_len:
        raise CheckpointError(
            f"{name}: its data section has {count_of(data_len - expected, 'byte')} no tensor uses."
        )
    return top, TensorTotals(params, nbytes, len(entries)), spans
