"""A pickle interpreter that executes nothing.

It reads every opcode of protocols 0–5 and builds inert stand-ins (``Global``, ``Call``,
``Instance``, ``PDict`` …) instead of importing modules or calling anything. Callers give it two
hooks: ``reduce_hook`` turns calls of known functions (torch's tensor rebuilders) into their own
records, and ``persistent_load`` turns persistent ids into storage records. Every limit is fixed
in advance (opcodes, memo entries, sizes, time) or grows with the bytes the pickle really has,
never with the file's claims, and none is stricter than CPython's own unpickler where the file's
meaning depends on it (integer digits, line lengths, nesting): a pickle CPython reads to a payload
is read to it here too. Where a resource limit of this reader does stop it, the rest of the
pickle is still scanned for globals (without building anything), so what it names past that point
is listed too. The bulk of a checkpoint's pickle, ``torch.save``'s entries of plain tensors, is read
one entry at a time, with exactly the effects its opcodes have one by one.
"""

from __future__ import annotations

import codecs
import copyreg
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .errors import CheckpointError
from .model import OpaqueValue
from .read_progress import PICKLE, report


class PickleError(CheckpointError):
    """The pickle is malformed, truncated, or exceeds a limit.

    ``unscanned`` is set when a limit of this reader stopped the read and even the globals-only
    scan of the rest could not reach the end: part of the pickle was never looked at.
    """

    unscanned = False


class NeedMoreData(Exception):
    """The pickle runs past the end of the buffer it was given (the caller may give more).

    ``needed`` is the end offset an opcode's length field asks for, when one does: a caller can
    then refuse a claim beyond the file at once instead of reading more.
    """

    def __init__(self, needed: int = 0) -> None:
        super().__init__(needed)
        self.needed = needed


class Global:
    """A reference to ``module.name``; never imported."""

    __slots__ = ("module", "name", "offset", "qualname")

    def __init__(self, module: str, name: str, offset: int = 0) -> None:
        self.module = module
        self.name = name
        self.offset = offset
        self.qualname = f"{module}.{name}"

    def __repr__(self) -> str:
        return f"Global({self.qualname!r})"


@dataclass(eq=False, slots=True)
class Call:
    """``func(*args)`` as the pickle asked for it, never performed; BUILD/SETITEMS/APPENDS land here."""

    func: Any
    args: Any
    state: Any = None
    items: list[tuple[Any, Any]] = field(default_factory=list)
    list_items: list[Any] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Instance:
    """``cls.__new__(cls, *args)`` (NEWOBJ, INST, OBJ), never performed."""

    cls: Any
    args: Any
    state: Any = None
    items: list[tuple[Any, Any]] = field(default_factory=list)
    list_items: list[Any] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class PDict:
    """A dict as a list of pairs: keys are never hashed, duplicates are kept, order is the file's."""

    items: list[tuple[Any, Any]] = field(default_factory=list)
    cls: str = "dict"


@dataclass(eq=False, slots=True)
class PSet:
    items: list[Any] = field(default_factory=list)
    frozen: bool = False


@dataclass(eq=False, slots=True)
class PersistentRef:
    """A persistent id nobody claimed."""

    pid: Any


