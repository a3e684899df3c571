"""Turning the inert object graph of a pickle into the tree of nodes the user sees.

Containers become rows; dotted state_dict keys are grouped (``layers`` ▸ ``0`` ▸ ``attn`` ▸
``q_proj.weight``: the last two components stay together as the leaf, module and parameter).
A pickled ``nn.Module`` shows its parameters and buffers as ``state_dict()`` names them, its other
attributes folded into one row. A container met a second time (shared or cyclic reference) becomes
a REF row, so a DAG of repeated references is expanded once. The walk is iterative (nesting depth
costs no recursion), grouping is linear in the keys' length, and every row, group and key text is
charged to one byte budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from .dtypes import ITEMSIZE
from .formatting import count_of
from .model import MODULE_ATTRIBUTES, Node, NodeKind, OpaqueValue, PathPart, TensorInfo, join_key, path_part
from .read_progress import TREE, report
from .torch_pickle import StorageRef, TensorRef
from .unpickler import Call, Global, Instance, PDict, PersistentRef, PSet

MAX_DEPTH = 1000
#: Estimated bytes of the tree's rows (a node, its path tuple and key text); past it the tree stops
#: with a note, so a small file of millions of empty containers or very deep long keys stays cheap.
#: 10^6 tensors (a safetensors header near its 100 MB cap) take about 400 MB and fit.
MAX_TREE_BYTES = 640 << 20
#: Dotted components of one key that become groups; the rest stay together in the leaf's name.
MAX_GROUP_DEPTH = 32
_LEAF_BYTES = 350  # measured: a row with its key text and path tuple
_CONTAINER_BYTES = 300  # a container row also keeps a seen entry, an empty child list, a stack slot
_GROUP_BYTES = 400  # a group row, its child list and its entry in the prefix table
#: The tree tells the read's watcher how far it has come each time its rows pass this many bytes
#: (about 10,000 rows): the budget's own test in the loop does it, at no cost per row.
_REPORT_BYTES = 4 << 20
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
        return f"{obj.cls} of {count_of(len(obj.items), 'item')}"
    if isinstance(obj, PSet):
        return f"set of {count_of(len(obj.items), 'item')}"
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
    itemsize = ITEMSIZE.get(t.dtype, 1)
    return TensorInfo(
        t.shape, t.dtype, t.device, st.key if st else "", t.offset, t.stride,
        st.numel * ITEMSIZE.get(st.dtype, 1) if st else 0, itemsize, t.requires_grad, t.is_parameter,
        t.layout if t.subclass is None else f"{t.layout} ({t.subclass})", "", (), t.layout_info,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Placed:
    """An entry shown under another name than its container key: ``rel`` is its real container
    path below the row being expanded, ``key`` its key below that row's key base."""

    value: Any
    rel: tuple[PathPart, ...]
    key: str


@dataclass(eq=False, slots=True)
class _Fold:
    """The attributes of a module and of its submodules, shown as one collapsed row."""

    pairs: list[tuple[Any, Any]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Attributes:
    """One submodule's own attributes inside the fold, under its class name."""

    cls: str
    pairs: list[tuple[Any, Any]]


_MODULE_STATE = ("_parameters", "_buffers", "_modules")


def _module_state(obj: Any) -> list[tuple[Any, Any]] | None:
    """The attribute pairs of a pickled ``nn.Module`` (a state with ``_parameters``, ``_buffers``
    and ``_modules`` dicts), or None for anything else."""
    if not isinstance(obj, (Call, Instance)):
        return None
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], PDict):
        state = state[0]
    if not isinstance(state, PDict):
        return None
    found = {k for k, v in state.items if isinstance(k, str) and k in _MODULE_STATE and isinstance(v, PDict)}
    return state.items if len(found) == len(_MODULE_STATE) else None


def _class_name(obj: Any) -> str:
    f = obj.func if isinstance(obj, Call) else obj.cls
    return describe(f)


