"""safetensors files: the JSON header only, checked the way the reference reader checks it."""

from __future__ import annotations

import json
import re
import struct
from typing import Any, BinaryIO

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
        top, totals, spans = _checked_entries(header, name, 8 + n, size - 8 - n, escaped="\\" in text)
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
    header: object, name: str, data_start: int, data_len: int, *, escaped: bool = True
) -> tuple[PDict, TensorTotals, dict[str, tuple[int, int]]]:
    """The header's tensor entries checked as the reference reader checks them: the tensors as a
    ``PDict`` for the tree, their totals, and each one's bytes in the file (first byte, count).
    ``escaped``: whether the header's text has an escape (a backslash): JSON read from strict UTF-8
    holds a lone surrogate only through a ``\\udXXX`` escape."""
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} has a safetensors header that is not a JSON object.")
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(
            f"{name} has a __metadata__ that is not a map of strings; the safetensors library refuses it."
        )
    if escaped and _has_surrogate([*header, *(metadata or {}), *(metadata or {}).values()]):
        raise CheckpointError(
            f"{name} has a safetensors header with an unpaired surrogate escape (\\udXXX) in a name; "
            "the safetensors library refuses it."
        )
    spans: dict[str, tuple[int, int]] = {}
    top = PDict()
    dtypes: dict[str, tuple[str, int, int]] = {}  # code → (dtype, bits per element, itemsize), once per code
    # (code, header shape) → (dtype, shape, stride, numel, bytes the header needs, bytes torch counts,
    # itemsize): an entry of a code and shape already accepted needs only its offsets checked.
    accepted: dict[
        tuple[str, tuple[int, ...]], tuple[str, tuple[int, ...], tuple[int, ...], int, int, int, int]
    ]
    accepted = {}
    add = top.items.append
    irregular: list[dict[str, object]] = []  # entries with keys of their own: walked for their depth
    params = nbytes = 0
    expected = 0  # where the next entry's data starts, while each starts where the one before ends
    in_order = True
    for key, spec in header.items():
        if key == "__metadata__":
            continue
        if spec.__class__ is not dict:
            raise CheckpointError(f"{name}: the header entry for {_shown(key)} is not an object.")
        if len(spec) != 3:
            irregular.append(spec)
        shape: Any = spec.get("shape")
        offs: Any = spec.get("data_offsets")
        code = spec.get("dtype", "")
        seen = None
        if shape.__class__ is list and code.__class__ is str:
            for s in shape:  # ints only: True and 1.0 are equal to 1 as keys, and refused below
                if s.__class__ is not int:
                    break
            else:
                seen = accepted.get((code, tuple(shape)))
        if seen is not None:
            dtype, shown_shape, stride, numel, need, size, itemsize = seen
            # ``_checked_offsets``, inline for the common entry: two ints in order inside the data
            if offs.__class__ is list and len(offs) == 2:
                begin, end = offs
                if not (begin.__class__ is int and end.__class__ is int and 0 <= begin <= end <= data_len):
                    begin, end = _checked_offsets(key, offs, name, data_len)
            else:
                begin, end = _checked_offsets(key, offs, name, data_len)
            if need != end - begin:
                raise _wrong_size(key, name, end - begin, need)
        else:
            dtype, shown_shape, stride, numel, need, size, itemsize = _checked_entry(
                key, code, shape, offs, name, data_len, dtypes
            )
            begin, end = offs
            accepted[(code, tuple(shape))] = (dtype, shown_shape, stride, numel, need, size, itemsize)
        if begin != expected:
            in_order = False
        expected = end
        spans[key] = (data_start + begin, need)  # (need is end - begin, checked)
        params += numel
        nbytes += size
        # Each tensor is its own storage, contiguous from its start: what the tree shows of it.
        add((key, TensorInfo(shown_shape, dtype, "cpu", key, 0, stride, size, itemsize)))
    if irregular and _too_deep(irregular):  # a list of entries nests as deep as the header
        raise CheckpointError("too deep")  # (the caller names it)
    if not in_order:  # the data in the order of the file, checked for gaps and overlaps
        entries = sorted(
            (start - data_start, start - data_start + n, key) for key, (start, n) in spans.items()
        )
        expected = 0
        for begin, end, key in entries:
            if begin != expected:
                what = "overlaps the one before it" if begin < expected else "leaves a gap before it"
                raise CheckpointError(f"{name}: the data of tensor {escape_text(key[:200])} {what}.")
            expected = end
    # Entries that each start where the one before ends are, sorted, in that same order.
    if expected != data_len:
        raise CheckpointError(
            f"{name}: its data section has {count_of(data_len - expected, 'byte')} no tensor uses."
        )
    return top, TensorTotals(params, nbytes, len(spans)), spans


