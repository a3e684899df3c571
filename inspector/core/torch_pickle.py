"""What torch's pickles mean: storage persistent ids and tensor rebuild calls, read statically."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .dtypes import ITEMSIZE, STORAGE_DTYPE, STORAGE_MODULES
from .unpickler import Call, Global, SafeUnpickler


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
    }
)


class TorchPickleReader:
    """Hooks for ``SafeUnpickler`` that understand torch's storages and tensors."""

    def __init__(self) -> None:
        self.storages: dict[str, StorageRef] = {}
        self.problems: list[str] = []
        self.more_problems = 0

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
                t.layout = "quantized"
                return t
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
                    elif name not in (None, "torch.Tensor"):
                        inner.subclass = name
                    return inner
        except (BadTensor, IndexError) as exc:
            self._problem(f"a {func.name} call with unexpected arguments ({exc})")
        return SafeUnpickler.NOT_HANDLED

    def _tensor(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        dtype: str | None,
        rg: tuple[Any, ...],
    ) -> TensorRef:
        if not isinstance(storage, StorageRef):
            raise BadTensor("its storage is not a storage record")
        shape = _int_tuple(size, "size")
        strides = _int_tuple(stride, "stride")
        if len(strides) != len(shape):
            raise BadTensor("size and stride differ in length")
        return TensorRef(
            storage=storage,
            offset=_int(offset, "storage offset") + storage.view_offset,
            shape=shape,
            stride=strides,
            dtype=dtype or storage.dtype,
            device=storage.location,
            requires_grad=bool(rg[0]) if rg else False,
        )
