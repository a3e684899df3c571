"""The checkpoint tree that the static reader produces and every layer above displays.

Plain data only: no torch, no Qt. A ``CheckpointIndex`` is what one peek of one file yields.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

#: One component of a container path: a dict key (str, or int for int keys) or a list index.
PathPart = str | int


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
    """A ``module.name`` the pickle references, with its verdict and where it occurs."""

    module: str
    name: str
    verdict: GlobalClass
    pickle: str  # which pickle it is in: "data.pkl", "legacy object", …
    offset: int  # byte offset of the opcode inside that pickle

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


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

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


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
        return (n for n in self.walk() if n.kind is NodeKind.TENSOR)


@dataclass
class CheckpointIndex:
    """What one static read of a checkpoint yields: the tree, the globals, and the file's facts."""

    path: str
    format: str  # "torch-zip", "torch-legacy", "torchscript", "pickle", …
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

    @property
    def unsafe_globals(self) -> list[GlobalRef]:
        return [g for g in self.globals if g.verdict is not GlobalClass.ALLOWED]

    @property
    def dangerous_globals(self) -> list[GlobalRef]:
        return [g for g in self.globals if g.verdict is GlobalClass.DANGEROUS]

    def tensor_nodes(self) -> list[Node]:
        return list(self.root.tensors())

    def dtype_mix(self) -> dict[str, int]:
        """Tensor count per dtype, most common first."""
        counts: dict[str, int] = {}
        for node in self.root.tensors():
            assert node.tensor is not None
            counts[node.tensor.dtype] = counts.get(node.tensor.dtype, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def saved_devices(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.root.tensors():
            assert node.tensor is not None
            counts[node.tensor.saved_device] = counts.get(node.tensor.saved_device, 0) + 1
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
