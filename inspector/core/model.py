"""The checkpoint tree that the static reader produces and every layer above displays.

Plain data only: no torch, no Qt. A ``CheckpointIndex`` is what one peek of one file yields.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from .formats import Format
from .formatting import count_of

#: One component of a container path: a dict key (str, or int for int keys) or a list index.
PathPart = str | int

#: The row a pickled module's attributes (hooks, flags, settings) are folded into.
MODULE_ATTRIBUTES = "(module attributes)"


class NodeKind(enum.Enum):
    """What a row of the tree stands for."""

    DICT = "dict"  # a dict / OrderedDict in the file
    LIST = "list"  # a list or tuple in the file
    GROUP = "group"  # a dotted-key prefix (``layers`` ▸ ``0``) inside a dict of string keys
    OBJECT = "object"  # an instance of some class (argparse.Namespace …) with its state as children
    TENSOR = "tensor"
    VALUE = "value"  # a scalar, string, None, bytes … shown with its value
    REF = "ref"  # a container already shown elsewhere in the tree (shared or cyclic reference)


class GlobalClass(enum.Enum):
    """How a global referenced by the file's pickle is judged."""

    ALLOWED = "allowed"  # accepted by torch's weights-only unpickler without asking
    UNKNOWN = "unknown"  # not known to be safe: weights-only loading refuses it
    DANGEROUS = "dangerous"  # runs code, touches files, processes, network or the import machinery


@dataclass(frozen=True)
class GlobalRef:
    """A ``module.name`` the pickle references, with its verdict and where it occurs.

    ``module`` and ``name`` are what torch's weights-only unpickler looks up (pickle's Python 2
    names mapped: ``__builtin__.long`` is ``builtins.int``); ``written`` is the name as the file
    writes it, when that differs.
    """

    module: str
    name: str
    verdict: GlobalClass
    pickle: str  # which pickle it is in: "data.pkl", "legacy object", …
    offset: int  # byte offset of the opcode inside that pickle
    written: str = ""  # ``module.name`` as written in the file, when the mapping changed it

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def as_written(self) -> str:
        return self.written or self.qualname


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One piece of a tensor saved by torch.distributed.checkpoint: where it sits in the tensor
    (``offsets``, ``sizes``) and in which data file (``file``, ``byte_offset``, ``byte_length``)."""

    file: str
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    byte_offset: int
    byte_length: int

    def describe(self) -> str:
        where = ", ".join(f"{o}:{o + s}" for o, s in zip(self.offsets, self.sizes, strict=True))
        return f"[{where}] in {self.file} at byte {self.byte_offset:,} ({self.byte_length:,} bytes)"


@dataclass(frozen=True, slots=True)
class OpaqueValue:
    """A value the static read lists but does not interpret (a pickled object kept as bytes)."""

    text: str


@dataclass(frozen=True, slots=True)
class Quantization:
    """How a quantized tensor's integers map to real values."""

    scheme: str  # per_tensor_affine, per_channel_affine, per_channel_affine_float_qparams …
    scale: float | None = None  # per-tensor schemes
    zero_point: int | None = None
    axis: int | None = None  # per-channel schemes: the dimension the scales run along

    def describe(self) -> str:
        scheme = self.scheme.replace("_", " ")
        if self.axis is not None:
            return f"{scheme}, along dimension {self.axis}"
        return f"{scheme}, scale {self.scale!r}, zero point {self.zero_point!r}"


@dataclass(frozen=True, slots=True)
class LayoutInfo:
    """What a non-strided tensor (sparse, nested, quantized) adds to shape and dtype.

    ``numel`` and ``nbytes`` are given where the shape alone does not give them: a nested tensor's
    elements, and the bytes of the parts the file stores (indices, values, offsets …).
    """

    nnz: int | None = None  # sparse: specified elements (blocks for the block layouts)
    quantization: Quantization | None = None
    components: int | None = None  # nested: how many tensors it holds
    logical_shape: tuple[int | None, ...] | None = None  # nested: None marks a ragged dimension
    numel: int | None = None
    nbytes: int | None = None

    def describe(self, layout: str) -> str:
        """One line for the row: ``sparse_coo, 3 specified elements`` …"""
        parts = [layout]
        if self.nnz is not None:
            parts.append(count_of(self.nnz, "specified element"))
        if self.components is not None:
            parts.append(count_of(self.components, "tensor"))
        if self.quantization is not None:
            parts.append(self.quantization.describe())
        return ", ".join(parts)


