"""File ▸ Compare…: two checkpoints side by side, tensor by tensor, compared in the engine.

The window sends one ``diff`` job (paths A and B) and shows its answer: keys only in A or B,
shape or dtype changes, likely renames, and for common tensors max |a−b|, relative L2 change and
cosine similarity, in a table that sorts on the numbers themselves. When one side's keys carry a
wrapper prefix (``module.``), it says so and offers an export of A with the prefix stripped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from inspector.core.diff import STATUS_LABELS, STATUSES
from inspector.core.formatting import escape_text, format_shape
from inspector.core.model import CheckpointIndex
from inspector.engine.protocol import DiffReply, DiffRequest, Failure, Progress
from inspector.gui.durations import Clock, wait_text
from inspector.gui.engine_bridge import EngineBridge, EngineJob
from inspector.gui.i18n import QT_TRANSLATE_NOOP
from inspector.gui.tasks import TaskRunner

AnyIndex = QModelIndex | QPersistentModelIndex
PeekFunction = Callable[[str], CheckpointIndex]

SORT_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1

#: The labels of ``inspector.core.diff.STATUS_LABELS`` (which names each status) as lupdate must see them
#: to carry their translations (context DiffTableModel); a test checks that each one is translated.
_LABELS_TO_TRANSLATE = (
    QT_TRANSLATE_NOOP("DiffTableModel", "equal"),
    QT_TRANSLATE_NOOP("DiffTableModel", "changed"),
    QT_TRANSLATE_NOOP("DiffTableModel", "dtype changed"),
    QT_TRANSLATE_NOOP("DiffTableModel", "shape changed"),
    QT_TRANSLATE_NOOP("DiffTableModel", "renamed?"),
    QT_TRANSLATE_NOOP("DiffTableModel", "only in A"),
    QT_TRANSLATE_NOOP("DiffTableModel", "only in B"),
    QT_TRANSLATE_NOOP("DiffTableModel", "unreadable"),
)
_STATUS_COLORS = {
    "changed": "#b26a00",
    "dtype": "#b26a00",
    "shape": "#c62828",
    "renamed": "#1565c0",
    "only_a": "#c62828",
    "only_b": "#2e7d32",
    "unreadable": "#c62828",
}

COLUMNS = ("status", "key_a", "key_b", "shape", "dtype", "max_abs_diff", "rel_l2", "cosine")
NUMERIC = frozenset({"max_abs_diff", "rel_l2", "cosine"})


def _number(x: object) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return None


def status_label(status: str) -> str:
    """What the table and the summary call a status: core's label, in the interface language."""
    label = STATUS_LABELS.get(status, status)
    return QCoreApplication.translate("DiffTableModel", label)


def _pair(a: object, b: object, fmt: Callable[[Any], str]) -> str:
    if a is None and b is None:
        return ""
    if a is None or b is None or a == b:
        return fmt(a if a is not None else b)
    return f"{fmt(a)} → {fmt(b)}"


class DiffTableModel(QAbstractTableModel):
    """One row per tensor of the diff; ``SORT_ROLE`` gives raw numbers (missing ones sort first)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        titles = (
            self.tr("Status"), self.tr("Key in A"), self.tr("Key in B"), self.tr("Shape"),
            self.tr("DType"), self.tr("max |a−b|"), self.tr("rel. L2 change"), self.tr("cosine"),
        )  # fmt: skip
        return titles[section] if 0 <= section < len(titles) else None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == SORT_ROLE:
            if column in NUMERIC:
                value = _number(row.get(column))
                return value if value is not None else float("-inf")
            return self._display(row, column).lower()
        if role == STATUS_ROLE:
            return row.get("status")
        if role == Qt.ItemDataRole.ForegroundRole and column == "status":
            color = _STATUS_COLORS.get(str(row.get("status")))
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            message = row.get("message")
            mismatch = row.get("nonfinite_mismatch")
            lines = [escape_text(str(row.get("key_a") or row.get("key_b") or ""))]
            if mismatch:
                lines.append(self.tr("{0} positions are NaN/Inf on one side only").format(mismatch))
            if message:
                lines.append(str(message))
            return "\n".join(lines)
        return None

    def _display(self, row: dict[str, Any], column: str) -> str:
        if column == "status":
            status = str(row.get("status"))
            return status_label(status)
        if column in ("key_a", "key_b"):
            return escape_text(str(row.get(column) or ""))
        if column == "shape":
            return _pair(row.get("shape_a"), row.get("shape_b"), lambda s: format_shape(tuple(s)))
        if column == "dtype":
            return _pair(row.get("dtype_a"), row.get("dtype_b"), str)
        value = row.get(column)
        number = _number(value)
        if number is None:
            return "" if value is None else str(value)
        return f"{number:.6g}"


class DiffFilterProxy(QSortFilterProxyModel):
    """Sorts on ``SORT_ROLE`` and keeps only the rows of one status group (or all)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.statuses: frozenset[str] | None = None

    def set_statuses(self, statuses: frozenset[str] | None) -> None:
        self.beginFilterChange()
        self.statuses = statuses
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        if self.statuses is None:
            return True
        index = self.sourceModel().index(source_row, 0, source_parent)
        return index.data(STATUS_ROLE) in self.statuses


