"""The one dtype table: torch's names, element sizes, safetensors codes and legacy storage classes.

Every format reads and writes dtypes through this table (no torch import). The safetensors codes
are the reference crate's ``Dtype`` list; the packed ones (F4, F6_*) count sub-byte elements in
the header, where torch counts bytes (``float4_e2m1fn_x2`` holds two F4 values per element).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DType:
    """One torch dtype and what every format calls it."""

    name: str  # as ``str(torch.float32)`` minus ``torch.``
    itemsize: int  # bytes per element, as torch's ``element_size()``
    safetensors: str | None = None  # the safetensors header code, None where the format has none
    packed: int = 1  # safetensors header elements per torch element (F4: two 4-bit values per byte)
    storage: str | None = None  # the legacy storage class (``torch.FloatStorage``), None without one
    numpy: str = "uint8"  # the NumPy dtype that holds its values as text (bfloat16, float8 → float32)
    raw: str | None = None  # the integer dtype its bits are read as when it has no arithmetic


_TABLE: tuple[DType, ...] = (
    DType("float64", 8, "F64", storage="DoubleStorage", numpy="float64"),
    DType("float32", 4, "F32", storage="FloatStorage", numpy="float32"),
    DType("float16", 2, "F16", storage="HalfStorage", numpy="float16"),
    DType("bfloat16", 2, "BF16", storage="BFloat16Storage", numpy="float32"),
    DType("complex128", 16, None, storage="ComplexDoubleStorage", numpy="complex128"),
    DType("complex64", 8, "C64", storage="ComplexFloatStorage", numpy="complex64"),
    DType("complex32", 4, numpy="complex64"),
    DType("int64", 8, "I64", storage="LongStorage", numpy="int64"),
    DType("int32", 4, "I32", storage="IntStorage", numpy="int32"),
    DType("int16", 2, "I16", storage="ShortStorage", numpy="int16"),
    DType("int8", 1, "I8", storage="CharStorage", numpy="int8"),
    DType("uint64", 8, "U64", numpy="uint64"),
    DType("uint32", 4, "U32", numpy="uint32"),
    DType("uint16", 2, "U16", numpy="uint16"),
    DType("uint8", 1, "U8", storage="ByteStorage", numpy="uint8"),
    DType("bool", 1, "BOOL", storage="BoolStorage", numpy="bool"),
    DType("float8_e4m3fn", 1, "F8_E4M3", numpy="float32"),
    DType("float8_e4m3fnuz", 1, "F8_E4M3FNUZ", numpy="float32"),
    DType("float8_e5m2", 1, "F8_E5M2", numpy="float32"),
    DType("float8_e5m2fnuz", 1, "F8_E5M2FNUZ", numpy="float32"),
    DType("float8_e8m0fnu", 1, "F8_E8M0", numpy="float32"),
    DType("float4_e2m1fn_x2", 1, "F4", packed=2, raw="uint8"),
    DType("qint8", 1, storage="QInt8Storage"),
    DType("quint8", 1, storage="QUInt8Storage"),
    DType("qint32", 4, storage="QInt32Storage"),
    DType("quint4x2", 1, storage="QUInt4x2Storage"),
    DType("quint2x4", 1, storage="QUInt2x4Storage"),
    DType("bits8", 1, raw="uint8"),
    DType("bits16", 2, numpy="uint16", raw="uint16"),
    DType("bits1x8", 1, raw="uint8"),
    DType("bits2x4", 1, raw="uint8"),
    DType("bits4x2", 1, raw="uint8"),
    *(DType(f"int{n}", 1) for n in range(1, 8)),
    *(DType(f"uint{n}", 1) for n in range(1, 8)),
)

#: dtype name → its record.
DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}

#: dtype name → bytes per element.
ITEMSIZE: dict[str, int] = {d.name: d.itemsize for d in _TABLE}

#: safetensors code → dtype name (every code torch has a dtype for).
SAFETENSORS_DTYPE: dict[str, str] = {d.safetensors: d.name for d in _TABLE if d.safetensors}

#: dtype name → safetensors code.
SAFETENSORS_CODE: dict[str, str] = {d.name: d.safetensors for d in _TABLE if d.safetensors}

#: safetensors codes the format defines but torch has no dtype for, with their bits per element.
SAFETENSORS_WITHOUT_TORCH: dict[str, tuple[int, str]] = {
    "F6_E2M3": (6, "6-bit floats"),
    "F6_E3M2": (6, "6-bit floats"),
}


def safetensors_bits(code: str) -> int | None:
    """Bits per header element of a safetensors code (4 for F4, 6 for F6_*), None if unknown."""
    name = SAFETENSORS_DTYPE.get(code)
    if name is not None:
        d = DTYPES[name]
        return d.itemsize * 8 // d.packed
    found = SAFETENSORS_WITHOUT_TORCH.get(code)
    return found[0] if found else None


#: Legacy storage class name (``torch.FloatStorage``, ``torch.cuda.FloatStorage``) → dtype name.
STORAGE_DTYPE: dict[str, str] = {
    **{d.storage: d.name for d in _TABLE if d.storage},
    "UntypedStorage": "uint8",  # bytes; the tensor's own dtype comes from _rebuild_tensor_v3
    "TypedStorage": "uint8",
}

#: Dtypes torch's legacy writer has a storage class for (it writes others, then cannot load them).
LEGACY_DTYPES = frozenset(d.name for d in _TABLE if d.storage and not d.name.startswith("q"))

#: dtype name → the integer dtype its bits are read as (packed and bit types have no arithmetic).
RAW_VIEW: dict[str, str] = {d.name: d.raw for d in _TABLE if d.raw}

#: Modules whose storage classes torch recognises.
STORAGE_MODULES = frozenset({"torch", "torch.cuda", "torch.storage"})

#: Tensor type names that torch's allowlist accepts (``torch.FloatTensor`` …).
TENSOR_TYPES = frozenset(
    {
        "BFloat16Tensor", "BoolTensor", "ByteTensor", "CharTensor", "DoubleTensor",
        "FloatTensor", "HalfTensor", "IntTensor", "LongTensor", "ShortTensor",
    }
)  # fmt: skip

QSCHEMES = frozenset(
    {
        "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
        "per_channel_symmetric", "per_channel_affine_float_qparams",
    }
)  # fmt: skip

LAYOUTS = frozenset(
    {
        "strided",
        "sparse_coo",
        "sparse_csr",
        "sparse_csc",
        "sparse_bsr",
        "sparse_bsc",
        "_mkldnn",
        "jagged",
    }
)
