"""The tensor detail panel: statistics, histogram, heatmap and a paged table of values.

Everything that reads tensor data runs in the engine process (``StatsRequest`` and
``SliceRequest`` jobs); the panel only sends the request and shows the reply. Each selection bumps
a generation number: answers for an earlier selection are not shown, and a job for one that runs
long is cancelled.
"""

from __future__ import annotations

import functools
import html
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text, format_bytes, format_count, format_shape
from inspector.core.model import Node, PathPart
from inspector.core.value_text import Cell, cells_as_numpy, cells_as_text
from inspector.engine.protocol import Failure, SliceReply, SliceRequest, StatsReply, StatsRequest
from inspector.gui.durations import Clock, wait_text
from inspector.gui.engine_bridge import EngineBridge, EngineJob
from inspector.gui.i18n import QT_TRANSLATE_NOOP
from inspector.gui.plots import HeatmapPane, HistogramPane

AnyIndex = QModelIndex | QPersistentModelIndex

#: A page of the values table: this many rows × columns per ``slice`` job.
PAGE_ROWS = 128
PAGE_COLS = 32
_MAX_PAGES = 96  # pages kept; the oldest go first
#: The heatmap shows at most this many rows and columns (the top-left block of a larger matrix).
HEATMAP_MAX = 256
#: A selection of at most this many values can be copied.
COPY_MAX_CELLS = 250_000
#: An answer still missing this long after the selection moved on is cancelled in the engine
#: (statistics stop at their next block; a slice restarts the worker: only worth it for a job that
#: may run much longer).
CANCEL_AFTER_S = 2.0
_SELECT_DELAY_MS = 120

#: (stats field, label) in display order; labels are translated where shown (context DetailPanel).
STAT_ROWS = (
    ("min", QT_TRANSLATE_NOOP("DetailPanel", "min")),
    ("max", QT_TRANSLATE_NOOP("DetailPanel", "max")),
    ("mean", QT_TRANSLATE_NOOP("DetailPanel", "mean")),
    ("std", QT_TRANSLATE_NOOP("DetailPanel", "std (n−1)")),  # the sample std: the stats' std_correction
    ("abs_mean", QT_TRANSLATE_NOOP("DetailPanel", "mean |x|")),
    ("l2_norm", QT_TRANSLATE_NOOP("DetailPanel", "L2 norm")),
    ("zeros", QT_TRANSLATE_NOOP("DetailPanel", "zeros")),
    ("nan", "NaN"),
    ("posinf", "+Inf"),
    ("neginf", "−Inf"),
    ("value_counts", QT_TRANSLATE_NOOP("DetailPanel", "values")),
)


def _file_name(key: str) -> str:
    """A tensor key as part of a file name: path separators and other awkward characters become "_"."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:120] or "tensor"


def format_number(x: object) -> str:
    """A statistic as text: ints exactly, floats to 6 significant digits, "nan"/"inf" as they are."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.6g}" if math.isfinite(x) else str(x)
    return str(x)


def whole_tensor(node: Node) -> Node | None:
    """The sparse, nested or quantized tensor that ``node`` is a part of (its indices, values,
    scales …); None for a tensor of its own. The engine reads tensors of the file, not their parts."""
    up = node.parent
    return up if up is not None and up.tensor is not None else None


def _cell_display(cell: Cell) -> str:
    if isinstance(cell, float):
        return f"{cell:.6g}"
    if isinstance(cell, bool):
        return "True" if cell else "False"
    return str(cell)


class _Jobs:
    """Engine jobs a widget waits for, with the selection (generation) each was asked for."""

    def __init__(self) -> None:
        self.pending: dict[EngineJob, tuple[int, float]] = {}  # job → (generation, when sent)

    def add(self, job: EngineJob, generation: int) -> None:
        self.pending[job] = (generation, time.monotonic())

    def pop(self, job: EngineJob) -> int | None:
        """The generation ``job`` was asked for (None once forgotten)."""
        entry = self.pending.pop(job, None)
        return entry[0] if entry is not None else None

    def any_for(self, generation: int) -> bool:
        return any(gen == generation for gen, _sent in self.pending.values())

    def stale(self, generation: int, older_than_s: float) -> list[EngineJob]:
        """Jobs of earlier generations sent more than ``older_than_s`` ago."""
        now = time.monotonic()
        return [
            job
            for job, (gen, sent) in self.pending.items()
            if gen != generation and now - sent > older_than_s
        ]

    def drop(self) -> None:
        """Forget every job: their answers are not shown (they run to their end in the engine)."""
        self.pending.clear()