def _container_kind(obj: Any) -> NodeKind | None:
    """The row kind of a container; None for leaves (cheap: nothing is copied)."""
    if isinstance(obj, PDict):
        return NodeKind.DICT
    if isinstance(obj, (list, tuple, PSet)):
        return NodeKind.LIST
    if isinstance(obj, (Call, Instance, _Attributes)):
        return NodeKind.OBJECT
    if isinstance(obj, _Fold):
        return NodeKind.GROUP
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
    if isinstance(obj, (_Fold, _Attributes)):
        return _container_kind(obj) or NodeKind.GROUP, obj.pairs, len(obj.pairs)
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


def _group_prefix(part: str) -> int:
    """Where the group prefix of a dotted key ends (the dot before its last two components, or
    before component ``MAX_GROUP_DEPTH + 1``); -1 when the key is not grouped."""
    last = part.rfind(".")
    cut = part.rfind(".", 0, last) if last > 0 else -1
    if cut < 0:
        return -1
    if cut >= MAX_GROUP_DEPTH and part.count(".", 0, cut) >= MAX_GROUP_DEPTH:  # (a shorter prefix has fewer)
        cut = -1
        for _ in range(MAX_GROUP_DEPTH):
            cut = part.index(".", cut + 1)
    return cut


class _BudgetSpent(Exception):
    """The tree's byte budget is used up; the build stops with a note."""


