"""The training-checkpoint breakdown: bytes by top-level part, optimizer state per parameter.

Everything here comes from the static read (``inspector.core.optimizer_map``): no torch, no engine.
"Export model only…" hands the model part to the export dialog as its subtree.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text, format_bytes, format_shape
from inspector.core.model import CheckpointIndex, Node
from inspector.core.optimizer_map import OptimizerMap, find_model_part, map_optimizers
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.plots import BarChartPane

_MIB = 1024 * 1024


class _NumberItem(QTableWidgetItem):
    """A cell that shows text but sorts by a number."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _NumberItem):
            return self.value < other.value
        return super().__lt__(other)


def top_level_parts(index: CheckpointIndex) -> list[tuple[str, int]]:
    """(name, bytes) of each top-level entry holding tensor data, largest first."""
    parts = []
    for child in index.root.children:
        nbytes = child.tensor.nbytes if child.tensor is not None else child.nbytes
        if nbytes:
            parts.append((child.name or "(tensor)", nbytes))
    return sorted(parts, key=lambda p: -p[1])


class TrainingBreakdown(QDialog):
    """Bar chart of bytes by part, and which parameter each optimizer-state entry belongs to."""

    def __init__(
        self,
        index: CheckpointIndex,
        engine: EngineBridge | None,
        maps: list[OptimizerMap] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trainingBreakdown")
        self.resize(980, 720)
        self._index = index
        self._engine = engine
        self.model_part: Node | None = find_model_part(index)
        self.maps = maps if maps is not None else map_optimizers(index)
        self.export_dialog: QDialog | None = None

        self.chart = BarChartPane()
        parts = top_level_parts(index)
        largest = max((nbytes for _, nbytes in parts), default=0)
        unit, scale = next(
            ((u, s) for u, s in (("GiB", _MIB * 1024), ("MiB", _MIB), ("KiB", 1024)) if largest >= s),
            ("B", 1),
        )
        labels = [escape_text(name) for name, _ in parts]
        self.chart.set_bars(labels, [nbytes / scale for _, nbytes in parts], unit)
        self.chart.note_label.setText(
            "  ·  ".join(f"{labels[n]}: {format_bytes(nbytes)}" for n, (_, nbytes) in enumerate(parts[:6]))
        )
        self.chart.setMinimumHeight(220)
        self.map_label = QLabel()
        self.map_label.setWordWrap(True)
        self.map_label.setTextFormat(Qt.TextFormat.PlainText)
        self.table = QTableWidget(0, 5)
        self.table.setObjectName("optimizerTable")
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.export_button = QPushButton()
        self.export_button.setObjectName("exportModelButton")
        self.export_button.clicked.connect(self.export_model_only)
        self.export_button.setEnabled(self.model_part is not None)
        self.close_button = QPushButton()
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.chart, 2)
        layout.addWidget(self.map_label)
        layout.addWidget(self.table, 3)
        layout.addLayout(buttons)
        self._fill_table()
        self.table.setVisible(bool(self.table.rowCount()))
        self._retranslate()

    def _retranslate(self) -> None:
        self.setWindowTitle(
            self.tr("Training checkpoint — {0}").format(escape_text(os.path.basename(self._index.path)))
        )
        self.chart.title_label.setText(self.tr("Bytes by top-level part"))
        self.table.setHorizontalHeaderLabels(
            [self.tr("Parameter"), self.tr("Shape"), self.tr("Optimizer slot"), self.tr("State bytes"),
             self.tr("State")]
        )  # fmt: skip
        if self.model_part is not None:
            self.export_button.setText(
                self.tr("Export model only (“{0}”)…").format(escape_text(self.model_part.key))
            )
        else:
            self.export_button.setText(self.tr("Export model only…"))
        self.close_button.setText(self.tr("Close"))
        self.map_label.setText(self._map_text())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def _map_text(self) -> str:
        if not self.maps:
            return self.tr("No optimizer state in this file.")
        lines = []
        how = {
            "param_names": self.tr("by the parameter names the optimizer saved"),
            "order": self.tr("by position: param_groups order against the model's parameters"),
            "shape": self.tr("by position and shape (the counts differ)"),
        }
        for m in self.maps:
            matched = sum(1 for p in m.params if p.param_key is not None)
            lines.append(
                self.tr("“{0}”: {1} of {2} parameters matched to “{3}”, {4}.").format(
                    escape_text(m.optimizer_key),
                    matched,
                    len(m.params),
                    escape_text(m.model_key) if m.model_key else self.tr("the file"),
                    how.get(m.method, m.method),
                )
            )
            lines.extend(escape_text(note) for note in m.notes)
        return "\n".join(lines)

    def _fill_table(self) -> None:
        by_key = self._index.tensors_by_key()
        rows = [(m, p) for m in self.maps for p in m.params]
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for row, (_m, p) in enumerate(rows):
            node = by_key.get(p.param_key or "")
            shape = format_shape(node.tensor.shape) if node is not None and node.tensor is not None else ""
            names = ", ".join(escape_text(k.rsplit(".", 1)[-1]) for k in p.state_keys)
            param = escape_text(p.param_key) if p.param_key else self.tr("(not matched)")
            if p.shape_mismatch:
                param += self.tr("  (shape differs!)")
            items = [
                QTableWidgetItem(param),
                QTableWidgetItem(shape),
                QTableWidgetItem(escape_text(p.slot_key) if p.slot_key else self.tr("(no state yet)")),
                _NumberItem(format_bytes(p.state_nbytes), p.state_nbytes),
                QTableWidgetItem(names),
            ]
            for column, item in enumerate(items):
                self.table.setItem(row, column, item)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # file order
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def export_model_only(self) -> None:
        """Open the export dialog with the model part as the subtree (written as a plain state_dict)."""
        from inspector.gui.export_dialog import ExportDialog

        if self.model_part is None:
            return
        dialog = ExportDialog(self._index, self._engine, self)
        dialog.subtree_edit.setText(self.model_part.key)
        stem = os.path.splitext(self._index.path)[0]
        dialog.target_edit.setText(f"{stem}_{self.model_part.key}_only.pth")
        dialog.update_preview()
        self.export_dialog = dialog
        dialog.show()


def tree_notes(maps: list[OptimizerMap]) -> tuple[dict[str, str], dict[str, str]]:
    """(text after a row's name, tooltip line) by key: each optimizer slot names its parameter,
    each parameter lists its optimizer state."""
    names: dict[str, str] = {}
    tooltips: dict[str, str] = {}
    for m in maps:
        for p in m.params:
            if p.param_key is None or p.slot_key is None:
                continue
            param, slot = escape_text(p.param_key), escape_text(p.slot_key)
            names[p.slot_key] = param
            text = QCoreApplication.translate("TrainingBreakdown", "optimizer state of {0}")
            tooltips[p.slot_key] = text.format(param)
            state = ", ".join(escape_text(k.rsplit(".", 1)[-1]) for k in p.state_keys)
            tooltips[p.param_key] = QCoreApplication.translate(
                "TrainingBreakdown", "optimizer state: {0} ({1}, {2})"
            ).format(slot, state, format_bytes(p.state_nbytes))
    return names, tooltips