@dataclass(slots=True)
class TensorInfo:
    """Everything the static read knows about one tensor."""

    shape: tuple[int, ...]
    dtype: str  # torch's name without ``torch.``: float32, bfloat16, float8_e4m3fn
    saved_device: str  # location tag of its storage: cpu, cuda:0, meta …
    storage_key: str  # the storage record's key (``data/<key>`` in zip files)
    storage_offset: int  # in elements
    stride: tuple[int, ...]
    storage_nbytes: int  # bytes of the whole storage it views
    itemsize: int
    requires_grad: bool = False
    is_parameter: bool = False
    layout: str = "strided"  # strided, quantized, sparse_coo … (non-strided ones are listed, not read)
    shard: str = ""  # the file of a shard set (HF shards, DCP data files) that holds it
    chunks: tuple[ChunkInfo, ...] = ()  # DCP: its pieces, each in one data file
    layout_info: LayoutInfo | None = None  # sparse, nested and quantized tensors

    @property
    def numel(self) -> int:
        """Elements, as torch's ``numel()`` counts them (a sparse tensor's dense size)."""
        if self.layout_info is not None and self.layout_info.numel is not None:
            return self.layout_info.numel
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of its data in the file (a sparse or nested tensor: of its parts)."""
        if self.layout_info is not None and self.layout_info.nbytes is not None:
            return self.layout_info.nbytes
        return self.numel * self.itemsize

    @property
    def shown_shape(self) -> tuple[int | None, ...]:
        """The shape a user reads: a nested tensor's ragged dimensions are None."""
        if self.layout_info is not None and self.layout_info.logical_shape is not None:
            return self.layout_info.logical_shape
        return self.shape


