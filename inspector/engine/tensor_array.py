"""A tensor's elements as NumPy sees them: a strided view of its stored bytes, under torch's dtype name.

Statistics, value pages and safetensors exports need only NumPy and the bytes of one record, so
they never import torch. Dtypes NumPy lacks keep their raw bits (bfloat16, float8, complex32 as
two float16 halves, packed and bit types) and are widened exactly where values are needed:
bfloat16 by a 16-bit shift into float32, every 1- and 2-byte dtype through a table of the value of
each bit pattern. Only ``TensorArray.tensor`` and ``from_tensor`` use torch (imported there).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.dtypes import ITEMSIZE, RAW_VIEW
from inspector.core.errors import CheckpointError

if TYPE_CHECKING:
    import torch

#: Dtypes NumPy holds as they are (little-endian, as every file this reads).
_NATIVE = frozenset({
    "float64", "float32", "float16", "complex128", "complex64", "int64", "int32", "int16", "int8",
    "uint64", "uint32", "uint16", "uint8", "bool",
})  # fmt: skip
_FLOATS = frozenset({
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
    "float8_e5m2fnuz", "float8_e8m0fnu",
})  # fmt: skip
_COMPLEX = frozenset({"complex128", "complex64", "complex32"})
#: complex32: a float16 real half, then a float16 imaginary half.
COMPLEX32 = np.dtype([("real", "<f2"), ("imag", "<f2")])
_UNSIGNED: dict[int, np.dtype[Any]] = {
    1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")
}  # fmt: skip

NDArray = np.ndarray[Any, Any]


def value_kind(dtype: str) -> tuple[str, str | None]:
    """(kind, unsigned dtype its bits are described as) of a dtype: kinds "float", "complex", "int",
    "bool"; packed, bit and other dtypes without arithmetic are described as their raw bits."""
    if dtype in RAW_VIEW:
        return ("int", RAW_VIEW[dtype])
    if dtype == "bool":
        return ("bool", None)
    if dtype in _COMPLEX:
        return ("complex", None)
    if dtype in _FLOATS:
        return ("float", None)
    if dtype in _NATIVE:
        return ("int", None)
    size = ITEMSIZE.get(dtype)
    if size not in _UNSIGNED:
        raise CheckpointError(f"Values of dtype {dtype} cannot be read.")
    return ("int", f"uint{8 * size}")


def storage_dtype(dtype: str) -> np.dtype[Any]:
    """The NumPy dtype a stored element is read as: its own, or its raw bits where NumPy lacks it."""
    if dtype in _NATIVE:
        native: np.dtype[Any] = np.dtype(dtype).newbyteorder("<")
        return native
    if dtype == "complex32":
        return COMPLEX32
    size = ITEMSIZE.get(dtype)
    if size not in _UNSIGNED:
        raise CheckpointError(f"Values of dtype {dtype} cannot be read.")
    return _UNSIGNED[size]


@dataclass(frozen=True)
class TensorArray:
    """The view ``shape``/``stride``/``offset`` (in elements) of ``dtype`` over a storage's bytes.

    ``record`` is a 1-D uint8 array from the storage's first byte that holds every element the view
    reaches (a slice of a mapped file, or memory); read-only when the file's map is.
    """

    dtype: str
    record: NDArray
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def contiguous(self) -> bool:
        """Row-major without gaps (dimensions of length 1 may have any stride, as in torch)."""
        expected = contiguous_strides(self.shape)
        return self.numel == 0 or all(
            size == 1 or s == e for size, s, e in zip(self.shape, self.stride, expected, strict=True)
        )

    def bits(self) -> NDArray:
        """The view as a NumPy array of ``storage_dtype`` (no copy, whatever the strides)."""
        dt = storage_dtype(self.dtype)
        if self.numel == 0:
            return np.empty(self.shape, dtype=dt)
        size = dt.itemsize
        return np.ndarray(
            self.shape, dtype=dt, buffer=self.record, offset=self.offset * size,
            strides=tuple(s * size for s in self.stride),
        )  # fmt: skip

    def tensor(self) -> torch.Tensor:
        """The same view as a torch tensor of the same bytes (imports torch)."""
        import torch

        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise CheckpointError(
                f"Values of dtype {self.dtype} need a torch that has it; this one lacks it."
            )
        if self.numel == 0:
            return torch.empty_strided(self.shape, self.stride, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "the given buffer is not writable"
            raw = torch.from_numpy(self.record)
        return raw.view(dtype).as_strided(self.shape, self.stride, self.offset)


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides (in elements) of a row-major tensor of ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def from_tensor(t: torch.Tensor) -> TensorArray:
    """A torch tensor's view as a ``TensorArray`` of its own storage (no copy for a cpu tensor)."""
    import torch

    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    record = torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()).numpy()
    name = str(t.dtype).removeprefix("torch.")
    return TensorArray(name, record, tuple(t.shape), tuple(t.stride()), int(t.storage_offset()))


