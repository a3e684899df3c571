"""Turning the inert object graph of a pickle into the tree of nodes the user sees.

Containers become rows; dotted state_dict keys are grouped (``layers`` ▸ ``0`` ▸ ``attn`` ▸
``q_proj.weight``: the last two components stay together as the leaf, module and parameter).
A container met a second time (shared or cyclic reference) becomes a REF row, so a DAG of
repeated references is expanded once. The walk is iterative: nesting depth costs no recursion.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .dtypes import ITEMSIZE
from .model import Node, NodeKind, OpaqueValue, PathPart, TensorInfo, join_key, path_part
from .torch_pickle import StorageRef, TensorRef
from .unpickler import Call, Global, Instance, PDict, PersistentRef, PSet

MAX_DEPTH = 1000
#: Estimated bytes of the tree's rows (a node, its path tuple and key text); past it the tree stops
#: with a note, so a small file of millions of empty containers or very deep long keys stays cheap.
MAX_TREE_BYTES = 300 << 20
_LEAF_BYTES = 350  # measured: a row with its key text and path tuple
_CONTAINER_BYTES = 300  # a container row also keeps a seen entry, an empty child list, a stack slot
_MAX_VALUE_CHARS = 200
_MAX_KEY_CHARS = 1000


def _short(text: str) -> str:
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def describe(obj: Any, budget: int = 4) -> str:
    """A short, bounded text for a value (never calls anything from the file)."""
    if obj is None or isinstance(obj, (bool, int, float, complex)):
        return repr(obj)
    if isinstance(obj, str):  # sliced first: a 40 MB string shared a million times stays cheap
        more = f" ({len(obj):,} characters)" if len(obj) > _MAX_VALUE_CHARS else ""
        return _short(repr(obj[:_MAX_VALUE_CHARS])) + more
    if isinstance(obj, (bytes, bytearray)):
        return _short(repr(bytes(obj[:60]))) + (f" ({len(obj):,} bytes)" if len(obj) > 60 else "")
    if isinstance(obj, Global):
        return obj.qualname
    if isinstance(obj, TensorRef):
        return f"tensor{list(obj.shape)} {obj.dtype}"
    if isinstance(obj, StorageRef):
        return f"storage {obj.dtype} × {obj.numel:,} on {obj.location}"
    if budget <= 0:
        return "…"
    if isinstance(obj, (list, tuple)):
        inner = ", ".join(describe(x, budget - 1) for x in obj[:8])
        more = ", …" if len(obj) > 8 else ""
        return _short(("[" if isinstance(obj, list) else "(") + inner + more +
                      ("]" if isinstance(obj, list) else ("," if len(obj) == 1 else "") + ")"))  # fmt: skip
    if isinstance(obj, (Call, Instance)):
        f = obj.func if isinstance(obj, Call) else obj.cls
        name = f.qualname if isinstance(f, Global) else "object"
        args = obj.args if isinstance(obj.args, tuple) else (obj.args,)
        return _short(f"{name}(" + ", ".join(describe(a, budget - 1) for a in args[:6]) + ")")
    if isinstance(obj, PDict):
        return f"{obj.cls} of {len(obj.items)} items"
    if isinstance(obj, PSet):
        return f"set of {len(obj.items)} items"
    if isinstance(obj, PersistentRef):
        return f"persistent id {describe(obj.pid, budget - 1)}"
    return type(obj).__name__


def _key_part(key: Any) -> PathPart:
    """The path component of a dict key: str and int as they are, anything else a bounded description."""
    if isinstance(key, Global):
        return key.qualname
    if isinstance(key, str):
        return key if len(key) <= _MAX_KEY_CHARS else key[: _MAX_KEY_CHARS - 1] + "…"
    if isinstance(key, int) and not isinstance(key, bool):
        return path_part(key)
    return describe(key)


def _is_simple(obj: Any, budget: int = 3) -> bool:
    """True for values shown on one line (scalars, and short tuples/calls of scalars)."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, bytearray, Global)):
        return True
    if budget <= 0:
        return False
    if isinstance(obj, (tuple, list)):
        return len(obj) <= 8 and all(_is_simple(x, budget - 1) for x in obj)
    if isinstance(obj, Call):
        return (
            obj.state is None and not obj.items and not obj.list_items
            and isinstance(obj.args, tuple) and len(obj.args) <= 6
            and all(_is_simple(x, budget - 1) for x in obj.args)
        )  # fmt: skip
    return False


