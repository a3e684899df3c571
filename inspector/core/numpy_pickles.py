"""numpy objects in a pickle: the class torch needs allowed for each dtype, whether the state a
pickle gives a dtype is one numpy would derive itself, and whether an array is built as numpy's own
pickles build it.

torch's weights-only BUILD checks the type of the object it fills in, so a numpy array also needs
its dtype's class allowed although no GLOBAL names it. numpy's ``dtype.__setstate__`` takes the
flags, sizes, fields and subarray from the pickle without checking them against the kind, so a
forged state lets an array read memory it does not own, or raw bytes as pointers to Python objects
(the process crashes, or worse); and ``numpy.ndarray(shape, dtype, buffer)`` makes an array over
raw bytes whatever its dtype, objects included. numpy's pickles build every array empty with
``_reconstruct(ndarray, (0,), b'b')`` and then set its state: anything else is judged here, on the
stand-ins, importing nothing.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

from .unpickler import Call, Global, Instance, PDict

#: numpy's DType class of a dtype pickled as ``numpy.dtype(code, False, True)``.
_DTYPE_CLASSES = {
    "b1": "BoolDType", "i1": "Int8DType", "u1": "UInt8DType", "i2": "Int16DType", "u2": "UInt16DType",
    "i4": "Int32DType", "u4": "UInt32DType", "f2": "Float16DType", "f4": "Float32DType",
    "f8": "Float64DType", "f12": "LongDoubleDType", "f16": "LongDoubleDType", "c8": "Complex64DType",
    "c16": "Complex128DType", "c24": "CLongDoubleDType", "c32": "CLongDoubleDType",
    # C long is 64 bits on Linux and macOS: numpy names its 8-byte integers after it there.
    "i8": "Int64DType" if struct.calcsize("l") == 8 else "LongLongDType",
    "u8": "UInt64DType" if struct.calcsize("l") == 8 else "ULongLongDType",
}  # fmt: skip
_KIND_CLASSES = {"O": "ObjectDType", "S": "BytesDType", "U": "StrDType", "V": "VoidDType",
                 "M": "DateTime64DType", "m": "TimeDelta64DType"}  # fmt: skip
_DTYPE_CODE = re.compile(r"[<>|=]?([a-zA-Z])(\d*)")
#: The code of the dtype a DType class builds when called (``numpy.dtypes.ObjectDType()``).
_CLASS_CODES = {
    **{name: code for code, name in _DTYPE_CLASSES.items()},
    "ObjectDType": "O8", "DateTime64DType": "M8", "TimeDelta64DType": "m8",
    "BytesDType": "S", "StrDType": "U", "VoidDType": "V",
}  # fmt: skip

#: numpy's dtype flags (``ndarraytypes.h``).
_NEEDS_INIT, _NEEDS_PYAPI, _ALIGNED_STRUCT = 0x08, 0x10, 0x80
#: The flags numpy derives for a plain dtype of a kind (0 for a kind not listed): an object dtype's
#: say that its items are pointers to Python objects, pickled as a list.
_PLAIN_FLAGS = {"O": 0x3F, "U": _NEEDS_INIT}
#: The flags a struct or subarray that holds no Python objects may carry.
_STRUCT_FLAGS = _NEEDS_INIT | _NEEDS_PYAPI | _ALIGNED_STRUCT
_FLEXIBLE = "SUV"  # kinds whose item size is the state's (numpy ignores it for the others)
_SIZED_KINDS = "biufcOMm"


def implied_globals(qualname: str, args: Any) -> list[tuple[str, str]]:
    """Globals torch's weights-only loading needs for this call although the file never names them
    (the class of the object the call builds): ``numpy.dtype('f4', …)`` needs
    ``numpy.dtypes.Float32DType``."""
    if qualname != "numpy.dtype" or not isinstance(args, tuple) or not args or not isinstance(args[0], str):
        return []
    found = _DTYPE_CODE.fullmatch(args[0])
    if found is None:
        return []
    kind, size = found.groups()
    name = _DTYPE_CLASSES.get(kind + size) or _KIND_CLASSES.get(kind)
    return [("numpy.dtypes", name)] if name else []


def builds_dtype(qualname: str) -> bool:
    """True for the globals whose call builds a numpy dtype (``numpy.dtype``, its DType classes)."""
    return qualname == "numpy.dtype" or qualname.startswith("numpy.dtypes.")


def _kind_and_size(qualname: str, args: Any) -> tuple[str, int | None] | None:
    """(kind, size in the code) of the dtype a call builds; ``None`` when the reader cannot tell."""
    if qualname == "numpy.dtype":
        code = args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else ""
    else:
        code = _CLASS_CODES.get(qualname.removeprefix("numpy.dtypes."), "")
    found = _DTYPE_CODE.fullmatch(code)
    if found is None:
        return None
    kind, digits = found.groups()
    if kind in _FLEXIBLE:
        return kind, (int(digits) * (4 if kind == "U" else 1)) if digits else None
    return (kind, int(digits)) if kind in _SIZED_KINDS and digits else None


def _sizes(state: Any) -> tuple[int, int] | None:
    """(item size, flags) of a state of the form numpy writes, or ``None``."""
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] != len(state) - 5:
        return None  # version 3 has 8 fields, version 4 adds the metadata
    endian, elsize, flags = state[1], state[5], state[7]
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (elsize, state[6], flags))
    return (elsize, flags) if endian in ("<", ">", "|", "=") and ints else None


def _item(obj: Any) -> tuple[str, int] | str:
    """(kind, item size) of a dtype inside a struct or subarray, or why the reader cannot tell."""
    func = obj.func if isinstance(obj, Call) else obj.cls if isinstance(obj, Instance) else None
    found = (
        _kind_and_size(func.qualname, obj.args)
        if isinstance(func, Global) and builds_dtype(func.qualname)
        else None
    )
    if found is None:
        return "a part whose dtype the reader cannot tell"
    kind, size = found
    if kind == "O":
        return "Python objects inside a struct, whose layout numpy takes from the file"
    if kind in _FLEXIBLE:  # numpy's pickles always set a part's state before the whole's
        sizes = _sizes(obj.state)
        if sizes is None:
            return "a part whose size is not set yet, so it could still change"
        size = sizes[0]
    assert size is not None
    return kind, size


def _struct_problem(kind: str, state: tuple[Any, ...], elsize: int, flags: int) -> str | None:
    subarray, names, fields = state[2], state[3], state[4]
    if kind != "V":
        return f"fields or a subarray in a {kind} dtype"
    parts: list[tuple[str, Any, int, int]] = []  # (what, dtype, offset, count)
    if subarray is not None:
        if names is not None or fields is not None or not isinstance(subarray, tuple) or len(subarray) != 2:
            return "a state of a form numpy's pickles never have"
        inner, shape = subarray
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            return "a subarray shape that is not a tuple of sizes"
        parts.append(("a subarray", inner, 0, math.prod(shape)))
    if fields is not None:
        if not isinstance(fields, PDict) or not isinstance(names, tuple):
            return "a state of a form numpy's pickles never have"
        for key, value in fields.items:
            if not isinstance(value, tuple) or len(value) not in (2, 3):
                return "a state of a form numpy's pickles never have"
            offset = value[1]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                return f"field {key!r} at an offset that is not a byte count"
            parts.append((f"field {key!r} at byte {offset}", value[0], offset, 1))
    for what, inner, offset, count in parts:
        item = _item(inner)
        if isinstance(item, str):
            return item
        if offset + item[1] * count > elsize:
            return f"{what}, {item[1] * count} bytes long, past the end of a {elsize}-byte item"
    if flags & ~_STRUCT_FLAGS:
        return f"flags {flags}, which say its items hold Python objects"
    return None


def dtype_state_problem(qualname: str, args: Any, state: Any, previous: Any = None) -> str | None:
    """Why numpy must not be given ``state`` for the dtype ``qualname(*args)`` builds (a phrase), or
    ``None`` for a state numpy would derive itself. ``previous`` is a state set before (numpy's
    pickles set one once: a second would change the dtype under arrays already built with it)."""
    if previous is not None:
        return "its state is set a second time, which changes it under the arrays built with it"
    found = _kind_and_size(qualname, args)
    if found is None:
        return "the reader cannot tell its kind"
    kind = found[0]
    sizes = _sizes(state)
    if sizes is None:
        return "a state of a form numpy's pickles never have"
    elsize, flags = sizes
    if kind in _FLEXIBLE and (elsize < 0 or (kind == "U" and elsize % 4)):
        return f"an item of {elsize} bytes, which no {kind} dtype has"
    if state[2] is not None or state[3] is not None or state[4] is not None:
        return _struct_problem(kind, state, elsize, flags)
    if flags != _PLAIN_FLAGS.get(kind, 0):
        return f"flags {flags}, where numpy gives a {kind!r} dtype {_PLAIN_FLAGS.get(kind, 0)}"
    return None


#: numpy's array builder as its pickles name it (numpy 2.x, and numpy 1.x's name).
_RECONSTRUCT = frozenset({"numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"})
#: The globals whose calls ``implied_globals`` and ``array_call_problem`` may say anything about:
#: for every other call both say nothing, so a reader may skip asking them.
JUDGED_CALLS = frozenset({"numpy.dtype", "numpy.ndarray", *_RECONSTRUCT})


def array_call_problem(qualname: str, args: Any) -> str | None:
    """Why a call (REDUCE, or NEWOBJ of a class) that builds a numpy array is not one numpy's pickles
    make, as a phrase, or ``None``."""
    if qualname == "numpy.ndarray":
        return (
            "numpy's pickles never call numpy.ndarray itself, which makes an array over raw bytes "
            "(read as any dtype, Python objects included) or over uninitialized memory"
        )
    if qualname in _RECONSTRUCT:
        shape = args[1] if isinstance(args, tuple) and len(args) == 3 else None
        if shape != (0,):
            return (
                f"numpy's pickles never make an array of shape {shape!r} with _reconstruct (they make "
                "it empty, then fill it in): it holds uninitialized memory"
            )
    return None
