"""The filter proxy shows what Qt's own recursive filter shows: the rows whose key or label matches,
everything below them and their ancestors, with an expand arrow exactly where a row keeps a child."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from inspector.core.keyfilter import KeyMatcher, MatchMode
from inspector.core.model import Node
from inspector.core.tree import TreeBuilder
from inspector.core.unpickler import PDict
from inspector.gui.filter_proxy import CheckpointFilterProxy
from inspector.gui.tree_model import CheckpointTreeModel, ItemRole

AnyIndex = QModelIndex | QPersistentModelIndex


class PlainFilter(QSortFilterProxyModel):
    """Qt's recursive filter, testing each row's key and label one by one."""

    def __init__(self, labels: dict[str, str]) -> None:
        super().__init__()
        self.matcher: KeyMatcher | None = None
        self.labels = labels
        self.setRecursiveFilteringEnabled(True)
        self.setAutoAcceptChildRows(True)

    def set_matcher(self, matcher: KeyMatcher | None) -> None:
        self.beginFilterChange()
        self.matcher = matcher
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if self.matcher is None:
            return True
        node: Node = self.sourceModel().index(source_row, 0, source_parent).data(ItemRole.NodeRole)
        label = self.labels.get(node.key)
        return self.matcher.matches(node.key) or (label is not None and self.matcher.matches(label))


def _shown(proxy: QSortFilterProxyModel, parent: QModelIndex) -> list[tuple[str, bool, list[object]]]:
    """Every row below ``parent`` in the proxy's order: its key, whether it has an expand arrow, its rows."""
    rows = []
    for row in range(proxy.rowCount(parent)):
        index = proxy.index(row, 0, parent)
        rows.append((index.data(ItemRole.KeyRole), proxy.hasChildren(index), _shown(proxy, index)))
    return rows


_part = st.sampled_from(["a", "b", "layers", "0", "1", "weight", "bias"])
_needle = st.sampled_from(["", "a", "layers.0", "weight", "b.1", "x", "0.w", "A", "q_proj"])


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.lists(_part, min_size=1, max_size=5).map(".".join), max_size=25),
    labelled=st.sets(st.integers(min_value=0, max_value=24), max_size=4),
    needles=st.lists(st.tuples(_needle, st.sampled_from(MatchMode)), min_size=1, max_size=4),
    opened=st.booleans(),
)
def test_the_filter_keeps_and_marks_the_rows_qt_s_recursive_filter_does(
    qapp: object,
    keys: list[str],
    labelled: set[int],
    needles: list[tuple[str, MatchMode]],
    opened: bool,
) -> None:
    """Filter after filter, on a tree walked (and so mapped) before or not, both proxies show the
    same rows with the same expand arrows."""
    root = TreeBuilder().build(PDict(items=[(k, 1) for k in keys]))
    labels = {keys[i]: "q_proj" for i in labelled if i < len(keys)}
    model = CheckpointTreeModel(root)
    ours, plain = CheckpointFilterProxy(), PlainFilter(labels)
    ours.setSourceModel(model)
    plain.setSourceModel(model)
    ours.set_labels(labels)
    if opened:
        assert _shown(ours, QModelIndex()) == _shown(plain, QModelIndex())
    for needle, mode in needles:
        pattern = needle if mode is not MatchMode.REGEX else needle.replace(".", r"\.")
        ours.set_filter(pattern, mode)
        plain.set_matcher(KeyMatcher(pattern, mode) if pattern else None)
        assert _shown(ours, QModelIndex()) == _shown(plain, QModelIndex()), (pattern, mode)