def _tensor_info(t: TensorRef) -> TensorInfo:
    st = t.storage
    return TensorInfo(
        shape=t.shape,
        dtype=t.dtype,
        saved_device=t.device,
        storage_key=st.key if st else "",
        storage_offset=t.offset,
        stride=t.stride,
        storage_nbytes=st.nbytes if st else 0,
        itemsize=ITEMSIZE.get(t.dtype, 1),
        requires_grad=t.requires_grad,
        is_parameter=t.is_parameter,
        layout=t.layout if t.subclass is None else f"{t.layout} ({t.subclass})",
    )


def _container_kind(obj: Any) -> NodeKind | None:
    """The row kind of a container; None for leaves (cheap: nothing is copied)."""
    if isinstance(obj, PDict):
        return NodeKind.DICT
    if isinstance(obj, (list, tuple, PSet)):
        return NodeKind.LIST
    if isinstance(obj, (Call, Instance)):
        return NodeKind.OBJECT
    return None


_Pairs = Iterable[tuple[Any, Any]]


def _children_of(obj: Any) -> tuple[NodeKind, _Pairs, int] | None:
    """(kind, (key, value) pairs, how many) for containers; None for leaves. Lists are not copied."""
    if isinstance(obj, PDict):
        return NodeKind.DICT, obj.items, len(obj.items)
    if isinstance(obj, (list, tuple)):
        return NodeKind.LIST, enumerate(obj), len(obj)
    if isinstance(obj, PSet):
        return NodeKind.LIST, enumerate(obj.items), len(obj.items)
    if isinstance(obj, (Call, Instance)):
        pairs: list[tuple[Any, Any]] = []
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], PDict):
            # (dict state, slot state)
            if isinstance(state[0], PDict):
                pairs.extend(state[0].items)
            pairs.extend(state[1].items)
        elif isinstance(state, PDict):
            pairs.extend(state.items)
        elif state is not None:
            pairs.append(("(state)", state))
        pairs.extend(obj.items)
        pairs.extend(enumerate(obj.list_items))
        if not pairs:
            args = obj.args if isinstance(obj.args, tuple) else (obj.args,)
            pairs.extend((f"(arg {i})", a) for i, a in enumerate(args))
        return NodeKind.OBJECT, pairs, len(pairs)
    return None


