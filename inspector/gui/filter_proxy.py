"""Filtering by key (substring, glob, regex) and sorting by raw numbers over the tree model."""

from __future__ import annotations

import re
from collections.abc import Mapping

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
)

from inspector.core.keyfilter import KeyIndex, KeyMatcher, MatchMode
from inspector.core.model import Node
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole

AnyIndex = QModelIndex | QPersistentModelIndex

_DIGITS = re.compile(r"(\d+)")


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """ "layers.10" after "layers.9": digit runs compare as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower()) for part in _DIGITS.split(text) if part
    )


class _KeptRows(dict[int, tuple[bool, ...]]):
    """By the source parent's ``internalId`` (its node's ``id``, 0 for the root): the kept flags of
    its children, judged by core for all of them on the first row Qt asks about."""

    def __init__(self, keys: KeyIndex, visible: bytearray) -> None:
        super().__init__()
        self._keys = keys
        self._visible = visible

    def __missing__(self, parent_id: int) -> tuple[bool, ...]:
        parent = self._keys.node_at(parent_id)
        flags = self[parent_id] = tuple(map(bool, self._keys.kept_children(self._visible, parent)))
        return flags


class CheckpointFilterProxy(QSortFilterProxyModel):
    """Keeps rows whose full key matches (and their parents); sorts on ``ItemRole.SortRole``.

    The kept set is computed by core in one pass when the filter changes, so ``filterAcceptsRow``
    is a lookup and runs only under the rows a view has opened. Qt's recursive filtering would call
    back into Python for every row of the checkpoint on each keystroke (about 1 s at 100,000 keys).
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._matcher: KeyMatcher | None = None
        self._keys: KeyIndex | None = None
        self._visible: bytearray | None = None  # one byte per node of the key index; None: every row
        self._kept: _KeptRows | None = None  # the rows asked for so far, by parent; None: every row
        self._labels: dict[str, str] = {}  # key → the label shown after its name (optimizer slots)
        self._label_positions: list[tuple[int, str]] | None = None
        self.setRecursiveFilteringEnabled(False)
        self.setDynamicSortFilter(False)
        self.setSortRole(ItemRole.SortRole)

    def setSourceModel(self, model: QAbstractItemModel) -> None:
        self._keys = None  # built on the first filter of the new tree
        self._matcher = None
        self._visible = None
        self._kept = None
        self._labels = {}
        self._label_positions = None
        super().setSourceModel(model)

    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Labels shown after some rows' names, by key: the filter matches them as it matches keys."""
        self._labels = dict(labels)
        self._label_positions = None

    def set_key_index(self, keys: KeyIndex) -> None:
        """Hand over a ``KeyIndex`` built off the GUI thread, so the first keystroke is fast too."""
        source = self._tree_model()
        if source is not None and keys.root is source.root:
            self._keys = keys
            self._label_positions = None

    def _tree_model(self) -> CheckpointTreeModel | None:
        source = self.sourceModel()
        return source if isinstance(source, CheckpointTreeModel) else None

    @property
    def matcher(self) -> KeyMatcher | None:
        return self._matcher

    def set_filter(self, pattern: str, mode: MatchMode = MatchMode.SUBSTRING) -> bool:
        """Apply a filter; whether it changed the rows kept. An invalid regex raises ValueError (a
        sentence) and keeps the old one."""
        matcher = KeyMatcher(pattern, mode) if pattern else None
        source = self._tree_model()
        visible: bytearray | None = None
        if matcher is not None and source is not None:
            if self._keys is None:
                self._keys = KeyIndex(source.root)
            visible = self._keys.visible(matcher, self._label_hits(matcher))
            if 0 not in visible:  # the first letters typed often keep every row
                visible = None
        if visible == self._visible:  # the same rows stay: nothing for the view to redo
            self._matcher = matcher
            return False
        self.beginFilterChange()
        self._matcher = matcher
        self._visible = visible
        self._kept = None if visible is None or self._keys is None else _KeptRows(self._keys, visible)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        return True

    def _label_hits(self, matcher: KeyMatcher) -> list[int]:
        """Positions of the rows whose label matches."""
        if not self._labels or self._keys is None:
            return []
        if self._label_positions is None:
            self._label_positions = [
                (i, self._labels[n.key]) for i, n in enumerate(self._keys.nodes) if n.key in self._labels
            ]
        return [i for i, label in self._label_positions if matcher.matches(label)]

    @property
    def pattern(self) -> str:
        return self._matcher.pattern if self._matcher is not None else ""

    def first_hits(self, limit: int) -> list[Node]:
        """Up to ``limit`` nodes whose own key or label matches, in display order (to reveal in the view)."""
        if self._matcher is None or self._keys is None:
            return []
        hits = sorted({*self._keys.first_hits(self._matcher, limit), *self._label_hits(self._matcher)})
        return [self._keys.nodes[i] for i in hits[:limit]]

    def hasChildren(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        """A kept row keeps a child when it has one (a match keeps its subtree, an ancestor the path
        to a match), so the source answers: Qt's own answer maps the children of every row a view
        shows, closed ones too, and each keystroke would judge them all again (10,000 under one row)."""
        source = self._tree_model()
        if source is None or not parent.isValid():
            return super().hasChildren(parent)
        return source.hasChildren(self.mapToSource(parent))

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        """Qt asks row by row, from C++, for every row under each parent it maps: one lookup here
        (an attribute of a Qt object costs as much as the rest)."""
        kept = self._kept
        return True if kept is None else kept[source_parent.internalId()][source_row]

    def lessThan(self, source_left: AnyIndex, source_right: AnyIndex) -> bool:
        role = self.sortRole()
        left = source_left.data(role)
        right = source_right.data(role)
        if source_left.column() == Column.NAME and isinstance(left, str):
            return _natural_key(left) < _natural_key(str(right))
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return left < right
        return str(left or "").lower() < str(right or "").lower()