def as_array(t: TensorArray | torch.Tensor) -> TensorArray:
    """``t`` itself, or a torch tensor's ``TensorArray``."""
    return t if isinstance(t, TensorArray) else from_tensor(t)


def pattern_bits(bits: NDArray) -> NDArray:
    """A 1- or 2-byte array's elements as their unsigned bit patterns (a view)."""
    return bits.view(_UNSIGNED[bits.dtype.itemsize])


@functools.cache
def pattern_values(dtype: str) -> NDArray:
    """The value of every bit pattern of a 1- or 2-byte dtype, in float64 (exact, as torch widens)."""
    size = ITEMSIZE[dtype]
    patterns = np.arange(1 << (8 * size), dtype=np.uint32)
    _, raw = value_kind(dtype)
    if raw is not None or dtype in ("uint8", "uint16", "bool"):
        values = patterns.astype(np.float64)
    elif dtype in ("int8", "int16"):
        values = patterns.astype(_UNSIGNED[size]).view(np.dtype(dtype)).astype(np.float64)
    elif dtype == "float16":
        values = patterns.astype(np.uint16).view(np.float16).astype(np.float64)
    elif dtype == "bfloat16":
        with np.errstate(invalid="ignore"):  # NaN patterns stay NaN
            values = (patterns << 16).view(np.float32).astype(np.float64)
    else:
        values = _FLOAT8[dtype](patterns.astype(np.int64))
    values.flags.writeable = False
    return values


def _minifloat(p: NDArray, exp_bits: int, man_bits: int, bias: int) -> NDArray:
    """Sign, exponent and mantissa fields of 8-bit patterns as float64 (subnormals included)."""
    e = (p >> man_bits) & ((1 << exp_bits) - 1)
    m = (p & ((1 << man_bits) - 1)).astype(np.float64) / (1 << man_bits)
    v = np.where(e == 0, m * 2.0 ** (1 - bias), (1 + m) * np.exp2((e - bias).astype(np.float64)))
    return np.where(p >> 7, -v, v)


def _e4m3fn(p: NDArray) -> NDArray:
    return np.where((p & 0x7F) == 0x7F, np.nan, _minifloat(p, 4, 3, 7))


def _e4m3fnuz(p: NDArray) -> NDArray:
    return np.where(p == 0x80, np.nan, _minifloat(p, 4, 3, 8))


def _e5m2(p: NDArray) -> NDArray:
    v = _minifloat(p, 5, 2, 15)
    top = (p & 0x7C) == 0x7C
    v = np.where(top & ((p & 0x03) == 0), np.where(p >> 7, -np.inf, np.inf), v)
    return np.where(top & ((p & 0x03) != 0), np.nan, v)


def _e5m2fnuz(p: NDArray) -> NDArray:
    return np.where(p == 0x80, np.nan, _minifloat(p, 5, 2, 16))


def _e8m0fnu(p: NDArray) -> NDArray:
    return np.where(p == 0xFF, np.nan, np.exp2((p - 127).astype(np.float64)))


_FLOAT8 = {
    "float8_e4m3fn": _e4m3fn,
    "float8_e4m3fnuz": _e4m3fnuz,
    "float8_e5m2": _e5m2,
    "float8_e5m2fnuz": _e5m2fnuz,
    "float8_e8m0fnu": _e8m0fnu,
}


def widened(bits: NDArray, dtype: str) -> NDArray:
    """Float or complex elements (in their stored bits) as float64 or complex128, exactly."""
    if dtype == "complex32":
        out = np.empty(bits.shape, dtype=np.complex128)
        out.real, out.imag = bits["real"], bits["imag"]
        return out
    if dtype in _NATIVE:
        return bits.astype(np.complex128 if dtype in _COMPLEX else np.float64)
    return pattern_values(dtype)[pattern_bits(bits)]
