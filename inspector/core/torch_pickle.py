"""What torch's pickles mean: storage persistent ids and tensor rebuild calls, read statically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .dtypes import ITEMSIZE, LAYOUTS, QSCHEMES, STORAGE_DTYPE, STORAGE_MODULES
from .model import LayoutInfo, Quantization
from .unpickler import Call, Global, PDict, SafeUnpickler


@dataclass(eq=False, slots=True)
class StorageRef:
    """One storage record: ``('storage', type, key, location, numel[, view_metadata])``."""

    key: str
    dtype: str
    location: str
    numel: int  # in elements of ``dtype`` (bytes for UntypedStorage)
    view_offset: int = 0  # legacy files: a view of a larger root storage starts here (elements)

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE.get(self.dtype, 1)


@dataclass(eq=False, slots=True)
class TensorRef:
    """A tensor as its rebuild call describes it; nothing is read or allocated."""

    storage: StorageRef | None
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    device: str
    requires_grad: bool = False
    is_parameter: bool = False
    layout: str = "strided"
    subclass: str | None = None
    #: a sparse, nested or quantized tensor: what its layout adds, and the tensors it is made of
    layout_info: LayoutInfo | None = None
    parts: tuple[tuple[str, TensorRef], ...] = ()

    @property
    def nbytes(self) -> int:
        """Bytes of the view's elements (its storage's itemsize × its numel)."""
        n = 1
        for s in self.shape:
            n *= s
        return n * ITEMSIZE.get(self.dtype, 1)

    def build_state(self, state: Any) -> None:
        """BUILD on a tensor (subclass attributes): nothing to keep for the tree."""


def _brief(v: Any) -> str:
    """A short, bounded description of a value from the file (never its full repr)."""
    if isinstance(v, Global):
        return v.qualname[:200]
    if isinstance(v, str):
        return repr(v[:60])
    if v is None or isinstance(v, (bool, int, float)):
        return repr(v)[:60]
    return f"a {type(v).__name__}"


class BadTensor(ValueError):
    """A rebuild call whose arguments are not what torch writes."""


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadTensor(f"{what} is not an integer")
    return v


MAX_DIMS = 64  # torch refuses tensors with more dimensions
MAX_PROBLEMS = 20  # problems listed one by one; the rest are counted


def _int_tuple(v: Any, what: str) -> tuple[int, ...]:
    if type(v) is tuple and len(v) <= MAX_DIMS and all(type(x) is int and x >= 0 for x in v):
        return v
    if isinstance(v, Call) and isinstance(v.func, Global) and v.func.qualname == "torch.Size":
        v = v.args[0] if isinstance(v.args, tuple) and v.args else ()
    if not isinstance(v, (tuple, list)):
        raise BadTensor(f"{what} is not a tuple")
    if len(v) > MAX_DIMS:
        raise BadTensor(f"{what} has more than {MAX_DIMS} dimensions")
    out = tuple(_int(x, what) for x in v)
    if what == "size" and any(x < 0 for x in out):
        raise BadTensor("size has a negative dimension")
    return out


_REBUILD_TENSOR_V2 = "torch._utils._rebuild_tensor_v2"


def plain_tensor(args: tuple[Any, ...]) -> TensorRef | None:
    """The tensor of the ``_rebuild_tensor_v2`` arguments torch.save writes for a dense tensor of at
    most two dimensions (a storage record, an int offset, int tuples, a bool), answered at once; None
    for any other arguments, which ``TorchPickleReader._tensor`` then reads as it reads every call."""
    storage, offset, size, stride, grad = args[0], args[1], args[2], args[3], args[4]
    if (
        storage.__class__ is not StorageRef
        or offset.__class__ is not int
        or size.__class__ is not tuple
        or stride.__class__ is not tuple
        or (grad is not False and grad is not True)
    ):
        return None
    dims = len(size)
    if dims != len(stride):
        return None
    if dims == 1:
        a, sa = size[0], stride[0]
        if a.__class__ is not int or sa.__class__ is not int or a < 0 or sa < 0:
            return None
    elif dims == 2:
        a, b, sa, sb = size[0], size[1], stride[0], stride[1]
        if (
            a.__class__ is not int
            or b.__class__ is not int
            or sa.__class__ is not int
            or sb.__class__ is not int
            or a < 0
            or b < 0
            or sa < 0
            or sb < 0
        ):
            return None
    elif dims:
        return None
    return TensorRef(
        storage, offset + storage.view_offset, size, stride, storage.dtype, storage.location, grad
    )


def _numel(t: TensorRef) -> int:
    n = 1
    for s in t.shape:
        n *= s
    return n


def _dtype_of(v: Any) -> str:
    if isinstance(v, Global) and v.module == "torch" and v.name in ITEMSIZE:
        return v.name
    raise BadTensor("dtype is not a torch dtype")


def _device_of(v: Any) -> str:
    """``torch.device('cuda', 0)`` / ``torch.device('cuda:0')`` / ``'cuda:0'`` → ``'cuda:0'``."""
    if isinstance(v, str):
        return v
    if isinstance(v, Call) and isinstance(v.func, Global) and v.func.qualname == "torch.device":
        args = v.args if isinstance(v.args, tuple) else ()
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
        if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], int):
            return f"{args[0]}:{args[1]}"
    return "unknown"


_TORCH_REDUCERS = frozenset(
    {
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_nested_tensor",
        "torch.nested._internal.nested_tensor._rebuild_njt",
    }
)

#: The index tensors of each sparse layout, in the order ``_rebuild_sparse_tensor`` receives them.
_SPARSE_PARTS = {
    "sparse_coo": ("indices",),
    "sparse_csr": ("crow_indices", "col_indices"),
    "sparse_csc": ("ccol_indices", "row_indices"),
    "sparse_bsr": ("crow_indices", "col_indices"),
    "sparse_bsc": ("ccol_indices", "row_indices"),
}


def _ref(v: Any, what: str) -> TensorRef:
    if not isinstance(v, TensorRef):
        raise BadTensor(f"its {what} is not a tensor")
    return v


def _composite(
    values: TensorRef, shape: tuple[int, ...], layout: str, parts: list[tuple[str, TensorRef]], **info: Any
) -> TensorRef:
    """A tensor made of other tensors: its elements live in ``values``, its bytes in all parts."""
    nbytes = sum(p.nbytes for _, p in parts)
    return TensorRef(
        None, 0, shape, (0,) * len(shape), values.dtype, values.device,
        layout=layout, layout_info=LayoutInfo(nbytes=nbytes, **info), parts=tuple(parts),
    )  # fmt: skip


def _layout_name(v: Any) -> str:
    """``torch.sparse_coo`` as a global, or as ``_get_layout("torch.sparse_coo")``."""
    if (
        isinstance(v, Call)
        and isinstance(v.func, Global)
        and v.func.qualname == "torch.serialization._get_layout"
    ):
        args = v.args if isinstance(v.args, tuple) else ()
        v = args[0] if len(args) == 1 else None
        name = v.removeprefix("torch.") if isinstance(v, str) else ""
    elif isinstance(v, Global) and v.module == "torch":
        name = v.name
    else:
        name = ""
    if name not in LAYOUTS:
        raise BadTensor("its layout is not a torch layout")
    return name


class TorchPickleReader:
    """Hooks for ``SafeUnpickler`` that understand torch's storages and tensors."""

    #: The calls ``reduce_hook`` acts on (``SafeUnpickler``'s ``hooked_calls``): of any other, it
    #: makes nothing.
    REDUCED_CALLS = _TORCH_REDUCERS

    def __init__(self) -> None:
        self.storages: dict[str, StorageRef] = {}
        self.problems: list[str] = []
        self.more_problems = 0
        self._last_type: Any = None  # the storage type global last met with a dtype, and that dtype
        self._last_dtype: str | None = None

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more_problems += 1

    def all_problems(self) -> list[str]:
        """The problems met, the first few one by one (each bounded in length)."""
        if self.more_problems:
            return [*self.problems, f"{self.more_problems:,} more problems of the same kinds"]
        return list(self.problems)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            stype, key, location, numel = pid[1], pid[2], pid[3], pid[4]
            if (
                len(pid) == 5
                and key.__class__ is str
                and location.__class__ is str
                and numel.__class__ is int
                and numel >= 0
                and len(key) <= 200
            ):  # what torch.save writes: the checks below, answered at once
                known = self.storages.get(key)
                if known is not None and stype is self._last_type:
                    return known
                if stype is self._last_type:
                    dtype: str | None = self._last_dtype
                elif isinstance(stype, Global) and stype.module in STORAGE_MODULES:
                    dtype = STORAGE_DTYPE.get(stype.name)
                    if dtype is not None:
                        self._last_type, self._last_dtype = stype, dtype
                else:
                    dtype = None
                if dtype is not None:
                    if known is None:
                        known = self.storages[key] = StorageRef(key, dtype, location, numel)
                    return known
            if isinstance(stype, Global) and stype.module in STORAGE_MODULES:
                dtype = STORAGE_DTYPE.get(stype.name)
            else:
                dtype = None
            if dtype is None or not isinstance(location, str):
                self._problem(f"a storage record of unknown type {_brief(pid[1])}")
                return pid
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                self._problem(f"a storage record whose key is {_brief(key)}")
                return pid
            key = str(key)
            if len(key) > 200:
                self._problem("a storage record with a key longer than 200 characters")
                return pid
            if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
                self._problem(f"storage {key} declares an invalid size")
                numel = 0
            root = self.storages.get(key)
            if root is None:
                root = StorageRef(key=key, dtype=dtype, location=location, numel=numel)
                self.storages[key] = root
            view = pid[5] if len(pid) > 5 else None
            if isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int):
                return StorageRef(key, dtype, location, root.numel, view_offset=view[1])
            return root
        return pid

    def reduce_hook(self, func: Any, args: Any) -> Any:
        if not isinstance(func, Global) or not isinstance(args, tuple):
            return SafeUnpickler.NOT_HANDLED
        q = func.qualname
        if q not in _TORCH_REDUCERS:
            return SafeUnpickler.NOT_HANDLED
        if q == _REBUILD_TENSOR_V2 and len(args) == 6:
            plain = plain_tensor(args)
            if plain is not None:
                return plain
        try:
            if q in ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor"):
                return self._tensor(args[0], args[1], args[2], args[3], None, args[4:5])
            if q == "torch._utils._rebuild_tensor_v3":
                return self._tensor(args[0], args[1], args[2], args[3], _dtype_of(args[6]), args[4:5])
            if q in (
                "torch._utils._rebuild_parameter",
                "torch._utils._rebuild_parameter_with_state",
            ):
                data = args[0]
                if isinstance(data, TensorRef):
                    data.is_parameter = True
                    data.requires_grad = bool(args[1]) if len(args) > 1 else True
                    return data
            if q == "torch._utils._rebuild_qtensor":
                t = self._tensor(args[0], args[1], args[2], args[3], None, args[5:6])
                return self._quantized(t, args[4])
            if q == "torch._utils._rebuild_sparse_tensor":
                return self._sparse(_layout_name(args[0]), args[1])
            if q == "torch._utils._rebuild_nested_tensor":
                buffer, sizes = _ref(args[0], "buffer"), _ref(args[1], "sizes")
                parts = [("buffer", buffer), ("sizes", sizes), ("strides", _ref(args[2], "strides")),
                         ("storage_offsets", _ref(args[3], "storage offsets"))]  # fmt: skip
                count = sizes.shape[0] if sizes.shape else 0
                dims = sizes.shape[1] if len(sizes.shape) == 2 else 0
                return _composite(buffer, (count,), "nested", parts, components=count,
                                  logical_shape=(count, *(None,) * dims), numel=_numel(buffer))  # fmt: skip
            if q == "torch.nested._internal.nested_tensor._rebuild_njt":
                return self._jagged(args[0])
            if q == "torch._utils._rebuild_meta_tensor_no_storage":
                shape = _int_tuple(args[1], "size")
                stride = _int_tuple(args[2], "stride")
                return TensorRef(None, 0, shape, stride, _dtype_of(args[0]), "meta",
                                 bool(args[3]) if len(args) > 3 else False)  # fmt: skip
            if q == "torch._utils._rebuild_wrapper_subclass":
                shape = _int_tuple(args[2], "size")
                stride = _int_tuple(args[3], "stride")
                return TensorRef(None, 0, shape, stride, _dtype_of(args[1]), _device_of(args[6]),
                                 layout="subclass", subclass=getattr(args[0], "qualname", None))  # fmt: skip
            if q == "torch._tensor._rebuild_from_type_v2" and len(args) >= 3:
                inner = self.reduce_hook(args[0], args[2] if isinstance(args[2], tuple) else ())
                if isinstance(inner, TensorRef):
                    cls = args[1]
                    name = cls.qualname if isinstance(cls, Global) else None
                    if name == "torch.nn.parameter.Parameter":
                        inner.is_parameter = True
                    elif name not in (None, "torch.Tensor") and inner.layout != "jagged":
                        inner.subclass = name
                    return inner
        except (BadTensor, IndexError) as exc:
            self._problem(f"a {func.name} call with unexpected arguments ({exc})")
        return SafeUnpickler.NOT_HANDLED

    def _quantized(self, t: TensorRef, params: Any) -> TensorRef:
        """A quantized tensor with its scheme and scale / zero point (per-channel: their tensors)."""
        t.layout = "quantized"
        if not isinstance(params, tuple) or not params or not isinstance(params[0], Global):
            raise BadTensor("its quantizer parameters are not a tuple")
        scheme = params[0].name
        if params[0].module != "torch" or scheme not in QSCHEMES:
            raise BadTensor("its quantization scheme is not a torch qscheme")
        if scheme.startswith("per_tensor") and len(params) == 3:
            scale, zero_point = params[1], params[2]
            if (
                not isinstance(scale, (int, float))
                or isinstance(zero_point, bool)
                or not isinstance(zero_point, int)
            ):
                raise BadTensor("its scale or zero point is not a number")
            quant = Quantization(scheme, scale=float(scale), zero_point=zero_point)
            t.layout_info = LayoutInfo(quantization=quant)
            return t
        if scheme.startswith("per_channel") and len(params) == 4:
            axis = _int(params[3], "axis")
            parts = [("scales", _ref(params[1], "scales")), ("zero_points", _ref(params[2], "zero points"))]
            own = t.nbytes
            t.layout_info = LayoutInfo(quantization=Quantization(scheme, axis=axis),
                                       nbytes=own + sum(p.nbytes for _, p in parts))  # fmt: skip
            t.parts = tuple(parts)
            return t
        raise BadTensor(f"its {scheme} parameters are not what torch writes")

    def _sparse(self, layout: str, data: Any) -> TensorRef:
        """A sparse tensor: its dense size, the number of specified elements, its index and value parts."""
        names = _SPARSE_PARTS.get(layout)
        if names is None or not isinstance(data, tuple):
            raise BadTensor(f"its {layout} data is not what torch writes")
        count = len(names)
        if len(data) < count + 2:
            raise BadTensor(f"its {layout} data has too few items")
        parts = [(n, _ref(v, n.replace("_", " "))) for n, v in zip(names, data[:count], strict=True)]
        values = _ref(data[count], "values")
        parts.append(("values", values))
        size = _int_tuple(data[count + 1], "size")
        plain = parts[0][1] if layout == "sparse_coo" else parts[1][1]
        nnz = plain.shape[-1] if plain.shape else 0
        return _composite(values, size, layout, parts, nnz=nnz)

    def _jagged(self, kwargs: Any) -> TensorRef:
        """A nested tensor of the jagged layout: ``values`` with one ragged dimension, and its offsets."""
        if not isinstance(kwargs, PDict):
            raise BadTensor("its constructor arguments are not a dict")
        given = {k: v for k, v in kwargs.items if isinstance(k, str)}
        values, offsets = _ref(given.get("values"), "values"), _ref(given.get("offsets"), "offsets")
        parts = [("values", values), ("offsets", offsets)]
        if isinstance(given.get("lengths"), TensorRef):
            parts.append(("lengths", given["lengths"]))
        ragged = given.get("_ragged_idx", 1)
        if isinstance(ragged, bool) or not isinstance(ragged, int) or not 1 <= ragged <= len(values.shape):
            raise BadTensor("its ragged dimension is out of range")
        count = max(offsets.shape[0] - 1, 0) if offsets.shape else 0
        inner = values.shape
        shown = (count, *inner[: ragged - 1], None, *inner[ragged:])
        return _composite(values, (count, *inner[: ragged - 1], *inner[ragged:]), "jagged", parts,
                          components=count, logical_shape=shown, numel=_numel(values))  # fmt: skip

    def _tensor(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        dtype: str | None,
        rg: tuple[Any, ...],
    ) -> TensorRef:
        if storage.__class__ is not StorageRef:
            raise BadTensor("its storage is not a storage record")
        shape = _int_tuple(size, "size")
        strides = _int_tuple(stride, "stride")
        if len(strides) != len(shape):
            raise BadTensor("size and stride differ in length")
        start = offset if offset.__class__ is int else _int(offset, "storage offset")
        return TensorRef(
            storage,
            start + storage.view_offset,
            shape,
            strides,
            dtype or storage.dtype,
            storage.location,
            bool(rg[0]) if rg else False,
        )
