"""Widths of the tree's columns: each wide enough for its header and for the text of a sample of rows,
and the name column fitted to the room the others leave, so numbers stay on screen in a narrow window.

The sample is fixed (the top level and the first rows in display order), its texts come straight
from the model's display text (no model index, no ``data`` call), and only the longest few of each
column are measured with the view's font: the cost is the same for 100 tensors and for a million.
``QTreeView.resizeColumnToContents`` would walk every expanded row through Python.
"""

from __future__ import annotations

import heapq

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QHeaderView, QTreeView

from inspector.core.model import Node
from inspector.gui.tree_model import CheckpointTreeModel, Column

#: Rows measured: enough for every row of ordinary checkpoints, a bounded cost for huge ones.
SAMPLE_ROWS = 2000
#: The name column never gets narrower than this when fitted (the user may still drag it).
MIN_NAME_WIDTH = 160
#: Nor wider than this by itself: a very long key is elided and shown whole in its tooltip.
MAX_NAME_WIDTH = 520
#: Other columns: at most this wide when measured (long shard names, class names).
MAX_COLUMN_WIDTH = 320
#: Of each column's distinct sampled texts, at most this many of the longest (by characters) are measured.
MEASURED_TEXTS = 200
_PADDING = 14  # the item's margins and the focus frame, both sides
#: Columns filled after the sizing (statistics) are at least as wide as their widest usual value.
_FLOOR_TEXT = {Column.NORM: "8.888e+88", Column.NONFINITE: "none"}
_SORT_INDICATOR = 0  # drawn over the padding when a column is sorted


def sample_rows(root: Node, limit: int = SAMPLE_ROWS) -> list[tuple[Node, int]]:
    """(node, depth) of the top-level rows and then the first rows in display order, at most ``limit``."""
    rows: list[tuple[Node, int]] = [(child, 0) for child in root.children[:limit]]
    seen = {id(node) for node, _ in rows}
    stack: list[tuple[Node, int]] = [(child, 0) for child in reversed(root.children)]
    while stack and len(rows) < limit:
        node, depth = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            rows.append((node, depth))
        stack.extend((child, depth + 1) for child in reversed(node.children))
    return rows


class ColumnSizer(QObject):
    """Sizes a tree view's columns for its model, and refits the name column when the view is resized
    until the user drags a column edge (their widths are then left alone)."""

    def __init__(self, view: QTreeView) -> None:
        super().__init__(view)
        self._view = view
        self._widths: dict[Column, int] = {}
        self._resizing = False
        self.user_sized = False
        view.viewport().installEventFilter(self)
        view.header().sectionResized.connect(self._on_section_resized)

    def measure(self, model: CheckpointTreeModel) -> dict[Column, int]:
        """The width each column's text needs, from the header and a sample of rows."""
        view = self._view
        text_metrics = view.fontMetrics()
        header_metrics = view.header().fontMetrics()
        indent = view.indentation()
        widths: dict[Column, int] = {}
        for column in Column:
            title = str(model.headerData(column, Qt.Orientation.Horizontal) or "")
            widths[column] = header_metrics.horizontalAdvance(title) + _PADDING + _SORT_INDICATOR
            if column in _FLOOR_TEXT:
                floor = text_metrics.horizontalAdvance(_FLOOR_TEXT[column]) + _PADDING
                widths[column] = max(widths[column], floor)
        # Each distinct text once; where a column has many, characters stand in for width to pick
        # the candidates (an indent counts as its width in average characters).
        average = max(1, text_metrics.averageCharWidth())
        indent_chars = indent / average
        texts: dict[Column, dict[tuple[str, int], float]] = {column: {} for column in Column}
        display, columns = model.display_text, list(Column)
        for node, depth in sample_rows(model.root):
            for column in columns:
                text = display(node, column)
                if text:
                    level = depth if column is Column.NAME else -1
                    texts[column][(text, level)] = len(text) + indent_chars * (level + 1)
        for column, found in texts.items():
            for text, level in heapq.nlargest(MEASURED_TEXTS, found, key=found.__getitem__):
                # the branch indicator and each level's indent, in the name column
                width = text_metrics.horizontalAdvance(text) + _PADDING + indent * (level + 1)
                widths[column] = max(widths[column], width)
        return widths

    def apply(self, model: CheckpointTreeModel) -> None:
        """Measure, size every column, and fit the name column to the room left."""
        self._widths = self.measure(model)
        header = self._view.header()
        self._resizing = True
        try:
            for column in Column:
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
                if column is not Column.NAME:
                    header.resizeSection(column, min(self._widths[column], MAX_COLUMN_WIDTH))
        finally:
            self._resizing = False
        self.user_sized = False
        self.fit_name()

    def set_hidden(self, column: Column, hidden: bool) -> None:
        """Hide or show a column (not a user's resize)."""
        self._resizing = True
        try:
            self._view.header().setSectionHidden(column, hidden)
        finally:
            self._resizing = False

    def show_columns(self, columns: list[Column], model: CheckpointTreeModel) -> None:
        """Show columns hidden until now (NaN/Inf, L2 norm) at their text's width; refit the name."""
        header = self._view.header()
        hidden = [c for c in columns if header.isSectionHidden(c)]
        if not hidden:
            return
        self._widths = self.measure(model)
        self._resizing = True
        try:
            for column in hidden:
                header.setSectionHidden(column, False)
                header.resizeSection(column, min(self._widths[column], MAX_COLUMN_WIDTH))
        finally:
            self._resizing = False
        self.fit_name()

    def fit_name(self) -> None:
        """The name column gets what the other shown columns leave (within its bounds)."""
        if not self._widths or self.user_sized:
            return
        header = self._view.header()
        others = sum(
            header.sectionSize(c) for c in Column if c is not Column.NAME and not header.isSectionHidden(c)
        )
        room = self._view.viewport().width() - others
        wanted = min(self._widths[Column.NAME], MAX_NAME_WIDTH)
        width = max(MIN_NAME_WIDTH, min(wanted, room))
        self._resizing = True
        try:
            header.resizeSection(Column.NAME, width)
        finally:
            self._resizing = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.fit_name()
        return False

    def _on_section_resized(self, _column: int, _old: int, _new: int) -> None:
        if not self._resizing:
            self.user_sized = True