class TreeBuilder:
    """Builds the node tree for one object graph; ``warnings`` collects what was cut short."""

    def __init__(self, max_bytes: int = MAX_TREE_BYTES) -> None:
        self.warnings: list[str] = []
        self.max_bytes = max_bytes
        self.spent = 0  # estimated bytes of the rows built so far
        self.rows = 0

    def _charge(self, nbytes: int) -> None:
        self.spent += nbytes
        if self.spent > self.max_bytes:
            raise _BudgetSpent

    def build(self, top: Any) -> Node:
        report(TREE)
        root = Node(name="", kind=NodeKind.DICT, key="", path=())
        top_kind = _container_kind(top)
        if top_kind is None or _is_simple(top):
            self._leaf(root, "(tensor)" if isinstance(top, TensorRef) else "(value)", (), top)
            root.children[0].key = ""
            _aggregate(root)
            return root
        root.kind = top_kind
        if isinstance(top, (Call, Instance)):
            root.value = _class_name(top)
        seen: dict[int, str] = {id(top): ""}
        keepalive = [top]
        # (container node, its object, its path, depth, the key its entries' keys extend)
        stack: list[tuple[Node, Any, tuple[PathPart, ...], int, str]] = [(root, top, (), 0, "")]
        try:
            while stack:
                self._expand(stack, seen, keepalive)
        except _BudgetSpent:
            self.warnings.append(
                f"the tree is cut short after {count_of(self.rows, 'row')}: showing more would take over "
                f"{self.max_bytes >> 20:,} MB, the limit of a static view"
            )
        _aggregate(root)
        return root

    def _expand(
        self, stack: list[tuple[Node, Any, tuple[PathPart, ...], int, str]], seen: dict[int, str],
        keepalive: list[Any],
    ) -> None:  # fmt: skip
        """Add the rows of the container on top of the stack; containers found go on the stack."""
        node, obj, path, depth, key_base = stack.pop()
        module = _module_state(obj)
        if module is not None:
            listing = self._module_view(module, path, key_base, depth, seen, keepalive)
            pairs: _Pairs = listing
            count = len(listing)
        else:
            kind_pairs = _children_of(obj)
            assert kind_pairs is not None
            _, pairs, count = kind_pairs
        node.entries = count
        groups: dict[str, Node] = {}
        grouping = node.kind is not NodeKind.LIST and not isinstance(obj, _Fold)  # a fold names submodules
        # The bytes spent and the rows made are kept in locals while the loop makes tensor rows
        # (10^6 of them in a large file); the builder's own are brought up to date around each call.
        spent, done = self.spent, 0
        limit = min(self.max_bytes, spent + _REPORT_BYTES)  # the budget, or the next report before it
        dot_base = f"{key_base}." if key_base else ""
        dot_len = len(dot_base)
        leaf_bytes = _LEAF_BYTES + 8 * (len(path) + 1)  # a leaf's row and path tuple, before its key text
        tensor, new_node = NodeKind.TENSOR, object.__new__
        # The group of the previous grouped key (keys of one group mostly follow each other), and the
        # elements of the previous plain tensor's shape (tensors of one shape often follow each other).
        last_cut, last_prefix, last_group = -1, "", node
        last_shape: tuple[int, ...] | None = None
        last_numel = 0
        try:
            for key, value in pairs:
                done += 1
                if type(value) is _Placed:
                    part: PathPart = key
                    child_path = (*path, *value.rel)
                    child_key = dot_base + value.key
                    value = value.value
                    spent += _LEAF_BYTES + 8 * len(child_path) + len(child_key)  # ``_charge``, inline
                elif key.__class__ is str and (size := len(key)) <= _MAX_KEY_CHARS:  # the common key
                    part = key
                    child_path = path + (key,)  # noqa: RUF005 (one tuple made, not a list and a tuple)
                    child_key = dot_base + key
                    spent += leaf_bytes + dot_len + size
                else:
                    part = _key_part(key)
                    child_path = (*path, part)
                    child_key = dot_base + part if part.__class__ is str else f"{dot_base}{part}"
                    spent += leaf_bytes + len(child_key)
                if spent > limit and (limit := self._next_report(spent, done)) < spent:
                    left = count_of(count - done + 1, "more item")
                    node.add(Node(name="…", kind=NodeKind.VALUE, key=child_key, path=child_path,
                                  value=f"… {left} not shown"))  # fmt: skip
                    stack.clear()
                    raise _BudgetSpent
                parent = node
                name = part if part.__class__ is str else str(part)
                if grouping and isinstance(part, str):
                    cut = _group_prefix(part)
                    if cut >= 0:
                        if cut == last_cut and part.startswith(last_prefix):
                            parent = last_group
                        else:
                            prefix = part[:cut]
                            found = groups.get(prefix)
                            if found is None:
                                self.spent = spent
                                found = self._group(node, groups, prefix, path, key_base)
                                spent = self.spent
                            parent = last_group = found
                            last_cut, last_prefix = cut, prefix
                        name = part[cut + 1 :]
                        spent += len(name)
                        if spent > limit and (limit := self._next_report(spent, done)) < spent:
                            raise _BudgetSpent
                if value.__class__ is TensorRef and not value.parts:  # the common leaf, added at once
                    info = _tensor_info(value)
                elif value.__class__ is TensorInfo:  # already read (safetensors headers, shard sets)
                    info = value
                else:
                    info = None
                if info is not None:
                    layout = info.layout_info
                    if layout is None:  # ``info.numel`` and ``info.nbytes``, inline
                        shape = info.shape
                        if shape is not last_shape:
                            last_numel, last_shape = math.prod(shape), shape
                        numel = last_numel
                        nbytes = numel * info.itemsize
                    else:
                        numel = info.numel
                        nbytes = layout.nbytes if layout.nbytes is not None else numel * info.itemsize
                    # ``parent.add(Node(name, tensor, child_key, child_path, tensor=info, params=numel,
                    # nbytes=nbytes))`` without the two calls: every field set here, in its order
                    row = new_node(Node)
                    row.name = name
                    row.kind = tensor
                    row.key = child_key
                    row.path = child_path
                    row.parent = parent
                    row.children = []
                    row.tensor = info
                    row.value = None
                    row.params = numel
                    row.nbytes = nbytes
                    siblings = parent.children
                    row.row = len(siblings)
                    row.entries = 0
                    siblings.append(row)
                    continue
                self.spent = spent
                self._add_entry(
                    stack, seen, keepalive, parent, name, child_path, child_key, value, depth, key_base
                )
                spent = self.spent
        finally:
            self.spent = max(spent, self.spent)
            self.rows += done

    def _next_report(self, spent: int, done: int) -> int:
        """Past a report point (not the budget): tell the read's watcher, and the next point's bytes
        (the budget's once it is nearer). Returns the budget itself once ``spent`` passes it."""
        if spent > self.max_bytes:
            return self.max_bytes
        report(TREE, self.rows + done)  # (its watcher may stop the read)
        return min(self.max_bytes, spent + _REPORT_BYTES)

    def _add_entry(
        self, stack: list[tuple[Node, Any, tuple[PathPart, ...], int, str]], seen: dict[int, str],
        keepalive: list[Any], parent: Node, name: str, child_path: tuple[PathPart, ...], child_key: str,
        value: Any, depth: int, key_base: str,
    ) -> None:  # fmt: skip
        """Add the row of an entry that is not a plain tensor: a value, a reference, or a container
        put on the stack to be expanded."""
        sub = _container_kind(value)
        if sub is None or _is_simple(value):
            kept = self._leaf(parent, name, child_path, value, child_key)
            try:
                self._charge(kept)
            except _BudgetSpent:
                parent.children.pop()  # the row whose text passes the budget is not shown
                raise
            return
        oid = id(value)
        if oid in seen:
            parent.add(Node(name=name, kind=NodeKind.REF, key=child_key,
                            path=child_path, value=seen[oid] or "(root)"))  # fmt: skip
            return
        if depth + 1 > MAX_DEPTH:
            parent.add(Node(name=name, kind=NodeKind.VALUE, key=child_key,
                            path=child_path, value="… (nested too deeply to show)"))  # fmt: skip
            self._deep_warning()
            return
        seen[oid] = child_key
        keepalive.append(value)
        self._charge(_CONTAINER_BYTES)
        child = parent.add(Node(name=name, kind=sub, key=child_key, path=child_path))
        if isinstance(value, (Call, Instance)):
            child.value = _class_name(value)
        elif isinstance(value, _Attributes) or (isinstance(value, PDict) and value.cls != "dict"):
            child.value = value.cls
        # A fold's entries keep the keys of the module it belongs to.
        stack.append(
            (child, value, child_path, depth + 1, key_base if isinstance(value, _Fold) else child_key)
        )

    def _deep_warning(self) -> None:
        if not any("nested" in w for w in self.warnings):
            self.warnings.append(f"containers are nested deeper than {MAX_DEPTH} levels")

    def _module_view(
        self, items: list[tuple[Any, Any]], path: tuple[PathPart, ...], key_base: str, depth: int,
        seen: dict[int, str], keepalive: list[Any],
    ) -> list[tuple[Any, Any]]:  # fmt: skip
        """A module's entries: its tensors and those of its submodules as ``state_dict()`` names
        them (parameters, then buffers, then each submodule), then one fold of all attributes."""
        listing: list[tuple[Any, Any]] = []
        fold = _Fold()
        # (the module, its attribute pairs, state_dict prefix, container path below the module, nesting)
        todo: list[tuple[Any, list[tuple[Any, Any]], str, tuple[PathPart, ...], int]] = [
            (None, items, "", (), 0)
        ]
        while todo:
            module, state, prefix, rel, level = todo.pop()
            if module is not None:  # a submodule: listed once, where state_dict() first reaches it
                if id(module) in seen:
                    listing.append((prefix[:-1], _Placed(module, rel, prefix[:-1])))
                    continue
                seen[id(module)] = f"{key_base}.{prefix[:-1]}" if key_base else prefix[:-1]
                keepalive.append(module)
            own = [(k, v) for k, v in state if not (isinstance(k, str) and k in _MODULE_STATE)]
            if module is not None:
                attrs_key = join_key(rel)
                self._charge(_CONTAINER_BYTES + len(attrs_key) + 8 * len(rel))
                attributes = _Attributes(_class_name(module), own)
                fold.pairs.append((prefix[:-1], _Placed(attributes, rel, attrs_key)))
            else:
                fold.pairs.extend(own)
            containers = {k: v for k, v in state if isinstance(k, str) and k in _MODULE_STATE}
            for slot in ("_parameters", "_buffers"):
                for name, value in containers[slot].items:
                    if value is None:
                        continue
                    part = _key_part(name)
                    self._charge(len(prefix) + len(str(part)))
                    listing.append((f"{prefix}{part}", _Placed(value, (*rel, slot, part), f"{prefix}{part}")))
            subs: list[tuple[Any, list[tuple[Any, Any]], str, tuple[PathPart, ...], int]] = []
            for name, sub in containers["_modules"].items:
                if sub is None:
                    continue
                part = _key_part(name)
                sub_rel = (*rel, "_modules", part)
                sub_prefix = f"{prefix}{part}"
                self._charge(len(sub_prefix) + 8 * len(sub_rel))
                sub_items = _module_state(sub)
                if sub_items is None:  # not a module: shown as it is, under its state_dict-style name
                    listing.append((sub_prefix, _Placed(sub, sub_rel, sub_prefix)))
                elif depth + level + 1 > MAX_DEPTH:
                    self._deep_warning()
                    listing.append((sub_prefix, OpaqueValue("… (nested too deeply to show)")))
                else:
                    subs.append((sub, sub_items, sub_prefix + ".", sub_rel, level + 1))
            todo.extend(reversed(subs))
        listing.append((MODULE_ATTRIBUTES, _Placed(fold, (), MODULE_ATTRIBUTES)))
        return listing

    def _group(
        self, node: Node, groups: dict[str, Node], prefix: str, path: tuple[PathPart, ...], key_base: str
    ) -> Node:
        """The group row for a dotted prefix not made yet, made with the groups above it that are
        missing (found by one lookup each), so grouping costs time linear in the keys' length."""
        missing = [prefix]
        parent = node
        above = prefix
        while True:
            cut = above.rfind(".")
            if cut < 0:
                break
            above = above[:cut]
            found = groups.get(above)
            if found is not None:
                parent = found
                break
            missing.append(above)
        group = NodeKind.GROUP
        for pre in reversed(missing):
            key = f"{key_base}.{pre}" if key_base else pre
            self._charge(_GROUP_BYTES + len(key) + len(pre))
            siblings = parent.children  # ``parent.add(Node(…))``, without the call
            parent = Node(
                pre[pre.rfind(".") + 1 :], group, key, path, parent, [], None, None, 0, 0, len(siblings)
            )
            siblings.append(parent)
            groups[pre] = parent
        return parent

    def _leaf(self, parent: Node, name: str, path: tuple[PathPart, ...], value: Any, key: str = "") -> int:
        """Add a leaf row; returns the bytes of text it keeps beyond the row itself."""
        if isinstance(value, TensorRef):
            info = _tensor_info(value)
            row = parent.add(Node(name=name, kind=NodeKind.TENSOR, key=key, path=path, tensor=info,
                                  params=info.numel, nbytes=info.nbytes))  # fmt: skip
            for part_name, part in value.parts:  # a sparse, nested or quantized tensor's pieces
                self._leaf(
                    row, part_name, (*path, part_name), part, f"{key}.{part_name}" if key else part_name
                )
            return _LEAF_BYTES * len(value.parts)
        if isinstance(value, TensorInfo):  # already read (shard sets): shown as it is
            parent.add(Node(name=name, kind=NodeKind.TENSOR, key=key, path=path, tensor=value,
                            params=value.numel, nbytes=value.nbytes))  # fmt: skip
            return 0
        text = value.text if isinstance(value, OpaqueValue) else describe(value)
        parent.add(Node(name=name, kind=NodeKind.VALUE, key=key, path=path, value=text))
        return 60 + len(text)


_PARAMS = attrgetter("params")
_NBYTES = attrgetter("nbytes")


def _aggregate(root: Node) -> None:
    """Post-order sums of params and bytes, without recursion; a tensor keeps its own (the parts
    below a sparse or nested tensor are inside it, not added to it). Only containers are visited;
    their children are summed in C."""
    tensor = NodeKind.TENSOR
    order: list[Node] = []
    stack = [root]
    while stack:
        n = stack.pop()
        order.append(n)
        if n.kind is not tensor:
            stack.extend([c for c in n.children if c.children and c.kind is not tensor])
    for n in reversed(order):
        if n.children and n.kind is not tensor:
            n.params = sum(map(_PARAMS, n.children))
            n.nbytes = sum(map(_NBYTES, n.children))