@dataclass
class Limits:
    """Fixed bounds on one pickle; a file that needs more is refused with a sentence saying which.

    ``max_bytes`` bounds an estimate of the memory the stand-ins take (objects built, memo entries,
    references, bytes copied), so a small hostile pickle cannot make the reader allocate gigabytes.
    A ``torch.save`` of 100,000 tensors needs 3 M opcodes, 0.8 M memo entries and about 150 MB.
    Marks nest as deep as the stack may grow (CPython has no other bound); every mark is charged.
    """

    max_opcodes: int = 30_000_000
    max_marks: int = 2_000_000
    max_stack: int = 2_000_000
    max_memo: int = 5_000_000
    max_bytes: int = 512 << 20
    max_name_chars: int = 1000
    max_seconds: float = 60.0

    @classmethod
    def for_pickle(cls, nbytes: int) -> Limits:
        """The limits for a pickle of ``nbytes`` real bytes: the fixed ones, or more where its own
        bytes need more (no opcode is shorter than a byte, and ``torch.save`` output takes about 20
        bytes of stand-ins per byte), never past the caps."""
        fixed = cls()
        return cls(
            max_opcodes=max(fixed.max_opcodes, nbytes),
            max_memo=max(fixed.max_memo, nbytes // 8),
            max_bytes=max(fixed.max_bytes, min(STANDIN_BYTES_PER_BYTE * nbytes, MAX_STANDIN_BYTES)),
            max_seconds=max(fixed.max_seconds, min(nbytes / _BYTES_PER_SECOND, _MAX_SECONDS)),
        )


@dataclass
class Budget:
    """What all the pickles of one file may use together, so a file of many pickles (or many
    directory records naming one pickle) costs no more than one large pickle."""

    opcodes: int = 60_000_000
    nbytes: int = 1 << 30
    seconds: float = 90.0
    scan_opcodes: int = 50_000_000  # the globals-only scan past a limit
    deadline: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @classmethod
    def for_file(cls, size: int) -> Budget:
        """The budget of a file of ``size`` bytes on disk (its pickles cannot hold more than that):
        the fixed one, or as ``Limits.for_pickle`` grows for a pickle of that size, never past the caps."""
        fixed = cls()
        return cls(
            opcodes=max(fixed.opcodes, size),
            nbytes=max(fixed.nbytes, min(STANDIN_BYTES_PER_BYTE * size, MAX_STANDIN_BYTES)),
            seconds=max(fixed.seconds, min(size / _BYTES_PER_SECOND, _MAX_SECONDS)),
            scan_opcodes=max(fixed.scan_opcodes, size),
        )


#: Estimated bytes of stand-ins a pickle may make per byte of its own, past the fixed limits, and
#: the most a pickle or a file may make whatever its size; seconds of reading per byte, likewise.
STANDIN_BYTES_PER_BYTE = 24
MAX_STANDIN_BYTES = 3 << 30
_BYTES_PER_SECOND = 1 << 20
_MAX_SECONDS = 600.0


#: CPython refuses decimal integers longer than this (``sys.int_info.default_max_str_digits``).
MAX_INT_DIGITS = 4300
#: Integers at most this wide always print within the above; wider ones are checked.
_MAX_INT_BITS = 14_280
_TEN_TO_MAX_DIGITS = 10**MAX_INT_DIGITS
_LONG_TEXT = 4096  # strings longer than this are charged by their length each time they are a dict key
_SCAN_SECONDS = 20.0


#: Estimated bytes of the stand-ins, charged per opcode (references and memo entries are added).
_OBJ = 64  # a small object: int, float, Global, tuple header
_BOX = 120  # PDict, PSet or list with its empty item list
_CALL = 260  # Call or Instance with their two empty item lists
_REF = 8  # one reference on the stack or in a container
_MEMO_ENTRY = 100  # a memo dict slot and its key
_GLOBAL = 600  # a Global, and the record its caller keeps of it


def _memo_put(memo: list[Any] | dict[int, Any], i: int, value: Any) -> list[Any] | dict[int, Any]:
    """Store a memo entry: at the end of the list or over one of its entries, or in the dict the
    list becomes (with every entry it held) when the index leaves a gap or is negative."""
    if memo.__class__ is list:
        if i == len(memo):  # (a protocol-0 PUT numbers its entries in order too)
            memo.append(value)
            return memo
        if 0 <= i < len(memo):
            memo[i] = value
            return memo
        memo = dict(enumerate(memo))
    memo[i] = value
    return memo


def _printable_int(value: int, description: str) -> Any:
    """``value``, or its description when its decimal text would be longer than Python prints."""
    return value if abs(value) < _TEN_TO_MAX_DIGITS else OpaqueValue(description)


def _strtol(line: bytes) -> int | None:
    """C's ``strtol(s, &end, 0)`` as CPython's INT opcode uses it first: the value when the whole
    line is one C long (``010`` is octal there), else None (CPython then asks Python's int())."""
    text = line.lstrip(b" \t\n\r\f\v")
    sign = 1
    if text[:1] in (b"+", b"-"):
        sign = -1 if text[:1] == b"-" else 1
        text = text[1:]
    if text[:2] in (b"0x", b"0X") and len(text) > 2:
        digits, base = text[2:], 16
    elif text[:1] == b"0":
        digits, base = text, 8
    else:
        digits, base = text, 10
    allowed = b"0123456789abcdefABCDEF"[: 16 + 6 if base == 16 else base]
    if not digits or len(digits) > 24 or any(c not in allowed for c in digits):
        return None
    value = sign * int(digits, base)
    return value if -(1 << 63) <= value < 1 << 63 else None


_U32 = struct.Struct("<I")

#: Whether one torch.save tensor entry is done at once (the same effects as its opcodes one by one).
TENSOR_ENTRIES = True

Hook = Callable[[Any, Any], Any]
_NOT_HANDLED = object()


# The bytes ``torch.save`` writes for one ``key: tensor`` entry of a state dict, after the key's
# BINUNICODE: the key's memo put, the rebuild function's BINGET, the persistent id ``('storage',
# <storage class>, key, location, numel)``, offset, size and stride, requires_grad, the empty
# OrderedDict of backward hooks, and the rebuild call, each memo put and get of either width.
# Its groups say which width (or form) each part has, and so where every argument lies.
_PUT = rb"(?:q|(r)...)."
_GET = rb"(?:h|(j)...)."
_INT = rb"(?:K|(M).|(J)...)."
_SIZE = rb"(?:(\))|" + _INT + rb"(?:(\x85)|" + _INT + rb"(?:(\x86)|" + _INT + rb"\x87))" + _PUT + rb")"
_DIGITS = b"|".join(b"(?<=\\x%02x\\x00\\x00\\x00)[0-9]{%d}" % (n, n) for n in range(1, 10))
_STORAGE_KEY = rb"(?:X([\x01-\x09])\x00\x00\x00(?:" + _DIGITS + rb")" + _PUT + rb"|" + _GET + rb")"
_ENTRY_PARTS = (
    "put", "get", "marks", "get", "get", "key", "get", "int", "tuple", "put", "persid", "int", "size", "size",
    "grad", "get", "hooks", "put", "tuple", "put", "reduce", "put",
)  # fmt: skip
#: Each part of fixed form: its pattern, its struct format, its opcodes.
_FIXED_PARTS = {
    "marks": (rb"\(\(", "2x", 2),
    "tuple": (b"t", "x", 1),
    "persid": (b"Q", "x", 1),
    "grad": (rb"[\x88\x89]", "B", 1),
    "hooks": (rb"\)R", "2x", 2),
    "reduce": (b"R", "x", 1),
}
_PART_PATTERN = {
    "put": _PUT, "get": _GET, "int": _INT, "size": _SIZE, "key": _STORAGE_KEY,
    **{name: part[0] for name, part in _FIXED_PARTS.items()},
}  # fmt: skip
_TENSOR_ENTRY = re.compile(b"".join(_PART_PATTERN[p] for p in _ENTRY_PARTS), re.DOTALL)
#: The most opcodes such an entry has after its key's BINUNICODE (three-dimensional sizes).
_TENSOR_ENTRY_OPS = 33
_NEVER_STORED = "GET of a memo entry that was never stored"
_INDEX = {None: "xB", b"r": "xI", b"j": "xI"}  # BINPUT/BINGET, LONG_BINPUT/LONG_BINGET
_MAX_ENTRY_LAYOUTS = 1024

#: (unpack, length, opcodes, bytes made, new storage key, size end, stride start, stride end,
#: after BINPERSID, after the hooks' REDUCE, after the rebuild REDUCE, offsets of the memo gets,
#: the pattern of exactly this layout, the indexes its memo puts give, their number)
EntryLayout = tuple[
    Callable[[Any, int], tuple[Any, ...]], int, int, int, bool, int, int, int, int, int, int, tuple[int, ...],
    Callable[[Any, int], Any], Callable[[tuple[Any, ...]], tuple[int, ...]], int,
]  # fmt: skip
_ENTRY_LAYOUTS: dict[tuple[Any, ...], EntryLayout] = {}
_WIDE = {"put": (rb"q.", rb"r...."), "get": (rb"h.", rb"j....")}


def _entry_layout(groups: tuple[Any, ...]) -> EntryLayout:
    """Where the arguments of an entry whose widths and forms ``groups`` gives lie (one struct reads
    them all), with its opcodes and the bytes they make. The layouts kept start over past their
    number (a file of many odd layouts leaves the next file none of its own)."""
    if len(_ENTRY_LAYOUTS) >= _MAX_ENTRY_LAYOUTS:
        _ENTRY_LAYOUTS.clear()
    fmt = "<"
    exact = b""
    ops = 0
    made = 0
    fields = 0
    after: dict[str, int] = {}
    gets: list[int] = []
    ends: list[int] = []
    g = iter(groups)

    def index(part: str, wide: Any) -> str:
        nonlocal exact
        exact += _WIDE[part][wide is not None]
        return _INDEX[wide]

    def integer(mid: Any, wide: Any) -> str:
        nonlocal made, exact
        made += _OBJ if wide else 0
        exact += rb"J...." if wide else rb"M.." if mid else rb"K."
        return "xi" if wide else "xH" if mid else "xB"

    for part in _ENTRY_PARTS:
        at = struct.calcsize(fmt)
        if part in ("put", "get"):
            if part == "get":
                gets.append(at)
            fmt += index(part, next(g))
            ops += 1
            fields += 1
        elif part == "int":
            fmt += integer(next(g), next(g))
            ops += 1
            fields += 1
        elif part == "key":
            n, put, get = next(g), next(g), next(g)
            if n is not None:  # BINUNICODE and its put
                exact += b"X" + re.escape(n + b"\x00\x00\x00") + b"[0-9]{%d}" % n[0]
                fmt += f"x4x{n[0]}s" + index("put", put)
                made += _OBJ + n[0]
                ops += 2
            else:  # a BINGET of a key met before (a shared storage); "0s" keeps the fields in place
                gets.append(at)
                fmt += index("get", get) + "0s"
                ops += 1
            fields += 2
        elif part == "size":
            empty, m1, j1, one, m2, j2, two, m3, j3, put = (next(g) for _ in range(10))
            if empty:
                fmt += "x"
                exact += rb"\)"
                ops += 1
            else:
                ints = [integer(m1, j1)]
                if not one:
                    ints.append(integer(m2, j2))
                    if not two:
                        ints.append(integer(m3, j3))
                exact += rb"\x%02x" % (0x84 + len(ints))
                fmt += "".join(ints) + "x" + index("put", put)
                ops += len(ints) + 2
                made += _OBJ
                fields += len(ints)
            ends.append(fields)
            fields += 0 if empty else 1
        else:
            exact += _FIXED_PARTS[part][0]
            fmt += _FIXED_PARTS[part][1]
            ops += _FIXED_PARTS[part][2]
            fields += part == "grad"
            after[part] = struct.calcsize(fmt)
    made += 2 * _REF + (_OBJ + 5 * _REF) + _BOX + _CALL + (_OBJ + 6 * _REF) + _CALL
    size_end, stride_end = ends
    new_key = groups[4] is not None
    stride_start = size_end + (size_end > 10)
    puts = [0, *([5] if new_key else []), 8, *([size_end] if size_end > 10 else []),
            *([stride_end] if stride_end > stride_start else []), -3, -2, -1]  # fmt: skip
    layout = (
        struct.Struct(fmt).unpack_from, struct.calcsize(fmt), ops, made, new_key,
        size_end, stride_start, stride_end, after["persid"], after["hooks"],
        after["reduce"], tuple(gets), re.compile(exact, re.DOTALL).match, itemgetter(*puts), len(puts),
    )  # fmt: skip
    _ENTRY_LAYOUTS[groups] = layout
    return layout


def _entry_at(data: Any, pos: int, recent: list[EntryLayout]) -> EntryLayout | None:
    """The layout of the tensor entry at ``pos``, or None where there is none: one of the two met
    last when its exact pattern matches (the cheap test), else the one the general pattern finds."""
    if recent:
        first = recent[0]
        if first[12](data, pos) is not None:
            return first
        if len(recent) > 1:
            second = recent[1]
            if second[12](data, pos) is not None:
                recent[0], recent[1] = second, first
                return second
    entry = _TENSOR_ENTRY.match(data, pos)
    if entry is None:
        return None
    groups = entry.groups()
    layout = _ENTRY_LAYOUTS.get(groups) or _entry_layout(groups)
    if layout is not None:
        recent.insert(0, layout)
        del recent[2:]
    return layout


def _tensor_entry(
    data: Any,
    pos: int,
    key: str,
    layout: EntryLayout,
    memo: list[Any],
    persistent_load: Callable[[Any], Any] | None,
    reduce: Callable[[Any, Any, int], Any],
    err: Callable[[str, int], PickleError],
    at: list[int],
) -> tuple[Any, int, int, int] | None:
    """What the opcodes of one entry of ``layout`` at ``pos`` do, in their order (memo puts and gets,
    hook calls): the tensor's value, the offset after the entry, its opcodes and the bytes they make.
    ``at[0]`` is kept at the offset the opcode-by-opcode loop would be at while a hook runs. None,
    with nothing done, when its memo puts are not the next entries of the memo list, in order."""
    (unpack, length, ops, made, new_key, size_end, stride_start, stride_end, at_q, at_r1, at_r2, gets, _,
     puts_of, puts) = layout  # fmt: skip
    f = unpack(data, pos)
    n = len(memo)
    if puts_of(f) != tuple(range(n, n + puts)):
        return None
    size = f[10:size_end]
    stride = f[stride_start:stride_end]
    put = memo.append
    put(key)
    try:  # (a BINGET's index is never negative: one past the memo's end raises)
        func = memo[f[1]]
        tag = memo[f[2]]
        stype = memo[f[3]]
        if new_key:
            skey = str(f[4], "ascii")
            put(skey)
        else:
            skey = memo[f[4]]
        location = memo[f[6]]
    except IndexError:  # the first get, in their order, of an entry not yet stored
        got = (f[1], f[2], f[3]) + ((f[6],) if new_key else (f[4], f[6]))
        stored = [n + 1] * 3 + ([n + 2] if new_key else [n + 1] * 2)
        first = next(i for i, (index, end) in enumerate(zip(got, stored, strict=True)) if index >= end)
        raise err(_NEVER_STORED, pos + gets[first]) from None
    pid = (tag, stype, skey, location, f[7])
    put(pid)
    at[0] = pos + at_q
    storage = persistent_load(pid) if persistent_load else PersistentRef(pid)
    if size:
        put(size)
    if stride:
        put(stride)
    if f[-4] >= len(memo):
        raise err(_NEVER_STORED, pos + gets[-1])
    hooks_func = memo[f[-4]]
    at[0] = pos + at_r1
    hooks = reduce(hooks_func, (), pos + at_r1 - 1)
    put(hooks)
    args = (storage, f[9], size, stride, f[-5] == 0x88, hooks)
    put(args)
    at[0] = pos + at_r2
    value = reduce(func, args, pos + at_r2 - 1)
    put(value)
    return value, pos + length, ops, made


def _u(data: bytes, pos: int, n: int, end: int) -> int:
    if pos + n > end:
        raise NeedMoreData(pos + n)
    return pos + n


class SafeUnpickler:
    """Interprets one pickle from ``data[start:]``; ``load()`` returns the object and stop offset."""

    NOT_HANDLED = _NOT_HANDLED

    def __init__(
        self,
        data: bytes,
        start: int = 0,
        *,
        name: str = "pickle",
        on_global: Callable[[Global], None] | None = None,
        on_build: Callable[[Call | Instance, Any, int], None] | None = None,
        on_new: Callable[[Instance], None] | None = None,
        reduce_hook: Hook | None = None,
        hooked_calls: frozenset[str] | None = None,
        persistent_load: Callable[[Any], Any] | None = None,
        limits: Limits | None = None,
        budget: Budget | None = None,
    ) -> None:
        """``hooked_calls``: the qualnames of the globals whose calls ``reduce_hook`` acts on; a call
        of any other function (or of anything but a global) skips the hook, which promises to have
        returned ``NOT_HANDLED`` for it without any effect. None: the hook sees every call."""
        self.data = data
        self.start = start
        self.name = name
        self.on_global = on_global
        self.on_build = on_build  # sees each BUILD of a call's result before its state is set
        self.on_new = on_new  # sees each object NEWOBJ, NEWOBJ_EX, INST or OBJ makes
        self.reduce_hook = reduce_hook
        self._hooked_calls = hooked_calls
        self.persistent_load = persistent_load
        self.limits = limits or Limits.for_pickle(max(len(data) - start, 0))
        self.budget = budget
        self._charged = 0  # estimated bytes of copies made outside the opcode loop
        self._max_bytes = self.limits.max_bytes
        self._scanned_from: int | None = None
        self._long_text = False
        self._reported_at = -1
        if budget is not None and budget.nbytes < self._max_bytes:
            self._max_bytes = max(budget.nbytes, 0)

    def _charge(self, nbytes: int, pos: int) -> None:
        """Count a copy whose size depends on the file (a set of a shared list, an encoded string)."""
        self._charged += nbytes
        if self._charged > self._max_bytes:
            raise self._limit(f"its objects would need more than {self._max_bytes >> 20:,} MB", pos)

    def _error(self, what: str, pos: int) -> PickleError:
        return PickleError(f"its {self.name} is malformed: {what} (at byte {pos}).")

    def _limit(self, what: str, pos: int) -> PickleError:
        """A resource limit of this reader (not of the pickle format) stopped the read at ``pos``: the
        rest is scanned for globals only, and the sentence names the limit."""
        stop: int | None = pos
        if self._scanned_from is None:
            self._scanned_from = pos
            stop = scan_globals(self.data, pos, self._scan_hook, self.budget)
        where = "to its end" if stop is None else f"up to byte {stop}"
        exc = PickleError(
            f"its {self.name} exceeds a limit of this reader: {what} (at byte {pos}); the rest was "
            f"scanned for globals only, {where}."
        )
        exc.unscanned = stop is not None
        return exc

    def _scan_hook(self, module: str, name: str, pos: int) -> None:
        if self.on_global is not None and pos != self._reported_at:
            self.on_global(Global(module, name, pos))

    def _global(self, module: Any, name: Any, pos: int) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise self._error("a global name is not a string", pos)
        g = Global(module, name, pos)
        self._reported_at = pos  # listed here: the globals-only scan of a limit met now skips it
        if self.on_global is not None:
            self.on_global(g)
        if len(module) + len(name) > self.limits.max_name_chars:
            raise self._limit(f"a global name is longer than {self.limits.max_name_chars:,} characters", pos)
        self._charge(_GLOBAL + 2 * (len(module) + len(name)), pos)
        return g

    def _reduce(self, func: Any, args: Any, pos: int) -> Any:
        hooked = self._hooked_calls
        if self.reduce_hook is not None and (
            hooked is None or (func.__class__ is Global and func.qualname in hooked)
        ):
            result = self.reduce_hook(func, args)
            if result is not _NOT_HANDLED:
                return result
        if isinstance(func, Global):
            q = func.qualname
            if q in ("collections.OrderedDict", "builtins.dict", "__builtin__.dict"):
                d = PDict(cls="OrderedDict" if "Ordered" in q else "dict")
                if isinstance(args, tuple) and args and isinstance(args[0], list):
                    self._charge(len(args[0]) * _OBJ, pos)
                    for pair in args[0]:
                        if isinstance(pair, (tuple, list)) and len(pair) == 2:
                            d.items.append((pair[0], pair[1]))
                    if self._long_text:
                        self._charge_keys([k for k, _ in d.items], pos)
                return d
            if q in ("builtins.set", "builtins.frozenset", "__builtin__.set"):
                items = args[0] if isinstance(args, tuple) and args else []
                if isinstance(items, (list, tuple)):
                    self._charge(len(items) * _REF, pos)
                return PSet(list(items) if isinstance(items, (list, tuple)) else [], "frozen" in q)
            if (
                q in ("_codecs.encode", "codecs.encode")
                and isinstance(args, tuple)
                and len(args) == 2
                and isinstance(args[0], str)
                and args[1] in ("latin1", "latin-1")
            ):
                try:
                    self._charge(_OBJ + len(args[0]), pos)
                    return args[0].encode("latin1")
                except UnicodeEncodeError:
                    pass
            if q == "builtins.bytearray" and isinstance(args, tuple):
                if len(args) == 1 and isinstance(args[0], bytes):
                    self._charge(_OBJ + len(args[0]), pos)
                    return bytearray(args[0])
                if not args:
                    return bytearray()
            if q == "builtins.complex" and isinstance(args, tuple) and len(args) == 2:
                re_, im = args
                if isinstance(re_, (int, float)) and isinstance(im, (int, float)):
                    return complex(re_, im)
            if (
                q == "torch.Size"
                and isinstance(args, tuple)
                and len(args) == 1
                and isinstance(args[0], tuple)
            ):
                return args[0]
        return Call(func, args)

    def load(self) -> tuple[Any, int]:
        """The object and the offset after its STOP; the shared budget (if any) pays for the work."""
        budget = self.budget
        opcodes = [0]
        try:
            return self._load(opcodes)
        finally:
            if budget is not None:
                budget.opcodes -= opcodes[0]
                budget.nbytes -= self._used

    def _load(self, opcodes: list[int]) -> tuple[Any, int]:
        data = self.data
        end = len(data)
        pos = self.start
        stack: list[Any] = []
        marks: list[int] = []
        # The memo: a list while the puts number its entries 0, 1, 2 … in order, as pickle and
        # torch.save write them (a pointer an entry, no key objects: 10^6 tensors put ~8 M entries),
        # a dict from the first put that does not (``_memo_put``). Lookups read either the same way.
        memo_list: list[Any] = []
        memo: list[Any] | dict[int, Any] = memo_list
        listed = True
        memo_append = memo_list.append
        limits = self.limits
        budget = self.budget
        max_marks = limits.max_marks
        max_stack = limits.max_stack
        max_memo = limits.max_memo
        max_bytes = self._max_bytes
        max_opcodes = limits.max_opcodes
        deadline = time.monotonic() + limits.max_seconds
        shared = ""
        if budget is not None:
            if budget.opcodes < max_opcodes:
                max_opcodes, shared = max(budget.opcodes, 0), " (the budget all of the file's pickles share)"
            deadline = min(deadline, budget.deadline)
        count = 0
        made = 0  # estimated bytes of the objects built by the opcodes so far
        check_every = max(1, min(1 << 14, max_opcodes + 1))
        next_check = min(check_every, max_opcodes + 1)
        unpack_from = struct.unpack_from
        u32 = _U32.unpack_from  # the most frequent argument, its format parsed once
        reduce = self._reduce
        persistent_load = self.persistent_load
        push = stack.append
        err = self._error
        limit = self._limit
        self._long_text = False  # a string long enough to be charged as a key has been made
        self._used = 0
        entries = TENSOR_ENTRIES
        entry_at = _entry_at
        recent: list[EntryLayout] = []  # the layouts of the last tensor entries
        at = [pos]  # where a hook called for a whole tensor entry was called

        def pop_mark(p: int) -> list[Any]:
            if not marks:
                raise err("an opcode needs a MARK that is missing", p)
            k = marks.pop()
            items = stack[k:]
            del stack[k:]
            return items

        def readline(p: int) -> tuple[bytes, int]:
            nl = data.find(b"\n", p)
            if nl < 0:
                raise NeedMoreData
            return bytes(data[p:nl]), nl + 1

        try:
            while True:
                op = data[pos]  # past the end: IndexError, read below as "more data needed"
                opos = pos
                pos += 1
                count += 1
                if count >= next_check:
                    next_check = min(next_check + check_every, max_opcodes + 1)
                    opcodes[0] = count
                    self._used = made + count * _REF + len(memo) * _MEMO_ENTRY + self._charged
                    if count > max_opcodes:
                        raise limit(f"more than {max_opcodes:,} opcodes{shared}", opos)
                    if time.monotonic() > deadline:
                        raise limit("reading took longer than the time this reader allows", opos)
                    report(PICKLE, pos - self.start, end - self.start)  # (its watcher may stop the read)
                    if len(stack) > max_stack:
                        raise limit("the stack grew too large", opos)
                    if len(memo) > max_memo:
                        raise limit(f"more than {max_memo:,} memo entries", opos)
                    if self._used > max_bytes:
                        raise limit(f"its objects would need more than {max_bytes >> 20:,} MB", opos)
                # Most frequent opcodes of torch.save output first, bounds checked inline.
                if op == 0x72:  # LONG_BINPUT
                    i = u32(data, pos)[0]
                    if listed and i == len(memo):
                        memo_append(stack[-1])
                    else:
                        memo = _memo_put(memo, i, stack[-1])
                        listed = memo.__class__ is list
                    pos += 4
                elif op == 0x68:  # BINGET
                    i = data[pos]
                    try:
                        push(memo[i])
                    except LookupError:
                        raise err(_NEVER_STORED, opos) from None
                    pos += 1

                elif op == 0x4B:  # BININT1
                    push(data[pos])
                    pos += 1
                elif op == 0x28:  # MARK
                    marks.append(len(stack))
                    made += _REF
                    if len(marks) > max_marks:
                        raise limit(f"containers nested deeper than {max_marks:,}", opos)
                elif op == 0x58:  # BINUNICODE
                    n = u32(data, pos)[0]
                    pos += 4 + n
                    if pos > end:
                        raise NeedMoreData(pos)
                    if n > _LONG_TEXT:
                        self._long_text = True
                        if n > 1 << 16:
                            self._charge(n, opos)
                    made += _OBJ + n
                    text = str(data[pos - n : pos], "utf-8", "surrogatepass")
                    push(text)
                    if (
                        entries
                        and listed
                        and count + _TENSOR_ENTRY_OPS < next_check
                        and len(marks) + 2 <= max_marks
                        and (layout := entry_at(data, pos, recent)) is not None
                    ):  # a state dict's key and its tensor, as torch.save writes them
                        try:
                            done = _tensor_entry(
                                data, pos, text, layout, memo_list, persistent_load, reduce, err, at
                            )
                        except BaseException:
                            pos = at[0]
                            raise
                        if done is not None:
                            value, pos, ops, more = done
                            push(value)
                            count += ops
                            made += more
                elif op == 0x74:  # TUPLE
                    if not marks:
                        raise err("TUPLE needs a MARK that is missing", opos)
                    k = marks.pop()
                    t = tuple(stack[k:])
                    del stack[k:]
                    made += _OBJ + _REF * len(t)
                    push(t)
                elif op == 0x85:  # TUPLE1
                    if not stack:
                        raise err("TUPLE1 on an empty stack", opos)
                    stack[-1] = (stack[-1],)
                    made += _OBJ
                elif op == 0x86:  # TUPLE2
                    if len(stack) < 2:
                        raise err("TUPLE2 needs two items", opos)
                    b = stack.pop()
                    stack[-1] = (stack[-1], b)
                    made += _OBJ
                elif op == 0x87:  # TUPLE3
                    if len(stack) < 3:
                        raise err("TUPLE3 needs three items", opos)
                    c = stack.pop()
                    b = stack.pop()
                    stack[-1] = (stack[-1], b, c)
                    made += _OBJ
                elif op == 0x52:  # REDUCE
                    if len(stack) < 2:
                        raise err("REDUCE needs a callable and arguments", opos)
                    args = stack.pop()
                    made += _CALL
                    stack[-1] = reduce(stack[-1], args, opos)
                elif op == 0x51:  # BINPERSID
                    if not stack:
                        raise err("BINPERSID on an empty stack", opos)
                    pid = stack[-1]
                    made += _BOX
                    stack[-1] = persistent_load(pid) if persistent_load else PersistentRef(pid)
                elif op == 0x89:  # NEWFALSE
                    push(False)
                elif op == 0x88:  # NEWTRUE
                    push(True)
                elif op == 0x29:  # EMPTY_TUPLE
                    push(())
                elif op == 0x4A:  # BININT
                    pos = _u(data, pos, 4, end)
                    made += _OBJ
                    push(unpack_from("<i", data, pos - 4)[0])
                elif op == 0x4D:  # BININT2
                    pos = _u(data, pos, 2, end)
                    push(unpack_from("<H", data, pos - 2)[0])
                elif op == 0x71:  # BINPUT
                    i = data[pos]
                    if listed and i == len(memo):
                        memo_append(stack[-1])
                    else:
                        memo = _memo_put(memo, i, stack[-1])
                        listed = memo.__class__ is list
                    pos += 1
                elif op == 0x6A:  # LONG_BINGET
                    pos = _u(data, pos, 4, end)
                    i = u32(data, pos - 4)[0]
                    try:
                        push(memo[i])
                    except LookupError:
                        raise err(_NEVER_STORED, opos) from None

                elif op == 0x94:  # MEMOIZE
                    if not stack:
                        raise err("MEMOIZE on an empty stack", opos)
                    if listed:
                        memo_append(stack[-1])
                    else:
                        memo[len(memo)] = stack[-1]
                elif op == 0x8C:  # SHORT_BINUNICODE
                    pos = _u(data, pos, 1, end)
                    n = data[pos - 1]
                    pos = _u(data, pos, n, end)
                    made += _OBJ + n
                    push(str(data[pos - n : pos], "utf-8", "surrogatepass"))
                elif op == 0x63:  # GLOBAL
                    mod, pos = readline(pos)
                    name, pos = readline(pos)
                    push(self._global(mod.decode("utf-8", "replace"), name.decode("utf-8", "replace"), opos))
                elif op == 0x93:  # STACK_GLOBAL
                    if len(stack) < 2:
                        raise err("STACK_GLOBAL needs a module and a name", opos)
                    name_ = stack.pop()
                    stack[-1] = self._global(stack[-1], name_, opos)
                elif op == 0x7D:  # EMPTY_DICT
                    made += _BOX
                    push(PDict())
                elif op == 0x5D:  # EMPTY_LIST
                    made += _BOX
                    push([])
                elif op == 0x75:  # SETITEMS
                    items = pop_mark(opos)
                    made += _OBJ * (len(items) // 2)
                    if not stack:
                        raise err("SETITEMS without a dict", opos)
                    self._setitems(stack[-1], items, opos)
                elif op == 0x73:  # SETITEM
                    if len(stack) < 3:
                        raise err("SETITEM needs a dict, a key and a value", opos)
                    v = stack.pop()
                    k = stack.pop()
                    made += _OBJ
                    self._setitems(stack[-1], [k, v], opos)
                elif op == 0x65:  # APPENDS
                    items = pop_mark(opos)
                    if not stack:
                        raise err("APPENDS without a list", opos)
                    self._append(stack[-1], items, opos)
                elif op == 0x61:  # APPEND
                    if len(stack) < 2:
                        raise err("APPEND needs a list and a value", opos)
                    v = stack.pop()
                    self._append(stack[-1], [v], opos)
                elif op == 0x62:  # BUILD
                    if len(stack) < 2:
                        raise err("BUILD needs an object and its state", opos)
                    state = stack.pop()
                    obj = stack[-1]
                    if isinstance(obj, (Call, Instance)):
                        if self.on_build is not None:
                            self.on_build(obj, state, opos)
                        obj.state = state
                    elif hasattr(obj, "build_state"):
                        obj.build_state(state)
                elif op == 0x81:  # NEWOBJ
                    if len(stack) < 2:
                        raise err("NEWOBJ needs a class and arguments", opos)
                    args = stack.pop()
                    made += _CALL
                    stack[-1] = Instance(stack[-1], args)
                    if self.on_new is not None:
                        self.on_new(stack[-1])
                elif op == 0x92:  # NEWOBJ_EX
                    if len(stack) < 3:
                        raise err("NEWOBJ_EX needs a class and arguments", opos)
                    kwargs = stack.pop()
                    args = stack.pop()
                    made += _CALL
                    stack[-1] = Instance(stack[-1], (args, kwargs))
                    if self.on_new is not None:
                        self.on_new(stack[-1])
                elif op == 0x80:  # PROTO
                    pos = _u(data, pos, 1, end)
                    if data[pos - 1] > 5:
                        raise err(f"unsupported pickle protocol {data[pos - 1]}", opos)
                elif op == 0x95:  # FRAME
                    pos = _u(data, pos, 8, end)
                elif op == 0x2E:  # STOP
                    if not stack:
                        raise err("STOP on an empty stack", opos)
                    opcodes[0] = count
                    self._used = made + count * _REF + len(memo) * _MEMO_ENTRY + self._charged
                    return stack[-1], pos
                elif op == 0x4E:  # NONE
                    push(None)
                elif op == 0x47:  # BINFLOAT
                    pos = _u(data, pos, 8, end)
                    made += _OBJ
                    push(unpack_from(">d", data, pos - 8)[0])
                elif op == 0x8A:  # LONG1
                    pos = _u(data, pos, 1, end)
                    n = data[pos - 1]
                    pos = _u(data, pos, n, end)
                    made += _OBJ + n
                    push(int.from_bytes(data[pos - n : pos], "little", signed=True))
                elif op == 0x8B:  # LONG4
                    pos = _u(data, pos, 4, end)
                    (n,) = unpack_from("<i", data, pos - 4)
                    if n < 0:
                        raise err("an integer with a negative byte count", opos)
                    pos = _u(data, pos, n, end)
                    made += _OBJ + n
                    wide: Any = int.from_bytes(data[pos - n : pos], "little", signed=True)
                    if n * 8 > _MAX_INT_BITS:
                        self._charge(n, opos)
                        wide = _printable_int(wide, f"(an integer of {n:,} bytes)")
                    push(wide)
                elif op == 0x43:  # SHORT_BINBYTES
                    pos = _u(data, pos, 1, end)
                    n = data[pos - 1]
                    pos = _u(data, pos, n, end)
                    made += _OBJ + n
                    push(bytes(data[pos - n : pos]))
                elif op in (0x42, 0x54):  # BINBYTES, BINSTRING
                    pos = _u(data, pos, 4, end)
                    (n,) = unpack_from("<I" if op == 0x42 else "<i", data, pos - 4)
                    if n < 0:
                        raise err("a negative length", opos)
                    pos = _u(data, pos, n, end)
                    self._charge(_OBJ + n, opos)
                    self._long_text = self._long_text or n > _LONG_TEXT
                    raw = bytes(data[pos - n : pos])
                    push(raw if op == 0x42 else raw.decode("latin1"))
                elif op == 0x55:  # SHORT_BINSTRING
                    pos = _u(data, pos, 1, end)
                    n = data[pos - 1]
                    pos = _u(data, pos, n, end)
                    made += _OBJ + n
                    push(bytes(data[pos - n : pos]).decode("latin1"))
                elif op in (0x8D, 0x8E, 0x96):  # BINUNICODE8, BINBYTES8, BYTEARRAY8
                    pos = _u(data, pos, 8, end)
                    (n,) = unpack_from("<Q", data, pos - 8)
                    pos = _u(data, pos, n, end)
                    self._charge(_OBJ + n, opos)
                    self._long_text = self._long_text or n > _LONG_TEXT
                    raw = bytes(data[pos - n : pos])
                    if op == 0x8D:
                        push(raw.decode("utf-8", "surrogatepass"))
                    elif op == 0x8E:
                        push(raw)
                    else:
                        push(bytearray(raw))
                elif op == 0x32:  # DUP
                    if not stack:
                        raise err("DUP on an empty stack", opos)
                    push(stack[-1])

                elif op == 0x30:  # POP
                    if stack and (not marks or marks[-1] < len(stack)):
                        stack.pop()
                    elif marks and marks[-1] == len(stack):
                        marks.pop()
                    else:
                        raise err("POP on an empty stack", opos)
                elif op == 0x31:  # POP_MARK
                    pop_mark(opos)
                elif op == 0x64:  # DICT
                    items = pop_mark(opos)
                    made += _BOX + _OBJ * (len(items) // 2)
                    d = PDict()
                    self._setitems(d, items, opos)
                    push(d)
                elif op == 0x6C:  # LIST
                    made += _BOX
                    push(pop_mark(opos))
                elif op == 0x8F:  # EMPTY_SET
                    made += _BOX
                    push(PSet())
                elif op == 0x90:  # ADDITEMS
                    items = pop_mark(opos)
                    if not stack or not isinstance(stack[-1], PSet):
                        raise err("ADDITEMS without a set", opos)
                    stack[-1].items.extend(items)
                elif op == 0x91:  # FROZENSET
                    made += _BOX
                    push(PSet(pop_mark(opos), frozen=True))
                elif op == 0x69:  # INST (CPython's C unpickler wants the MARK before it reads the names)
                    if not marks:
                        raise err("INST needs a MARK that is missing", opos)
                    mod, pos = readline(pos)
                    name, pos = readline(pos)
                    cls = self._global(mod.decode("utf-8", "replace"), name.decode("utf-8", "replace"), opos)
                    made += _CALL + _OBJ
                    push(Instance(cls, tuple(pop_mark(opos))))
                    if self.on_new is not None:
                        self.on_new(stack[-1])
                elif op == 0x6F:  # OBJ
                    items = pop_mark(opos)
                    if not items:
                        raise err("OBJ without a class", opos)
                    made += _CALL + _OBJ
                    push(Instance(items[0], tuple(items[1:])))
                    if self.on_new is not None:
                        self.on_new(stack[-1])
                elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                    n = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                    pos = _u(data, pos, n, end)
                    code = int.from_bytes(data[pos - n : pos], "little")
                    made += _OBJ
                    # As pickle does: the code names whatever copyreg's registry holds for it here
                    # (a private table that the standard library's type stubs leave out).
                    key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
                    if key is None:
                        raise PickleError(
                            f"its {self.name} uses copyreg extension code {code}, which nothing has "
                            f"registered, so pickle itself refuses to load it (at byte {opos})."
                        )
                    push(self._global(key[0], key[1], opos))
                elif op == 0x50:  # PERSID
                    line, pos = readline(pos)
                    pid = line.decode("ascii", "replace")
                    made += _BOX + len(line)
                    push(persistent_load(pid) if persistent_load else PersistentRef(pid))
                elif op == 0x49:  # INT
                    line, pos = readline(pos)
                    made += _OBJ + len(line)
                    small = _strtol(line)
                    if small is None:
                        push(self._parse_int(line, opos))
                    elif len(line) == 2 and small in (0, 1):
                        push(small == 1)
                    else:
                        push(small)
                elif op == 0x4C:  # LONG
                    line, pos = readline(pos)
                    made += _OBJ + len(line)
                    push(self._parse_int(line[:-1] if line.endswith(b"L") else line, opos))
                elif op == 0x46:  # FLOAT
                    line, pos = readline(pos)
                    made += _OBJ
                    try:
                        push(float(line))
                    except ValueError:
                        raise err("a FLOAT that is not a number", opos) from None
                elif op == 0x53:  # STRING
                    line, pos = readline(pos)
                    made += _OBJ + 2 * len(line)
                    self._long_text = self._long_text or len(line) > _LONG_TEXT
                    if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
                        raise err("a STRING that is not quoted", opos)
                    try:
                        value = codecs.escape_decode(line[1:-1])[0]
                    except ValueError:
                        raise err("a STRING with a bad escape", opos) from None
                    push(value.decode("latin1"))
                elif op == 0x56:  # UNICODE
                    line, pos = readline(pos)
                    made += _OBJ + 4 * len(line)
                    self._long_text = self._long_text or len(line) > _LONG_TEXT
                    push(line.decode("raw_unicode_escape"))
                elif op == 0x67:  # GET
                    line, pos = readline(pos)
                    i = self._memo_index(line, opos)
                    try:
                        if listed and i < 0:  # a list holds no negative index
                            raise KeyError(i)
                        push(memo[i])
                    except LookupError:
                        raise err(_NEVER_STORED, opos) from None

                elif op == 0x70:  # PUT
                    line, pos = readline(pos)
                    if not stack:
                        raise err("PUT on an empty stack", opos)
                    memo = _memo_put(memo, self._memo_index(line, opos), stack[-1])
                    listed = memo.__class__ is list
                elif op in (0x97, 0x98):  # NEXT_BUFFER, READONLY_BUFFER
                    if op == 0x97:
                        raise err("out-of-band buffers are not part of a checkpoint", opos)
                else:
                    raise err(f"unknown opcode 0x{op:02x}", opos)
        except (IndexError, struct.error):
            if pos >= end - 8:
                raise NeedMoreData from None
            raise self._error("an opcode found too few items on the stack", pos) from None
        except UnicodeDecodeError:
            raise self._error("a text argument is not valid UTF-8", pos) from None
        except RecursionError:
            raise self._error("objects nested too deeply", pos) from None
        except MemoryError:
            raise self._error("its objects need more memory than this machine has", pos) from None

    def _parse_int(self, line: bytes, pos: int) -> Any:
        """A protocol-0 integer as CPython reads it (base 0: ``0x…`` too; at most 4,300 decimal
        digits); one too wide to print is kept as a description."""
        try:
            value = int(line, 0)
        except ValueError as exc:
            if len(line) > MAX_INT_DIGITS:
                raise self._error(
                    f"an integer with more than {MAX_INT_DIGITS:,} digits (Python refuses it too)", pos
                ) from None
            raise self._error("an integer that is not a number", pos) from exc
        if value.bit_length() > _MAX_INT_BITS:
            self._charge(len(line), pos)
            return _printable_int(value, f"(an integer of {value.bit_length():,} bits)")
        return value

    def _memo_index(self, line: bytes, pos: int) -> int:
        """A protocol-0 memo index, read in base 10 as CPython reads it."""
        try:
            value = int(line, 10)
        except ValueError:
            raise self._error("a memo index that is not a number", pos) from None
        if not -(1 << 63) <= value < 1 << 63:
            raise self._error("a memo index out of range", pos)
        return value

    def _charge_keys(self, keys: Any, pos: int) -> None:
        """Charge long strings used as dict keys by their length, however often the memo hands out
        the same one: whoever shows the keys joins them into paths, one copy per key."""
        for k in keys:
            if isinstance(k, (str, bytes)) and len(k) > _LONG_TEXT:
                self._charge(len(k), pos)

    def _setitems(self, target: Any, items: list[Any], pos: int) -> None:
        if len(items) % 2:
            raise self._error("SETITEMS with an odd number of items", pos)
        if self._long_text:
            self._charge_keys(items[::2], pos)
        pairs = list(zip(items[::2], items[1::2], strict=True))
        if isinstance(target, (PDict, Call, Instance)):
            target.items.extend(pairs)
        else:
            raise self._error("SETITEMS on something that is not a dict", pos)

    def _append(self, target: Any, items: list[Any], pos: int) -> None:
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, (Call, Instance)):
            target.list_items.extend(items)
        else:
            raise self._error("APPENDS on something that is not a list", pos)


#: Bytes of argument after each opcode: a fixed count, or ("len", n) for an n-byte length then
#: that many bytes, or ("lines", k) for k newline-terminated lines. Opcodes missing here are invalid.
_ARGS: dict[int, Any] = {
    **{op: 0 for op in b"(.0123NR]abdelostu})\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98Q"},
    **{op: 1 for op in b"Khq\x82\x80"},
    **{op: 2 for op in b"M\x83"},
    **{op: 4 for op in b"Jjr\x84"},
    **{op: 8 for op in b"G\x95"},
    **{op: ("len", 1) for op in b"UC\x8c\x8a"},
    **{op: ("len", 4) for op in b"TBX\x8b"},
    **{op: ("len", 8) for op in b"\x8d\x8e\x96"},
    **{op: ("lines", 1) for op in b"ILFSVgpP"},
    **{op: ("lines", 2) for op in b"ci"},
}
_TEXT_OPS = frozenset(b"UC\x8cTBX\x8d\x8e\x96SV")


def scan_globals(
    data: bytes, start: int, on_global: Callable[[str, str, int], None], budget: Budget | None = None
) -> int | None:
    """Walk the opcodes from ``start`` without building anything, through further pickles that
    follow a STOP (a legacy file's next pickle), reporting every GLOBAL, INST and STACK_GLOBAL
    (with the two most recent strings as its names). Returns None where CPython stops too (an
    invalid opcode, a STOP with no pickle after it), else the offset where this scan stopped:
    its own budget ran out, or ``data`` ended (the caller may have more of the file)."""
    end = len(data)
    pos = start
    recent: list[str | None] = []  # the last pushed values, strings kept, others None
    memo: dict[int, str] = {}
    allowed = budget.scan_opcodes if budget is not None else 50_000_000
    deadline = time.monotonic() + _SCAN_SECONDS
    if budget is not None:
        deadline = min(deadline, budget.deadline + _SCAN_SECONDS)
    count = 0
    args = _ARGS
    unpack_from = struct.unpack_from
    try:
        while pos < end:
            count += 1
            if count & 0x3FFF == 0:
                if count > allowed or time.monotonic() > deadline:
                    return pos
                report(PICKLE, pos - start, end - start)
            op = data[pos]
            kind = args.get(op)
            if kind is None:
                return None
            opos = pos
            pos += 1
            text: str | None = None
            if op == 0x2E:  # STOP: on only into a following pickle
                if pos < end and data[pos] == 0x80:
                    recent.clear()
                    continue
                return None
            if kind.__class__ is int:
                if (
                    op in (0x68, 0x6A, 0x71, 0x72) and pos + kind <= end
                ):  # BINGET LONG_BINGET BINPUT LONG_BINPUT
                    idx = data[pos] if kind == 1 else unpack_from("<I", data, pos)[0]
                    if op in (0x68, 0x6A):
                        recent.append(memo.get(idx))
                    elif recent and recent[-1] is not None and len(memo) < 100_000:
                        memo[idx] = recent[-1]
                elif op == 0x94 and recent and recent[-1] is not None and len(memo) < 100_000:
                    memo[len(memo)] = recent[-1]
                elif op == 0x30 and recent:
                    recent.pop()
                elif op == 0x93:
                    names = recent[-2:]
                    del recent[-2:]
                    mod, name = names if len(names) == 2 else [None, None]
                    on_global(mod if mod is not None else "?", name if name is not None else "?", opos)
                    recent.append(None)
                elif op not in (0x80, 0x95, 0x28, 0x94):
                    recent.append(None)
                pos += kind
            elif kind[0] == "len":
                n = kind[1]
                if pos + n > end:
                    return end
                length = int.from_bytes(data[pos : pos + n], "little", signed=op in (0x54, 0x8B))
                pos += n
                if length < 0:
                    return None
                if op in _TEXT_OPS and length <= 1000:
                    text = bytes(data[pos : pos + length]).decode("utf-8", "replace")
                pos += length
                recent.append(text)
            else:
                lines = []
                for _ in range(kind[1]):
                    nl = data.find(b"\n", pos)
                    if nl < 0:
                        return end
                    lines.append(bytes(data[pos:nl]))
                    pos = nl + 1
                if op in (0x63, 0x69):
                    on_global(lines[0].decode("utf-8", "replace"), lines[1].decode("utf-8", "replace"), opos)
                    recent.append(None)
                elif op == 0x53 and len(lines[0]) >= 2:
                    recent.append(lines[0][1:-1].decode("latin1"))
                elif op == 0x56:
                    recent.append(lines[0].decode("utf-8", "replace"))
                elif op == 0x67:
                    recent.append(
                        memo.get(int(lines[0]) if lines[0].isdigit() and len(lines[0]) < 20 else -1)
                    )
                elif op == 0x70:
                    if recent and recent[-1] is not None and lines[0].isdigit() and len(lines[0]) < 20:
                        memo[int(lines[0])] = recent[-1]
                else:
                    recent.append(None)
            if len(recent) > 64:
                del recent[:32]
        return pos
    finally:
        if budget is not None:
            budget.scan_opcodes -= count
