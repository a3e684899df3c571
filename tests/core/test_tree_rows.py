"""The rows the tree builder makes for a dict of tensors, checked against a plain model of them:
dotted keys grouped by splitting at dots (at most ``MAX_GROUP_DEPTH`` groups), each row's and
group's bytes charged to the budget in the order the rows are made, sums of elements and bytes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from inspector.core.formatting import count_of
from inspector.core.model import LayoutInfo, Node, NodeKind, TensorInfo
from inspector.core.torch_pickle import StorageRef, TensorRef
from inspector.core.tree import MAX_GROUP_DEPTH, MAX_TREE_BYTES, TreeBuilder, _tensor_info
from inspector.core.unpickler import PDict


@dataclass
class _Row:
    name: str
    kind: NodeKind
    key: str
    path: tuple[Any, ...]
    value: str | None = None
    params: int = 0
    nbytes: int = 0
    tensor: TensorInfo | None = None
    children: list[_Row] = field(default_factory=list)
    entries: int = 0


class _Spent(Exception):
    pass


class _Model:
    """The tree a dict of tensors, values and dicts of tensors should give, made the plain way."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.spent, self.rows = max_bytes, 0, 0

    def charge(self, n: int) -> None:
        self.spent += n
        if self.spent > self.max_bytes:
            raise _Spent

    def build(self, top: PDict) -> tuple[_Row, list[str]]:
        root = _Row("", NodeKind.DICT, "", ())
        todo = [(root, top, (), "")]
        try:
            while todo:
                self.expand(todo, *todo.pop())
        except _Spent:
            warning = (
                f"the tree is cut short after {count_of(self.rows, 'row')}: showing more would take over "
            )
            return root, [warning + f"{self.max_bytes >> 20:,} MB, the limit of a static view"]
        return root, []

    def expand(self, todo: list[Any], row: _Row, obj: PDict, path: tuple[Any, ...], base: str) -> None:
        groups: dict[str, _Row] = {}
        row.entries = len(obj.items)
        for done, (key, value) in enumerate(obj.items, 1):
            self.rows += 1
            child_path, child_key = (*path, key), f"{base}.{key}" if base else key
            try:
                self.charge(350 + 8 * len(child_path) + len(child_key))
            except _Spent:
                left = count_of(len(obj.items) - done + 1, "more item")
                row.children.append(_Row("…", NodeKind.VALUE, child_key, child_path, f"… {left} not shown"))
                raise
            parent, name, parts = row, key, key.split(".")
            if len(parts) >= 3:
                depth = min(len(parts) - 2, MAX_GROUP_DEPTH)
                for i in range(1, depth + 1):
                    prefix = ".".join(parts[:i])
                    if prefix not in groups:
                        group_key = f"{base}.{prefix}" if base else prefix
                        self.charge(400 + len(group_key) + len(prefix))
                        groups[prefix] = _Row(parts[i - 1], NodeKind.GROUP, group_key, path)
                        parent.children.append(groups[prefix])
                    parent = groups[prefix]
                name = ".".join(parts[depth:])
                self.charge(len(name))
            if isinstance(value, PDict):
                self.charge(300)
                child = _Row(name, NodeKind.DICT, child_key, child_path)
                todo.append((child, value, child_path, child_key))
            elif isinstance(value, (TensorInfo, TensorRef)):
                info = value if isinstance(value, TensorInfo) else _tensor_info(value)
                child = _Row(
                    name, NodeKind.TENSOR, child_key, child_path, None, info.numel, info.nbytes, info
                )
            else:
                child = _Row(name, NodeKind.VALUE, child_key, child_path, repr(value))
                self.charge(60 + len(repr(value)))
            parent.children.append(child)


def _summed(row: _Row) -> None:
    for c in row.children:
        _summed(c)
    if row.children and row.kind is not NodeKind.TENSOR:
        row.params, row.nbytes = sum(c.params for c in row.children), sum(c.nbytes for c in row.children)


def _listed(node: Node | _Row) -> list[tuple[Any, ...]]:
    out, stack = [], [(node, 0)]
    while stack:
        n, depth = stack.pop()
        out.append((depth, n.name, n.kind, n.key, n.path, n.value, n.params, n.nbytes, n.tensor, n.entries))
        stack.extend((c, depth + 1) for c in reversed(n.children))
    return out


_SHAPES = [(), (3,), (2, 4), (0, 5), (1, 1, 7)]