#: (filter label, statuses kept; None keeps all)
FILTERS: tuple[tuple[str, frozenset[str] | None], ...] = (
    (QT_TRANSLATE_NOOP("DiffWindow", "All tensors"), None),
    (QT_TRANSLATE_NOOP("DiffWindow", "Differences only"), frozenset(STATUSES) - {"equal"}),
    (QT_TRANSLATE_NOOP("DiffWindow", "Changed values"), frozenset({"changed", "dtype"})),
    (QT_TRANSLATE_NOOP("DiffWindow", "Shape or dtype changed"), frozenset({"shape", "dtype"})),
    (QT_TRANSLATE_NOOP("DiffWindow", "Only in A"), frozenset({"only_a"})),
    (QT_TRANSLATE_NOOP("DiffWindow", "Only in B"), frozenset({"only_b"})),
    (QT_TRANSLATE_NOOP("DiffWindow", "Renamed?"), frozenset({"renamed"})),
)


class DiffWindow(QWidget):
    """Pick A and B, compare, read the summary and the table; Cancel stops the engine job."""

    finished = Signal(object)  # the DiffReply
    failed = Signal(str)

    def __init__(
        self,
        engine: EngineBridge | None,
        runner: TaskRunner | None = None,
        path_a: str = "",
        path_b: str = "",
        peek_fn: PeekFunction | None = None,
        parent: QWidget | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self._clock = clock
        self._asked_at: float | None = None
        self.setObjectName("diffWindow")
        self.resize(1100, 680)
        self._engine = engine
        self._runner = runner
        self._peek_fn = peek_fn
        self._job: EngineJob | None = None
        self.result: DiffReply | None = None
        self.export_dialog: QWidget | None = None

        self.a_edit = QLineEdit(path_a)
        self.b_edit = QLineEdit(path_b)
        self.a_edit.returnPressed.connect(self.compare)  # Enter in either field compares
        self.b_edit.returnPressed.connect(self.compare)
        self.a_browse = QPushButton()
        self.b_browse = QPushButton()
        self.a_browse.clicked.connect(lambda: self._browse(self.a_edit))
        self.b_browse.clicked.connect(lambda: self._browse(self.b_edit))
        self.swap_button = QPushButton()
        self.swap_button.clicked.connect(self.swap)
        self.compare_button = QPushButton()
        self.compare_button.setDefault(True)
        self.compare_button.clicked.connect(self.compare)
        self.a_label, self.b_label = QLabel(), QLabel()
        paths = QGridLayout()
        paths.addWidget(self.a_label, 0, 0)
        paths.addWidget(self.a_edit, 0, 1)
        paths.addWidget(self.a_browse, 0, 2)
        paths.addWidget(self.swap_button, 0, 3, 2, 1)
        paths.addWidget(self.b_label, 1, 0)
        paths.addWidget(self.b_edit, 1, 1)
        paths.addWidget(self.b_browse, 1, 2)
        paths.addWidget(self.compare_button, 0, 4, 2, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress_label = QLabel()
        self.cancel_button = QPushButton()
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        self.progress_area = QWidget()
        self.progress_area.setLayout(progress_row)
        self.progress_area.hide()

        self.summary_label = QLabel()

        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setObjectName("diffSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.setStyleSheet("font-size: 12pt;")
        self.prefix_label = QLabel()
        self.prefix_label.setTextFormat(Qt.TextFormat.PlainText)
        self.prefix_label.setWordWrap(True)
        self.rename_button = QPushButton()
        self.rename_button.clicked.connect(self.offer_rename)
        prefix_row = QHBoxLayout()
        prefix_row.addWidget(self.prefix_label, 1)
        prefix_row.addWidget(self.rename_button)
        self.prefix_area = QWidget()
        self.prefix_area.setLayout(prefix_row)
        self.prefix_area.setStyleSheet("background: #fff4d6; color: #000;")
        self.prefix_area.hide()

        self.filter_combo = QComboBox()
        self.filter_combo.setObjectName("diffFilter")
        for _label, statuses in FILTERS:
            self.filter_combo.addItem("", statuses)
        self.filter_combo.currentIndexChanged.connect(self._apply_filter)
        self.model = DiffTableModel(self)
        self.proxy = DiffFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("diffTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for column, width in zip(range(len(COLUMNS)), (110, 330, 330, 120, 130, 100, 110, 90), strict=True):
            header.resizeSection(column, width)
        self.filter_label = QLabel()
        filter_row = QHBoxLayout()
        filter_row.addWidget(self.filter_label)
        filter_row.addWidget(self.filter_combo)
        filter_row.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addLayout(paths)
        layout.addWidget(self.progress_area)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.prefix_area)
        layout.addLayout(filter_row)
        layout.addWidget(self.table, 1)

        self._retranslate()

    def _retranslate(self) -> None:
        self.setWindowTitle(self.tr("Compare checkpoints"))
        self.a_label.setText(self.tr("A"))
        self.b_label.setText(self.tr("B"))
        self.a_browse.setText(self.tr("Browse…"))
        self.b_browse.setText(self.tr("Browse…"))
        self.swap_button.setText(self.tr("Swap"))
        self.compare_button.setText(self.tr("Compare"))
        self.cancel_button.setText(self.tr("Cancel"))
        self.filter_label.setText(self.tr("Show"))
        for row, (label, _statuses) in enumerate(FILTERS):
            self.filter_combo.setItemText(row, self.tr(label))
        if self.result is None and self._job is None:
            self.summary_label.setText(self.tr("Choose two checkpoints and press Compare."))
        self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(COLUMNS) - 1)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    @property
    def running(self) -> bool:
        return self._job is not None

    # -- running the diff -------------------------------------------------------------------------

    def compare(self) -> None:
        """Start the engine's diff of A and B (a running one is cancelled first)."""
        a, b = self.a_edit.text().strip(), self.b_edit.text().strip()
        if not a or not b:
            self.summary_label.setText(self.tr("Choose a file for A and for B."))
            return
        missing = [p for p in (a, b) if not os.path.exists(p)]
        if missing:
            self.summary_label.setText(self.tr("“{0}” does not exist.").format(missing[0]))
            return
        if self._engine is None:
            self.summary_label.setText(self.tr("The engine is not running, so nothing can be compared."))
            return
        self.cancel()
        self.result = None
        self.model.set_rows([])
        self.prefix_area.hide()
        self._asked_at = self._clock()
        self._job = self._engine.submit(DiffRequest(a, b), owner=self)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self.progress.setValue(0)
        self.progress_label.setText(self.tr("Comparing…"))
        self.progress_area.show()
        self.compare_button.setEnabled(False)
        self.summary_label.setText(
            self.tr("Comparing {0} with {1}…").format(
                escape_text(os.path.basename(a)), escape_text(os.path.basename(b))
            )
        )

    def cancel(self) -> None:
        """Stop the comparison (the engine stops it between tensors); the window forgets it now."""
        job, self._job = self._job, None
        if job is not None:
            job.discard()
            self.summary_label.setText(self.tr("The comparison was cancelled."))
        self.progress_area.hide()
        self.compare_button.setEnabled(True)

    def swap(self) -> None:
        a, b = self.a_edit.text(), self.b_edit.text()
        self.a_edit.setText(b)
        self.b_edit.setText(a)

    def _on_progress(self, step: Progress) -> None:
        self.progress.setValue(int(1000 * step.fraction))

    def _on_finished(self, reply: DiffReply) -> None:
        self._job = None
        self.progress_area.hide()
        self.compare_button.setEnabled(True)
        self.show_result(reply)

    def _on_failed(self, failure: Failure) -> None:
        self._job = None
        self.progress_area.hide()
        self.compare_button.setEnabled(True)
        message = failure.message or self.tr("The comparison failed.")
        self.summary_label.setText(message)
        self.failed.emit(message)

    def show_result(self, result: DiffReply) -> None:
        """Fill the summary, the prefix note and the table from a comparison's reply."""
        self.result = result
        self.model.set_rows([dict(row) for row in result.tensors])
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        summary = result.summary
        if result.identical:
            summary = self.tr("Identical: {0}").format(summary)
        if self._asked_at is not None:
            took = wait_text(self._clock() - self._asked_at, result.seconds, self.tr("comparing:"))
            summary += self.tr("  ·  compared in {0}").format(took)
        if result.differences:
            why = "; ".join(escape_text(phrase) for phrase in result.differences)
            summary += "\n" + self.tr("Not identical: {0}.").format(why)
        self.summary_label.setText(summary)
        if not result.identical and self.filter_combo.currentIndex() == 0:
            self.filter_combo.setCurrentIndex(1)  # differences first; "All tensors" is one click away
        self._size_columns()
        if result.prefix_note:
            prefix = escape_text(result.prefix_a)
            self.prefix_label.setText(self.tr("Key prefix: {0}.").format(result.prefix_note))
            self.rename_button.setText(
                self.tr("Export A without “{0}”…").format(prefix)
                if prefix
                else self.tr("Export B without “{0}”…").format(escape_text(result.prefix_b))
            )
            self.prefix_area.show()
        self.finished.emit(result)

    def _size_columns(self) -> None:
        """Numbers and short columns to their contents; the two key columns share what is left."""
        header = self.table.horizontalHeader()
        for column, name in enumerate(COLUMNS):
            if name in ("key_a", "key_b"):
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
            else:
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
                self.table.resizeColumnToContents(column)
                header.resizeSection(column, max(header.sectionSize(column), 70) + 12)

    def _apply_filter(self) -> None:
        self.proxy.set_statuses(self.filter_combo.currentData())

    def _browse(self, edit: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Choose a checkpoint"), edit.text(), self.tr("All files (*)")
        )
        if path:
            edit.setText(path)

    # -- the rename offer -------------------------------------------------------------------------

    def rename_plan(self) -> tuple[str, str] | None:
        """(file, prefix to strip) that makes its keys match the other side's, if the diff found one."""
        if self.result is None:
            return None
        if self.result.prefix_a:
            return self.result.a or self.a_edit.text(), self.result.prefix_a
        if self.result.prefix_b:
            return self.result.b or self.b_edit.text(), self.result.prefix_b
        return None

    def offer_rename(self) -> None:
        """Open the export dialog on the prefixed file with "Strip prefixes" already filled in."""
        plan = self.rename_plan()
        if plan is None or self._runner is None:
            return
        path, prefix = plan
        peek = self._peek_fn
        if peek is None:
            from inspector.gui.checkpoint_tab import default_peek

            peek = default_peek
        self._runner.start(
            lambda: peek(path),
            lambda index: self._open_export(index, prefix),
            lambda exc: self.summary_label.setText(str(getattr(exc, "message", exc))),
        )

    def _open_export(self, index: CheckpointIndex, prefix: str) -> None:
        from inspector.gui.export_dialog import ExportDialog

        dialog = ExportDialog(index, self._engine, self)
        dialog.strip_edit.setText(prefix)
        dialog.update_preview()
        self.export_dialog = dialog
        dialog.show()