class TreeBuilder:
    """Builds the node tree for one object graph; ``warnings`` collects what was cut short."""

    def __init__(self, max_bytes: int = MAX_TREE_BYTES) -> None:
        self.warnings: list[str] = []
        self.max_bytes = max_bytes

    def build(self, top: Any) -> Node:
        root = Node(name="", kind=NodeKind.DICT, key="", path=())
        top_kind = _container_kind(top)
        if top_kind is None or _is_simple(top):
            self._leaf(root, "(tensor)" if isinstance(top, TensorRef) else "(value)", (), top)
            root.children[0].key = ""
            return root
        root.kind = top_kind
        if isinstance(top, (Call, Instance)):
            root.value = describe(top.func if isinstance(top, Call) else top.cls)
        seen: dict[int, str] = {id(top): ""}
        keepalive = [top]
        # (container node, its object, its path, depth)
        stack: list[tuple[Node, Any, tuple[PathPart, ...], int]] = [(root, top, (), 0)]
        spent = rows = 0
        while stack:
            node, obj, path, depth = stack.pop()
            kind_pairs = _children_of(obj)
            assert kind_pairs is not None
            _, pairs, count = kind_pairs
            groups: dict[tuple[str, ...], Node] = {}
            for i, (key, value) in enumerate(pairs):
                rows += 1
                part = _key_part(key)
                child_path = (*path, part)
                child_key = f"{node.key}.{part}" if node.key else str(part)
                spent += _LEAF_BYTES + 8 * len(child_path) + len(child_key)
                if spent > self.max_bytes:
                    node.add(Node(name="…", kind=NodeKind.VALUE, key=child_key, path=child_path,
                                  value=f"… {count - i:,} more items not shown"))  # fmt: skip
                    self.warnings.append(
                        f"the tree is cut short after {rows:,} rows: the file holds more containers "
                        "than a static view shows"
                    )
                    stack.clear()
                    break
                parent = node
                name = str(part)
                if isinstance(part, str) and "." in part and node.kind is not NodeKind.LIST:
                    comps = part.split(".")
                    if len(comps) > 2:
                        parent = self._group(node, groups, tuple(comps[:-2]), path)
                        name = ".".join(comps[-2:])
                sub = _container_kind(value)
                if sub is None or _is_simple(value):
                    spent += self._leaf(parent, name, child_path, value, child_key)
                    continue
                oid = id(value)
                if oid in seen:
                    parent.add(Node(name=name, kind=NodeKind.REF, key=child_key,
                                    path=child_path, value=seen[oid] or "(root)"))  # fmt: skip
                    continue
                if depth + 1 > MAX_DEPTH:
                    parent.add(Node(name=name, kind=NodeKind.VALUE, key=child_key,
                                    path=child_path, value="… (nested too deeply to show)"))  # fmt: skip
                    if not any("nested" in w for w in self.warnings):
                        self.warnings.append(f"containers are nested deeper than {MAX_DEPTH} levels")
                    continue
                seen[oid] = child_key
                keepalive.append(value)
                spent += _CONTAINER_BYTES
                child = parent.add(Node(name=name, kind=sub, key=child_key, path=child_path))
                if isinstance(value, (Call, Instance)):
                    child.value = describe(value.func if isinstance(value, Call) else value.cls)
                elif isinstance(value, PDict) and value.cls != "dict":
                    child.value = value.cls
                stack.append((child, value, child_path, depth + 1))
        _aggregate(root)
        return root

    def _group(
        self, node: Node, groups: dict[tuple[str, ...], Node], comps: tuple[str, ...],
        path: tuple[PathPart, ...],
    ) -> Node:  # fmt: skip
        parent = node
        for i in range(1, len(comps) + 1):
            prefix = comps[:i]
            g = groups.get(prefix)
            if g is None:
                key = join_key((*path, ".".join(prefix)))
                g = parent.add(Node(name=prefix[-1], kind=NodeKind.GROUP, key=key, path=path))
                groups[prefix] = g
            parent = g
        return parent

    def _leaf(self, parent: Node, name: str, path: tuple[PathPart, ...], value: Any, key: str = "") -> int:
        """Add a leaf row; returns the bytes of text it keeps beyond the row itself."""
        if isinstance(value, TensorRef):
            info = _tensor_info(value)
            parent.add(Node(name=name, kind=NodeKind.TENSOR, key=key, path=path, tensor=info,
                            params=info.numel, nbytes=info.nbytes))  # fmt: skip
            return 0
        if isinstance(value, TensorInfo):  # already read (shard sets): shown as it is
            parent.add(Node(name=name, kind=NodeKind.TENSOR, key=key, path=path, tensor=value,
                            params=value.numel, nbytes=value.nbytes))  # fmt: skip
            return 0
        text = value.text if isinstance(value, OpaqueValue) else describe(value)
        parent.add(Node(name=name, kind=NodeKind.VALUE, key=key, path=path, value=text))
        return 60 + len(text)


def _aggregate(root: Node) -> None:
    """Post-order sums of params and bytes, without recursion."""
    order: list[Node] = []
    stack = [root]
    while stack:
        n = stack.pop()
        order.append(n)
        stack.extend(n.children)
    for n in reversed(order):
        if n.children:
            n.params = sum(c.params for c in n.children)
            n.nbytes = sum(c.nbytes for c in n.children)