def _checked_offsets(key: str, offs: object, name: str, data_len: int) -> tuple[int, int]:
    """An entry's data offsets (first byte, end) as the reference reader accepts them."""
    if not (
        type(offs) is list and len(offs) == 2 and type(offs[0]) is int and type(offs[1]) is int
        and offs[0] >= 0 and offs[1] >= 0
    ):  # fmt: skip
        raise CheckpointError(f"{name}: tensor {_shown(key)} has invalid data offsets.")
    begin, end = offs
    if end < begin or end > data_len:
        raise CheckpointError(f"{name}: tensor {_shown(key)} points outside the file's data.")
    return begin, end


def _wrong_size(key: str, name: str, size: int, need: int) -> CheckpointError:
    return CheckpointError(
        f"{name}: tensor {_shown(key)} is {count_of(size, 'byte')} but its shape and dtype need {need:,}."
    )


def _checked_entry(
    key: str, code: object, shape: object, offs: object, name: str, data_len: int,
    dtypes: dict[str, tuple[str, int, int]],
) -> tuple[str, tuple[int, ...], tuple[int, ...], int, int, int, int]:  # fmt: skip
    """One header entry checked as the reference reader checks it: its dtype, the shape and stride
    torch shows, its elements, the bytes its header shape needs and torch counts, and its itemsize."""
    known = dtypes.get(code) if type(code) is str else None
    if known is None:
        dtype = _torch_dtype(code, _shown(key), name)
        assert isinstance(code, str)  # (any other is refused above)
        known = dtypes[code] = (dtype, safetensors_bits(code) or 8, ITEMSIZE.get(dtype, 1))
    dtype = known[0]
    if type(shape) is not list:
        raise CheckpointError(f"{name}: tensor {_shown(key)} has an invalid shape.")
    numel = 1
    for s in shape:
        if type(s) is not int or s < 0:
            raise CheckpointError(f"{name}: tensor {_shown(key)} has an invalid shape.")
        numel *= s
    begin, end = _checked_offsets(key, offs, name, data_len)
    bits = numel * known[1]
    if bits % 8:
        raise CheckpointError(
            f"{name}: tensor {_shown(key)} has {count_of(numel, 'element')} of {code}, which do not fill "
            "whole bytes; the safetensors library refuses it."
        )
    if bits // 8 != end - begin:
        raise _wrong_size(key, name, end - begin, bits // 8)
    dims: list[int] = shape
    packed = DTYPES[dtype].packed
    if packed > 1:  # torch counts packed elements: the last dimension holds `packed` values each
        if not dims or dims[-1] % packed:
            raise CheckpointError(
                f"{name}: tensor {_shown(key)} is {code} with a last dimension torch's {dtype} cannot "
                f"hold (it packs {packed} values per element)."
            )
        dims = [*dims[:-1], dims[-1] // packed]
        numel //= packed
    itemsize = known[2]
    stride: list[int] = []
    acc = 1
    for s in reversed(dims):
        stride.insert(0, acc)
        acc *= s
    return dtype, tuple(dims), tuple(stride), numel, bits // 8, numel * itemsize, itemsize