@st.composite
def _dicts(draw: st.DrawFn) -> PDict:
    """Dicts of tensors (read ones and pickled ones, some sharing one shape object, some with a
    layout's own counts), values and dicts of tensors, under keys of many dots, empty
    components and more components than are grouped."""
    shapes = [tuple(s) for s in _SHAPES]  # one object per shape, shared by the tensors drawn with it
    keys = st.text("ab.0", max_size=9) | st.builds(
        lambda n, k: "x." * n + k, st.integers(30, 36), st.text("ab.", max_size=3)
    )

    def tensor(i: int) -> TensorInfo | TensorRef:
        shape = shapes[draw(st.integers(0, len(shapes) - 1))]
        layout = draw(
            st.sampled_from(
                [None, None, None, LayoutInfo(nnz=1), LayoutInfo(numel=9, nbytes=5), LayoutInfo(nbytes=3)]
            )
        )
        if draw(st.booleans()):
            return TensorInfo(
                shape, "float16", "cpu", f"s{i}", 0, (1,) * len(shape), 40, 2, layout_info=layout
            )
        storage = draw(st.sampled_from([None, StorageRef(f"{i}", "float32", "cuda:0", 10)]))
        dtype = draw(st.sampled_from(["float32", "int4x"]))
        return TensorRef(storage, draw(st.integers(0, 2)), shape, (1,) * len(shape), dtype, "cpu",
                         draw(st.booleans()), draw(st.booleans()), "strided",
                         draw(st.sampled_from([None, "Param"])), layout)  # fmt: skip

    def value(i: int, nested: bool) -> Any:
        kind = draw(st.integers(0, 9))
        if kind == 0 and nested:
            return PDict([(draw(keys), value(i * 10 + j, False)) for j in range(draw(st.integers(0, 4)))])
        return draw(st.integers(-5, 5)) if kind == 1 else tensor(i)

    return PDict([(draw(keys), value(i, True)) for i in range(draw(st.integers(0, 25)))])


_VALUE_PAST_THE_BUDGET = PDict(
    [("", TensorRef(None, 0, (), (), "float32", "cpu", False)), ("", 0), ("", PDict([])), ("", PDict([]))]
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(top=_dicts(), budget=st.none() | st.integers(0, 12_000))
@example(top=_VALUE_PAST_THE_BUDGET, budget=716)  # a value row whose text passes the budget: not shown
def test_the_rows_of_a_dict_of_tensors_are_those_of_the_plain_model(top: PDict, budget: int | None) -> None:
    """Names, keys, paths, groups, elements and bytes of every row, and where a small budget cuts
    the tree short (its last row and sentence), are those the plain model gives."""
    max_bytes = MAX_TREE_BYTES if budget is None else budget
    builder = TreeBuilder(max_bytes)
    root = builder.build(top)
    model = _Model(max_bytes)
    expected, warnings = model.build(top)
    _summed(expected)
    assert _listed(root)[1:] == _listed(expected)[1:]
    assert (root.params, root.nbytes) == (expected.params, expected.nbytes)
    assert builder.warnings == warnings
    if not warnings:
        assert builder.spent == model.spent
    names = [f.name for f in fields(Node)]
    for node in root.walk():
        assert node.parent is not None and node.parent.children[node.row] is node
        assert all(hasattr(node, name) for name in names)  # every field of every row is set
        assert all(node.children is not other.children for other in node.parent.children if other is not node)


def test_a_tensor_pickled_in_a_dict_is_read_as_a_tensor_alone() -> None:
    """The row of a pickled tensor in a dict holds what a pickled tensor alone is read as."""
    rng = random.Random(0)
    for _ in range(200):
        layout = rng.choice([None, LayoutInfo(numel=4), LayoutInfo(nnz=2, nbytes=8)])
        storage = rng.choice(
            [None, StorageRef("0", rng.choice(["float32", "int8", "odd"]), "cuda:1", rng.randint(0, 9))]
        )
        dtype = rng.choice(["bfloat16", "odd"])
        ref = TensorRef(storage, rng.randint(0, 3), (rng.randint(0, 4), 2), (2, 1), dtype, "meta",
                        rng.random() < 0.5, rng.random() < 0.5, rng.choice(["strided", "sparse_coo"]),
                        rng.choice([None, "Buffer"]), layout)  # fmt: skip
        alone = TreeBuilder().build(ref).children[0]
        in_dict = TreeBuilder().build(PDict([("w", ref)])).children[0]
        assert in_dict.tensor == alone.tensor == _tensor_info(ref)
        assert (in_dict.params, in_dict.nbytes) == (alone.params, alone.nbytes)