@dataclass(eq=False, slots=True)
class Node:
    """One row of the tree. Parents aggregate params and bytes of every tensor below them."""

    name: str
    kind: NodeKind
    key: str  # container path and state_dict key joined by "." (the JSON ``key``)
    path: tuple[PathPart, ...]  # container components; a state_dict key is one component
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    tensor: TensorInfo | None = None
    value: str | None = None  # display text of a VALUE, type name of an OBJECT, target key of a REF
    params: int = 0
    nbytes: int = 0
    row: int = 0  # index in parent.children
    entries: int = 0  # a dict, list or object: how many entries it holds in the file

    def add(self, child: Node) -> Node:
        child.parent = self
        child.row = len(self.children)
        self.children.append(child)
        return child

    def walk(self) -> Iterator[Node]:
        """Every node below this one (not this one), depth first, in display order."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def tensors(self) -> Iterator[Node]:
        """Every tensor below this one, in display order. The parts a sparse, nested or quantized
        tensor is made of (its rows' children) are inside that tensor, not tensors of the file."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.kind is NodeKind.TENSOR:
                yield node
            else:
                stack.extend(reversed(node.children))


def list_tensors(root: Node) -> tuple[tuple[Node, ...], bool]:
    """Every tensor below ``root`` in display order (as ``root.tensors()``), and whether the root
    holds nothing else: no entry reached through groups alone is other than a tensor. One walk."""
    rows: list[Node] = []
    only = bool(root.children)
    stack = list(reversed(root.children))
    tensor, group = NodeKind.TENSOR, NodeKind.GROUP
    while stack:
        node = stack.pop()
        if node.kind is tensor:
            rows.append(node)
            continue
        if node.kind is not group:
            only = False  # the first such node on any path is reached through groups alone
        stack.extend(reversed(node.children))
    return tuple(rows), only


def key_and_dtype_rows(rows: Iterable[Node]) -> tuple[dict[str, Node], dict[str, int], dict[str, int]]:
    """Tensor rows by key (``rows_by_key``), their count per dtype and per saved device
    (``dtype_and_device_counts``)."""
    rows = rows if isinstance(rows, (list, tuple)) else list(rows)
    return (rows_by_key(rows), *dtype_and_device_counts(rows))


def rows_by_key(rows: Iterable[Node]) -> dict[str, Node]:
    """Tensor rows by key: the last row of a key that several share."""
    rows = rows if isinstance(rows, (list, tuple)) else list(rows)
    return dict(zip(map(_KEY, rows), rows, strict=True))


def dtype_and_device_counts(rows: Iterable[Node]) -> tuple[dict[str, int], dict[str, int]]:
    """Tensor rows counted per dtype and per saved device, each in the order first seen: the read
    counts them when it lists the rows (the summary line and "Saved on" show them at once)."""
    infos = list(map(_TENSOR, rows))
    return dict(Counter(map(_DTYPE, infos))), dict(Counter(map(_SAVED_DEVICE, infos)))


# What the passes over every tensor row read, each fetched in C (10^6 rows in a large file).
_TENSOR, _KEY, _CHILDREN = attrgetter("tensor"), attrgetter("key"), attrgetter("children")
_DTYPE, _SAVED_DEVICE, _SHAPE = attrgetter("dtype"), attrgetter("saved_device"), attrgetter("shape")
_STORAGE_KEY, _STORAGE_NBYTES = attrgetter("storage_key"), attrgetter("storage_nbytes")
_LAYOUT_INFO = attrgetter("layout_info")


@dataclass
class CheckpointIndex:
    """What one static read of a checkpoint yields: the tree, the globals, and the file's facts."""

    path: str
    format: Format
    root: Node
    globals: list[GlobalRef]
    file_size: int
    warnings: list[str] = field(default_factory=list)
    total_params: int = 0  # each distinct tensor once (tied aliases count once)
    total_bytes: int = 0  # bytes of tensor data the file holds (each storage once)
    tensor_count: int = 0
    #: storage key → (first byte, byte count) of its record, where the read located them (legacy
    #: and safetensors files; zip records are found through the archive's directory instead).
    storage_spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    byteorder: str = "little"  # as the file declares it
    #: Ways other readers would read this file differently from what is shown (two central
    #: directories, member names that differ only in case, a tar that is also a pickle stream …),
    #: one sentence each. Any of them makes the file dangerous: what torch runs may not be what was read.
    differentials: list[str] = field(default_factory=list)
    #: Parts of a layout of several files that could not be read (a damaged shard), one sentence
    #: each: what they would load is unknown, so the whole is never judged safe.
    unread: list[str] = field(default_factory=list)
    #: For a file read where it lives (a URL): (requests, bytes fetched, file size); None for a local one.
    remote_read: tuple[int, int, int] | None = None
    #: The version that remote read saw (its ETag), so a download can refuse another one; "" if none.
    remote_version: str = ""
    #: The tensor rows in display order, where the read listed them already (see ``tensor_rows``).
    listed_rows: tuple[Node, ...] | None = field(default=None, repr=False, compare=False)
    #: Tensor count per dtype in the order first seen, where the read counted them (see ``dtype_counts``).
    counted_dtypes: dict[str, int] | None = field(default=None, repr=False, compare=False)
    #: Whether the root holds tensors only (dotted keys grouped), noted by the walk that lists the rows.
    only_tensors: bool | None = field(default=None, repr=False, compare=False)
    #: The tensor rows by key (the last row of a key that several share), made once when first asked.
    keyed_rows: dict[str, Node] | None = field(default=None, repr=False, compare=False)
    #: Tensor count per saved device in the order first seen, counted with ``counted_dtypes``.
    counted_devices: dict[str, int] | None = field(default=None, repr=False, compare=False)

    @property
    def unsafe_globals(self) -> list[GlobalRef]:
        return [g for g in self.globals if g.verdict is not GlobalClass.ALLOWED]

    @property
    def dangerous_globals(self) -> list[GlobalRef]:
        return [g for g in self.globals if g.verdict is GlobalClass.DANGEROUS]

    def tensor_rows(self) -> tuple[Node, ...]:
        """Every tensor row in display order, listed once per index: the tree does not change after
        the read, so every pass over the tensors shares one enumeration of it."""
        if self.listed_rows is None:
            self.listed_rows, self.only_tensors = list_tensors(self.root)
        return self.listed_rows

    def _count_rows(self) -> tuple[dict[str, int], dict[str, int]]:
        counted = dtype_and_device_counts(self.tensor_rows())
        self.counted_dtypes, self.counted_devices = counted
        return counted

    def tensors_by_key(self) -> dict[str, Node]:
        """Every tensor row by its key, in display order; the last row of a key that several share.
        Made on the first call (the filter's key index, the model card), not by the read."""
        if self.keyed_rows is None:
            self.keyed_rows = rows_by_key(self.tensor_rows())
        return self.keyed_rows

    def holds_only_tensors(self) -> bool:
        """A state_dict: every entry below the root is a tensor (dotted keys may be grouped)."""
        if self.only_tensors is None:
            self.listed_rows, self.only_tensors = list_tensors(self.root)
        return self.only_tensors

    def tensor_nodes(self) -> list[Node]:
        return list(self.tensor_rows())

    def dtype_counts(self) -> dict[str, int]:
        """Tensor count per dtype, in the order first seen; counted once per index."""
        return self.counted_dtypes if self.counted_dtypes is not None else self._count_rows()[0]

    def dtype_mix(self) -> dict[str, int]:
        """Tensor count per dtype, most common first."""
        return dict(sorted(self.dtype_counts().items(), key=lambda kv: (-kv[1], kv[0])))

    def saved_devices(self) -> dict[str, int]:
        """Tensor count per saved device, most common first; counted once per index."""
        counts = self.counted_devices if self.counted_devices is not None else self._count_rows()[1]
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def path_part(key: object) -> PathPart:
    """The path component for a dict key or list index: str and int stay, anything else is its repr.

    The engine walks loaded objects with the same rule, so its paths match the static read's.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    return repr(key)


def join_key(path: tuple[PathPart, ...]) -> str:
    """``("model", "layers.0.weight")`` → ``"model.layers.0.weight"``; ``()`` → ``""``."""
    return ".".join(str(p) for p in path)


@dataclass(frozen=True, slots=True)
class TensorTotals:
    """Counts over a set of tensors: each distinct tensor's elements once, each storage's bytes once."""

    params: int
    nbytes: int
    count: int


def tensor_totals(tensors: Iterable[Node]) -> TensorTotals:
    """Elements of each distinct tensor once and bytes of each storage once (the parts of sparse,
    nested and quantized tensors included), over tensor rows such as ``root.tensors()``.

    Two rows are one tensor when they are one view of one storage (tied weights, aliases); a sparse
    or nested tensor is one record of the file however often it is referenced.
    """
    rows = tensors if isinstance(tensors, (list, tuple)) else list(tensors)
    infos = list(map(_TENSOR, rows))
    keys = list(map(_STORAGE_KEY, infos))
    if (
        all(keys)
        and len(set(keys)) == len(keys)
        and not any(map(_CHILDREN, rows))
        and not any(map(_LAYOUT_INFO, infos))
    ):  # each row its own storage, dense, with no parts (most files): every row counts once
        params = sum(map(math.prod, map(_SHAPE, infos)))
        return TensorTotals(params, sum(map(_STORAGE_NBYTES, infos)), len(rows))
    return viewed_totals(rows)


def viewed_totals(rows: Iterable[Node]) -> TensorTotals:
    """``tensor_totals`` row by row, telling the views of each storage apart (any set of rows)."""
    views: set[tuple[object, ...]] = set()
    storages: dict[str, int] = {}
    first_view: dict[str, TensorInfo | None] = {}  # a storage's first row, None once its view is in views
    params = count = 0
    for node in rows:
        info = node.tensor
        assert info is not None
        count += 1
        key = info.storage_key
        if key:
            storages[key] = info.storage_nbytes
            if key not in first_view:  # the first row of its storage: a view not seen before
                first_view[key] = info
                params += info.numel
            else:  # views of one storage are told apart by all they are
                first = first_view[key]
                if first is not None:
                    views.add((key, first.storage_offset, first.shape, first.stride, first.dtype))
                    first_view[key] = None
                view = (key, info.storage_offset, info.shape, info.stride, info.dtype)
                if view not in views:
                    views.add(view)
                    params += info.numel
        else:
            other = (id(info.layout_info),) if info.layout_info is not None else (id(node),)
            if other not in views:
                views.add(other)
                params += info.numel
        if node.children:
            for part in node.children:
                if part.tensor is not None and part.tensor.storage_key:
                    storages[part.tensor.storage_key] = part.tensor.storage_nbytes
    return TensorTotals(params, sum(storages.values()), count)
