"""torch's dtype names, element sizes and legacy storage classes, without importing torch."""

from __future__ import annotations

#: dtype name (as ``str(torch.float32)`` minus ``torch.``) → bytes per element.
ITEMSIZE: dict[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "complex128": 16, "complex64": 8, "complex32": 4,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1,
    "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2": 1, "float8_e5m2fnuz": 1,
    "float8_e8m0fnu": 1, "float4_e2m1fn_x2": 1,
    "qint8": 1, "quint8": 1, "qint32": 4, "quint4x2": 1, "quint2x4": 1,
    "bits8": 1, "bits16": 2, "bits1x8": 1, "bits2x4": 1, "bits4x2": 1,
    **{f"int{n}": 1 for n in range(1, 8)},
    **{f"uint{n}": 1 for n in range(1, 8)},
}  # fmt: skip

#: Legacy storage class name (``torch.FloatStorage``, ``torch.cuda.FloatStorage``) → dtype name.
STORAGE_DTYPE: dict[str, str] = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "QInt8Storage": "qint8",
    "QInt32Storage": "qint32",
    "QUInt8Storage": "quint8",
    "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4",
    "UntypedStorage": "uint8",  # bytes; the tensor's own dtype comes from _rebuild_tensor_v3
    "TypedStorage": "uint8",
}

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