class SliceTableModel(QAbstractTableModel):
    """A 2-D slice of a tensor, fetched from the engine a page at a time as the view asks for cells.

    Only the pages the view shows are ever requested, so a 32000 × 4096 matrix scrolls without
    being read whole. ``configure`` picks the tensor, the two shown axes and the other axes' indices.
    """

    page_loaded = Signal()
    failed = Signal(str)

    def __init__(self, engine: EngineBridge | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine
        self._generation = 0
        self._jobs = _Jobs()
        self._pages: OrderedDict[tuple[int, int], Sequence[Sequence[Cell]]] = OrderedDict()
        self._requested: set[tuple[int, int]] = set()
        self._failed: dict[tuple[int, int], str] = {}  # page → why it could not be read
        self.path = ""
        self.tensor_path: list[PathPart] = []
        self.shape: tuple[int, ...] = ()
        self.dtype = ""
        self.row_axis: int | None = None
        self.col_axis: int | None = None
        self.fixed_index: list[int] = []  # position on every axis (shown axes: 0)
        self._rows = 0
        self._cols = 0

    def configure(
        self,
        path: str,
        tensor_path: Sequence[PathPart],
        shape: Sequence[int],
        dtype: str,
        row_axis: int | None,
        col_axis: int | None,
        index: Sequence[int] = (),
    ) -> None:
        self.beginResetModel()
        self._generation += 1
        self._pages.clear()
        self._requested.clear()
        self._failed.clear()
        self.path, self.tensor_path = path, list(tensor_path)
        self.shape, self.dtype = tuple(shape), dtype
        self.row_axis, self.col_axis = row_axis, col_axis
        self.fixed_index = [int(i) for i in index] + [0] * max(0, len(self.shape) - len(index))
        self._rows = self.shape[row_axis] if row_axis is not None else 1
        self._cols = self.shape[col_axis] if col_axis is not None else 1
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._generation += 1
        self._pages.clear()
        self._requested.clear()
        self._failed.clear()
        self.shape, self._rows, self._cols = (), 0, 0
        self.endResetModel()

    def drop_pending(self) -> None:
        """Forget every outstanding request (their answers will be ignored)."""
        self._jobs.drop()
        self._requested.clear()

    # -- Qt model -------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._cols

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            reason = self.failure_at(index.row(), index.column())
            if reason is not None:
                return self.tr("unreadable") if role == Qt.ItemDataRole.DisplayRole else reason
            cell = self.cell(index.row(), index.column())
            if cell is None:
                return "…" if role == Qt.ItemDataRole.DisplayRole else None
            return _cell_display(cell) if role == Qt.ItemDataRole.DisplayRole else repr(cell)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and self.failure_at(index.row(), index.column()):
            return QColor("#b00020")
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        axis = self.row_axis if orientation == Qt.Orientation.Vertical else self.col_axis
        return str(section) if axis is not None else ""

    # -- pages ----------------------------------------------------------------------------------

    def failure_at(self, row: int, col: int) -> str | None:
        """Why the value at (row, col) could not be read; None while it is read or shown."""
        return self._failed.get((row // PAGE_ROWS, col // PAGE_COLS))

    def failure_in(self, top: int, left: int, bottom: int, right: int) -> str | None:
        """Why some value of the block could not be read (the first page's reason); None if none failed."""
        for page_row in range(top // PAGE_ROWS, bottom // PAGE_ROWS + 1):
            for page_col in range(left // PAGE_COLS, right // PAGE_COLS + 1):
                reason = self._failed.get((page_row, page_col))
                if reason is not None:
                    return reason
        return None

    def cell(self, row: int, col: int, fetch: bool = True) -> Cell | None:
        """The value at (row, col) if its page is here; otherwise asks for the page (once; a page
        that could not be read is not asked for again until the slice changes)."""
        key = (row // PAGE_ROWS, col // PAGE_COLS)
        page = self._pages.get(key)
        if page is None:
            if fetch and key not in self._failed:
                self._request(key)
            return None
        self._pages.move_to_end(key)
        r, c = row - key[0] * PAGE_ROWS, col - key[1] * PAGE_COLS
        if r < len(page) and c < len(page[r]):
            return page[r][c]
        return None

    def cells(self, top: int, left: int, bottom: int, right: int) -> list[list[Cell]] | None:
        """The block's values, or None while some of its pages are still being fetched."""
        out: list[list[Cell]] = []
        missing = False
        for row in range(top, bottom + 1):
            values: list[Cell] = []
            for col in range(left, right + 1):
                cell = self.cell(row, col)
                if cell is None:
                    missing = True
                    values.append("")
                else:
                    values.append(cell)
            out.append(values)
        return None if missing else out

    @property
    def pages_pending(self) -> int:
        return len(self._requested)

    def _request(self, key: tuple[int, int]) -> None:
        if key in self._requested or self._engine is None or not self.path:
            return
        self._requested.add(key)
        request = SliceRequest(
            self.path,
            tuple(self.tensor_path),
            axes=(self.row_axis, self.col_axis),
            index=tuple(self.fixed_index),
            row_start=key[0] * PAGE_ROWS,
            row_count=PAGE_ROWS,
            col_start=key[1] * PAGE_COLS,
            col_count=PAGE_COLS,
        )
        job = self._engine.submit(request, owner=self)
        job.finished.connect(functools.partial(self._on_page, job, key))
        job.failed.connect(functools.partial(self._on_page_failed, job, key))
        self._jobs.add(job, self._generation)

    def _on_page(self, job: EngineJob, key: tuple[int, int], page: SliceReply) -> None:
        if self._jobs.pop(job) != self._generation:
            return
        self._requested.discard(key)
        self._pages[key] = page.values
        while len(self._pages) > _MAX_PAGES:
            self._pages.popitem(last=False)
        self._page_changed(key)
        self.page_loaded.emit()

    def _on_page_failed(self, job: EngineJob, key: tuple[int, int], failure: Failure) -> None:
        if self._jobs.pop(job) != self._generation:
            return
        self._requested.discard(key)
        reason = escape_text(failure.message) if failure.message else self.tr("The values could not be read.")
        self._failed[key] = reason
        self._page_changed(key)
        self.failed.emit(reason)

    def _page_changed(self, key: tuple[int, int]) -> None:
        top, left = key[0] * PAGE_ROWS, key[1] * PAGE_COLS
        bottom = min(self._rows, top + PAGE_ROWS) - 1
        right = min(self._cols, left + PAGE_COLS) - 1
        if bottom >= top and right >= left:
            self.dataChanged.emit(self.index(top, left), self.index(bottom, right))


class ValuesView(QWidget):
    """Axis pickers, indices of the other axes, and the paged table; copies selections as text."""

    copied = Signal(str)  # the text put on the clipboard

    def __init__(self, engine: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = SliceTableModel(engine, self)
        self._node: Node | None = None
        self._path = ""
        self._pending_copy: str | None = None  # "text" / "numpy" waiting for pages
        self.row_combo = QComboBox()
        self.col_combo = QComboBox()
        self.row_combo.setObjectName("rowAxisCombo")
        self.col_combo.setObjectName("colAxisCombo")
        for combo in (self.row_combo, self.col_combo):  # a narrow panel cuts "axis 0 (32000)", not the plots
            combo.setMinimumWidth(56)
        self.index_boxes: list[QSpinBox] = []
        self.index_labels: list[QLabel] = []
        self.axes_row = QHBoxLayout()
        self.axes_row.setContentsMargins(0, 0, 0, 0)
        self.rows_label = QLabel()
        self.cols_label = QLabel()
        self.axes_row.addWidget(self.rows_label)
        self.axes_row.addWidget(self.row_combo)
        self.axes_row.addWidget(self.cols_label)
        self.axes_row.addWidget(self.col_combo)
        self.axes_row.addStretch(1)
        # The other axes' indices, two a line under the pickers (a 4-D tensor's would widen the panel).
        self.index_row = QGridLayout()
        self.index_row.setContentsMargins(0, 0, 0, 0)
        self.index_row.setColumnStretch(4, 1)
        self.table = QTableView()
        self.table.setObjectName("valuesTable")
        self.table.setModel(self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ContiguousSelection)
        self.table.horizontalHeader().setDefaultSectionSize(100)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.copy_text_action = QAction(self)
        self.copy_text_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_text_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_text_action.triggered.connect(lambda: self.copy_selection("text"))
        self.copy_numpy_action = QAction(self)
        self.copy_numpy_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.copy_numpy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_numpy_action.triggered.connect(lambda: self.copy_selection("numpy"))
        self.table.addAction(self.copy_text_action)
        self.table.addAction(self.copy_numpy_action)
        self.copy_text_button = QPushButton()
        self.copy_text_button.clicked.connect(self.copy_text_action.trigger)
        self.copy_numpy_button = QPushButton()
        for button in (self.copy_text_button, self.copy_numpy_button):
            button.setMinimumWidth(64)
        self.copy_numpy_button.clicked.connect(self.copy_numpy_action.trigger)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_text_button)
        buttons.addWidget(self.copy_numpy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(self.axes_row)
        layout.addLayout(self.index_row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status_label)  # a line of its own: a sentence about the file is read whole
        layout.addLayout(buttons)
        self.row_combo.activated.connect(self._on_axes_changed)
        self.col_combo.activated.connect(self._on_axes_changed)
        self.model.page_loaded.connect(self._on_page_loaded)
        self.model.failed.connect(self._on_page_failed)
        self._retranslate()

    def _retranslate(self) -> None:
        self.rows_label.setText(self.tr("rows"))
        self.cols_label.setText(self.tr("columns"))
        self.copy_text_action.setText(self.tr("Copy as text"))
        self.copy_numpy_action.setText(self.tr("Copy as NumPy literal"))
        self.copy_text_button.setText(self.tr("Copy as text"))
        self.copy_numpy_button.setText(self.tr("Copy as NumPy"))
        if self._node is not None and self._node.tensor is not None:
            shape = self._node.tensor.shape
            for combo in (self.row_combo, self.col_combo):
                for axis in range(combo.count()):
                    combo.setItemText(axis, self.tr("axis {0} ({1})").format(axis, shape[axis]))
            for axis, label, box in zip(self._fixed_axes(), self.index_labels, self.index_boxes, strict=True):
                self._name_index_box(axis, shape[axis], label, box)

    def _name_index_box(self, axis: int, length: int, label: QLabel, box: QSpinBox) -> None:
        label.setText(self.tr("axis {0} =").format(axis))
        box.setToolTip(self.tr("Index on axis {0} (length {1})").format(axis, length))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def show_tensor(self, path: str, node: Node) -> None:
        """Show the first two axes of ``node`` (index 0 on the others)."""
        info = node.tensor
        assert info is not None
        self._node, self._path = node, path
        self._pending_copy = None
        self.status_label.clear()
        ndim = len(info.shape)
        for combo in (self.row_combo, self.col_combo):
            combo.clear()
            for axis in range(ndim):
                combo.addItem(self.tr("axis {0} ({1})").format(axis, info.shape[axis]), axis)
        self.col_combo.setEnabled(ndim >= 2)
        self.row_combo.setEnabled(ndim >= 2)
        if ndim >= 2:
            self.row_combo.setCurrentIndex(0)
            self.col_combo.setCurrentIndex(1)
        self._rebuild_index_boxes()
        self._configure()

    def set_axes(self, row_axis: int, col_axis: int, index: Sequence[int] = ()) -> None:
        """Show ``row_axis`` down and ``col_axis`` across, the others at ``index`` (tests, scripts)."""
        self.row_combo.setCurrentIndex(row_axis)
        self.col_combo.setCurrentIndex(col_axis)
        self._rebuild_index_boxes()
        for axis, box in zip(self._fixed_axes(), self.index_boxes, strict=True):
            box.blockSignals(True)
            box.setValue(index[axis] if axis < len(index) else 0)
            box.blockSignals(False)
        self._configure()

    def clear(self) -> None:
        self._node = None
        self.model.clear()
        for combo in (self.row_combo, self.col_combo):
            combo.clear()
        self._rebuild_index_boxes()

    def _axes(self) -> tuple[int | None, int | None]:
        assert self._node is not None and self._node.tensor is not None
        ndim = len(self._node.tensor.shape)
        if ndim == 0:
            return None, None
        if ndim == 1:
            return 0, None
        return int(self.row_combo.currentData()), int(self.col_combo.currentData())

    def _fixed_axes(self) -> list[int]:
        if self._node is None or self._node.tensor is None:
            return []
        shown = {a for a in self._axes() if a is not None}
        return [a for a in range(len(self._node.tensor.shape)) if a not in shown]

    def _rebuild_index_boxes(self) -> None:
        while self.index_row.count():
            item = self.index_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.index_boxes = []
        self.index_labels = []
        if self._node is None or self._node.tensor is None:
            return
        shape = self._node.tensor.shape
        for n, axis in enumerate(self._fixed_axes()):
            label = QLabel()
            box = QSpinBox()
            box.setRange(0, max(0, shape[axis] - 1))
            self._name_index_box(axis, shape[axis], label, box)
            box.valueChanged.connect(self._configure)
            row, pair = divmod(n, 2)
            self.index_row.addWidget(label, row, 2 * pair)
            self.index_row.addWidget(box, row, 2 * pair + 1)
            self.index_labels.append(label)
            self.index_boxes.append(box)

    def _on_axes_changed(self) -> None:
        if self._node is None:
            return
        if self.row_combo.currentIndex() == self.col_combo.currentIndex():
            # The same axis twice: move the other picker to the first free axis.
            taken = self.row_combo.currentIndex()
            other = self.col_combo if self.sender() is self.row_combo else self.row_combo
            other.setCurrentIndex(next(a for a in range(self.row_combo.count()) if a != taken))
        self._rebuild_index_boxes()
        self._configure()

    def _configure(self) -> None:
        if self._node is None or self._node.tensor is None:
            return
        info = self._node.tensor
        row_axis, col_axis = self._axes()
        index = [0] * len(info.shape)
        for axis, box in zip(self._fixed_axes(), self.index_boxes, strict=True):
            index[axis] = box.value()
        self.model.configure(self._path, self._node.path, info.shape, info.dtype, row_axis, col_axis, index)

    # -- copying --------------------------------------------------------------------------------

    def selected_block(self) -> tuple[int, int, int, int] | None:
        ranges = self.table.selectionModel().selection()
        if ranges.isEmpty():
            current = self.table.currentIndex()
            if not current.isValid():
                return None
            return current.row(), current.column(), current.row(), current.column()
        spans = [ranges.at(i) for i in range(ranges.count())]
        top = min(r.top() for r in spans)
        left = min(r.left() for r in spans)
        bottom = max(r.bottom() for r in spans)
        right = max(r.right() for r in spans)
        return top, left, bottom, right

    def copy_selection(self, how: str) -> None:
        """Put the selected block on the clipboard as tab-separated text or a NumPy literal."""
        block = self.selected_block()
        if block is None:
            self.status_label.setText(self.tr("Select values to copy."))
            return
        top, left, bottom, right = block
        if (bottom - top + 1) * (right - left + 1) > COPY_MAX_CELLS:
            self.status_label.setText(
                self.tr("Select at most {0} values to copy.").format(format_count(COPY_MAX_CELLS))
            )
            return
        reason = self.model.failure_in(top, left, bottom, right)
        if reason is not None:
            self._pending_copy = None
            self.status_label.setText(self.tr("The selected values could not be read: {0}").format(reason))
            return
        cells = self.model.cells(top, left, bottom, right)
        if cells is None:
            self._pending_copy = how
            self.status_label.setText(self.tr("Reading the selected values…"))
            return
        self._pending_copy = None
        text = cells_as_numpy(cells, self.model.dtype) if how == "numpy" else cells_as_text(cells)
        QGuiApplication.clipboard().setText(text)
        count = (bottom - top + 1) * (right - left + 1)
        self.status_label.setText(self.tr("Copied {0} values.").format(format_count(count)))
        self.copied.emit(text)

    def _on_page_loaded(self) -> None:
        if self._pending_copy is not None and not self.model.pages_pending:
            self.copy_selection(self._pending_copy)

    def _on_page_failed(self, reason: str) -> None:
        """The sentence under the table, where the failed cells read "unreadable"."""
        if self._pending_copy is not None:
            self.copy_selection(self._pending_copy)  # says the selection cannot be read
        else:
            self.status_label.setText(self.tr("Some values could not be read: {0}").format(reason))


class DetailPanel(QWidget):
    """What the engine can tell about the selected tensor; empty for any other row."""

    stats_shown = Signal(object)  # the stats JSON now on screen
    stats_computed = Signal(object, object)  # tensor path (tuple), stats JSON: for the tree's columns
    heatmap_shown = Signal()
    failed = Signal(str)

    def __init__(
        self, engine: EngineBridge | None, parent: QWidget | None = None, clock: Clock = time.monotonic
    ) -> None:
        super().__init__(parent)
        self.setObjectName("detailPanel")
        self._engine = engine
        self._clock = clock
        self._selected_at = 0.0  # the wait for statistics starts at the selection
        self._waited = 0.0
        self._path = ""
        self._node: Node | None = None
        self._generation = 0
        self._jobs = _Jobs()
        self.stats: dict[str, Any] | None = None
        self._select_timer = QTimer(self)
        self._select_timer.setSingleShot(True)
        self._select_timer.setInterval(_SELECT_DELAY_MS)
        self._select_timer.timeout.connect(self._request)

        self.title_label = QLabel()
        self.title_label.setObjectName("detailTitle")
        self.title_label.setTextFormat(Qt.TextFormat.RichText)  # the key inside is escaped
        # A long key without spaces cannot wrap: it is cut at the panel's edge (whole in the tooltip)
        # rather than holding the panel wide.
        self.title_label.setMinimumWidth(120)
        self.title_label.setWordWrap(True)
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel()
        self.status_label.setObjectName("detailStatus")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setWordWrap(True)
        self.stats_box = QGroupBox()
        # Two label/value pairs a row (the plots need the height), one a row in a narrow panel: a
        # number is never cut to fit.
        self._stats_grid = QGridLayout(self.stats_box)
        self._stats_grid.setContentsMargins(8, 4, 8, 4)
        self._stats_grid.setVerticalSpacing(2)
        self._stats_grid.setHorizontalSpacing(10)
        self._stats_pairs = 0
        self.stat_labels: dict[str, QLabel] = {}
        self.stat_names: dict[str, QLabel] = {}
        for name, _label in STAT_ROWS:
            value = QLabel("—")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            name_label = QLabel()
            name_label.setStyleSheet("color: palette(placeholder-text);")
            self.stat_labels[name] = value
            self.stat_names[name] = name_label
        self._arrange_stats(2)

        self.histogram = HistogramPane()
        self.heatmap = HeatmapPane()
        self.values = ValuesView(engine)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detailTabs")
        self.tabs.setUsesScrollButtons(False)  # every tab in sight, however narrow the panel
        self.tabs.addTab(self.histogram, "")
        self.tabs.addTab(self.heatmap, "")
        self.tabs.addTab(self.values, "")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addWidget(self.title_label)
        layout.addWidget(self.status_label)
        layout.addWidget(self.stats_box)
        layout.addWidget(self.tabs, 1)
        self._retranslate()
        self.show_node("", None)

    def _arrange_stats(self, pairs: int) -> None:
        """Lay the statistics out with ``pairs`` label/value pairs a row (1 or 2)."""
        if pairs == self._stats_pairs:
            return
        self._stats_pairs = pairs
        grid = self._stats_grid
        for widget in (*self.stat_names.values(), *self.stat_labels.values()):
            grid.removeWidget(widget)
        for column in range(4):
            grid.setColumnStretch(column, 0)
        for n, (name, _label) in enumerate(STAT_ROWS):
            row, pair = divmod(n, pairs)
            if name == "value_counts":  # a long line of its own
                row, pair = (n + pairs - 1) // pairs, 0
                grid.addWidget(self.stat_names[name], row, 0)
                grid.addWidget(self.stat_labels[name], row, 1, 1, 2 * pairs - 1)
                continue
            grid.addWidget(self.stat_names[name], row, 2 * pair)
            grid.addWidget(self.stat_labels[name], row, 2 * pair + 1)
        for pair in range(pairs):
            grid.setColumnStretch(2 * pair + 1, 1)

    def _fit_stats(self) -> None:
        """Two pairs a row when they fit beside each other, else one."""
        spacing = self._stats_grid.horizontalSpacing()
        pairs = [(self.stat_names[n], self.stat_labels[n]) for n, _ in STAT_ROWS if n != "value_counts"]
        margins = self._stats_grid.contentsMargins()
        box = self.stats_box
        frame = margins.left() + margins.right() + box.width() - box.contentsRect().width()

        def text_width(label: QLabel) -> int:  # a wrapping label's size hint is no measure of its text
            return label.fontMetrics().horizontalAdvance(label.text()) + 1

        def widest(column: list[tuple[QLabel, QLabel]]) -> int:
            names = max(text_width(name) for name, _ in column)
            return names + spacing + max(text_width(value) for _, value in column)

        # The box may always shrink to one pair a row, whatever the two-pair layout would ask for.
        box.setMinimumWidth(widest(pairs) + frame)
        two = widest(pairs[0::2]) + spacing + widest(pairs[1::2]) + frame
        self._arrange_stats(2 if box.width() >= two else 1)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_stats()

    def sizeHint(self) -> QSize:
        """As wide as the panel must be (statistics one pair a row), no wider: beside the tree, the
        keys get the rest; the user may widen the panel for two pairs a row and larger plots."""
        hint = super().sizeHint()
        return QSize(self.minimumSizeHint().width(), hint.height())

    def _retranslate(self) -> None:
        self.stats_box.setTitle(self.tr("Statistics"))
        for name, label in STAT_ROWS:
            self.stat_names[name].setText(QCoreApplication.translate("DetailPanel", label))
        self.stat_names["std"].setToolTip(
            self.tr("The sample standard deviation, as torch.std gives it: divided by n − 1 (finite values)")
        )
        self._show_title()
        if self.stats is not None:
            numel = int(self.stats.get("numel") or 0)
            self.stat_labels["value_counts"].setText(self._stat_text("value_counts", self.stats, numel))
            self._show_stats_texts()
        self.tabs.setTabText(0, self.tr("Histogram"))
        self.tabs.setTabText(1, self.tr("Heatmap"))
        self.tabs.setTabText(2, self.tr("Values"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    @property
    def node(self) -> Node | None:
        return self._node

    @property
    def busy(self) -> bool:
        return self._jobs.any_for(self._generation)

    def show_node(self, path: str, node: Node | None) -> None:
        """Show ``node`` of the file at ``path`` (statistics follow shortly); None clears the panel."""
        self._generation += 1
        self._selected_at = self._clock()
        self._select_timer.stop()
        self._cancel_stale()
        self.values.model.drop_pending()
        self._path, self._node = path, node
        self.stats = None
        for label in self.stat_labels.values():
            label.setText("—")
        self.histogram.clear()
        self.heatmap.clear()
        info = node.tensor if node is not None else None
        whole = whole_tensor(node) if node is not None else None
        enabled = info is not None and info.layout == "strided" and whole is None  # what the engine reads
        self.stats_box.setEnabled(enabled)
        self.tabs.setEnabled(enabled)
        self._show_title()
        if node is None or info is None:
            self.status_label.clear()
            self.values.clear()
            return
        self.tabs.setTabEnabled(1, len(info.shape) == 2)
        if whole is not None and whole.tensor is not None:
            self.status_label.setText(
                self.tr(
                    "“{part}” is part of the {layout} tensor “{whole}”; statistics and values are read "
                    "for plain tensors only."
                ).format(
                    part=escape_text(node.name),
                    layout=escape_text(whole.tensor.layout),
                    whole=escape_text(whole.key),
                )
            )
            self.values.clear()
            return
        if self._engine is None:
            self.status_label.setText(self.tr("The engine is not running, so values cannot be read."))
            return
        if info.layout != "strided":
            self.status_label.setText(
                self.tr("{0} tensors are listed, not read.").format(escape_text(info.layout))
            )
            return
        self.status_label.setText(self.tr("Computing statistics…"))
        self.values.show_tensor(path, node)
        stem = os.path.join(os.path.dirname(path), _file_name(node.key or "tensor"))
        self.histogram.suggested_path = stem + "_histogram.png"
        self.heatmap.suggested_path = stem + "_heatmap.png"
        self._select_timer.start()

    def _show_title(self) -> None:
        """The selected tensor's key, shape, dtype and size; or what to do when none is selected."""
        node = self._node
        info = node.tensor if node is not None else None
        if node is None or info is None:
            prompt = self.tr("Select a tensor to see its statistics and values.")
            self.title_label.setText(html.escape(prompt))
            self.title_label.setToolTip("")
            return
        self.title_label.setToolTip(escape_text(node.key))
        key = html.escape(escape_text(node.key)) if node.key else html.escape(self.tr("(the whole file)"))
        count = self.tr("{0} values").format(format_count(info.numel))
        self.title_label.setText(
            f"<b>{key}</b><br>{format_shape(info.shape)}  ·  {html.escape(escape_text(info.dtype))}  ·  "
            f"{html.escape(count)}  ·  {format_bytes(info.nbytes)}"
        )

    def _cancel_stale(self) -> None:
        """Cancel jobs for earlier selections that have run long; quicker ones are just dropped."""
        for job in self._jobs.stale(self._generation, CANCEL_AFTER_S):
            self._jobs.pop(job)
            job.discard()

    def _request(self) -> None:
        node = self._node
        if node is None or node.tensor is None or whole_tensor(node) is not None or self._engine is None:
            return
        stats = self._engine.submit(StatsRequest(self._path, node.path, node.key), owner=self)
        stats.finished.connect(functools.partial(self._on_stats, stats))
        stats.failed.connect(functools.partial(self._on_failed, stats))
        self._jobs.add(stats, self._generation)
        if len(node.tensor.shape) == 2 and node.tensor.numel:
            page = SliceRequest(
                self._path, node.path, axes=(0, 1), row_count=HEATMAP_MAX, col_count=HEATMAP_MAX
            )
            heatmap = self._engine.submit(page, owner=self)
            heatmap.finished.connect(functools.partial(self._on_heatmap, heatmap))
            heatmap.failed.connect(functools.partial(self._on_failed, heatmap))
            self._jobs.add(heatmap, self._generation)

    def _on_stats(self, job: EngineJob, reply: StatsReply) -> None:
        generation = self._jobs.pop(job)
        self.stats_computed.emit(reply.path, reply.stats)  # still true of that tensor, shown or not
        if generation == self._generation:
            self._show_stats(reply.stats)

    def _on_heatmap(self, job: EngineJob, page: SliceReply) -> None:
        if self._jobs.pop(job) == self._generation:
            self._show_heatmap(page)

    def _on_failed(self, job: EngineJob, failure: Failure) -> None:
        if self._jobs.pop(job) != self._generation:
            return
        message = failure.message or self.tr("The tensor could not be read.")
        self.status_label.setText(message)
        self.failed.emit(message)

    def _show_stats(self, stats: dict[str, Any]) -> None:
        self.stats = stats
        numel = int(stats.get("numel") or 0)
        counted = stats.get("kind") in ("int", "bool")
        self.stat_labels["value_counts"].setVisible(counted)
        self.stat_names["value_counts"].setVisible(counted)
        for name, label in self.stat_labels.items():
            label.setText(self._stat_text(name, stats, numel))
        self._fit_stats()
        self._waited = self._clock() - self._selected_at
        self._show_stats_texts()
        histogram = stats.get("histogram")
        if isinstance(histogram, dict) and histogram.get("counts"):
            self.histogram.set_histogram(histogram.get("edges") or [], histogram.get("counts") or [])
            self._show_stats_texts()
        self.stats_shown.emit(stats)

    def _show_stats_texts(self) -> None:
        """The sentences about the statistics on screen (again after a language change)."""
        stats = self.stats
        if stats is None:
            return
        took = wait_text(self._waited, stats.get("seconds"), self.tr("computing:"))
        note = ""
        if stats.get("computed_on") == "magnitude":
            note = self.tr(" (of the magnitudes |z|)")
        elif stats.get("computed_on"):
            note = self.tr(" (of the raw bytes as {0})").format(escape_text(str(stats["computed_on"])))
        self.status_label.setText(self.tr("Statistics in {0}{1}.").format(took, note))
        finite = int(stats.get("finite") or 0)
        if self.histogram.counts:
            self.histogram.note_label.setText(self.tr("{0} finite values").format(format_count(finite)))

    def _stat_text(self, name: str, stats: dict[str, Any], numel: int) -> str:
        value = stats.get(name)
        if name in ("zeros", "nan", "posinf", "neginf"):
            count = int(value or 0)
            share = f"  ({100 * count / numel:.3g} %)" if numel and count else ""
            return f"{count:,}{share}"
        if name == "value_counts":
            parts: list[str] = []
            if stats.get("true") is not None:
                true, false = int(stats["true"]), int(stats.get("false") or 0)
                parts.append(self.tr("True ×{0}, False ×{1}").format(format_count(true), format_count(false)))
            elif isinstance(value, list):
                shown = [f"{v}: {format_count(int(c))}" for v, c in value[:12]]
                more = len(value) - len(shown)
                parts.append(", ".join(shown) + (self.tr(" … {0} more").format(more) if more > 0 else ""))
            elif stats.get("kind") in ("int", "bool"):
                parts.append(self.tr("too many distinct values to count"))
            return "; ".join(parts) or "—"
        return format_number(value)

    def _show_heatmap(self, page: SliceReply) -> None:
        values = page.values
        if not values or not values[0]:
            return
        rows, cols = page.rows, page.cols
        shown_rows, shown_cols = len(values), len(values[0])
        note = ""
        if shown_rows < rows or shown_cols < cols:
            note = self.tr("first {0} × {1} of {2} × {3}").format(shown_rows, shown_cols, rows, cols)
        self.heatmap.set_values(values, note=note)
        self.heatmap_shown.emit()
