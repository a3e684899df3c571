"""Histogram, heatmap and bar chart widgets over pyqtgraph, which is imported on first use.

pyqtgraph (and the numpy it needs) costs a few hundred milliseconds to import, so nothing here
imports it until a plot is first shown: the window starts without it. Every plot can be saved as
a PNG (``save_png``), which is also how tests check that a plot was drawn offscreen.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

_BAR_BRUSH = (52, 101, 164, 170)
_BAR_PEN = (32, 74, 135)


def pyqtgraph() -> Any:
    """The pyqtgraph module, configured once for this app (light plots, PySide6 binding)."""
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    import pyqtgraph as pg

    if not getattr(pg, "_checkpoint_inspector_configured", False):
        pg.setConfigOptions(background="w", foreground="k", antialias=True, imageAxisOrder="row-major")
        pg._checkpoint_inspector_configured = True
    return pg


_PLAIN_AXIS: Any = None


def _no_si_prefix(axis: Any) -> None:
    axis.autoSIPrefixScale = 1.0
    axis.labelUnitPrefix = ""
    axis._updateLabel()


def plain_axis(orientation: str) -> Any:
    """An axis that prints values as they are, never scaled by an SI prefix.

    pyqtgraph keeps the SI scale it computed for an earlier range even with auto prefixes off, so
    after a plot of values near 0.0006 the axis of values near 4 read 4000; this one has no scale.
    """
    global _PLAIN_AXIS
    if _PLAIN_AXIS is None:
        _PLAIN_AXIS = type("PlainAxis", (pyqtgraph().AxisItem,), {"updateAutoSIPrefix": _no_si_prefix})
    axis = _PLAIN_AXIS(orientation)
    axis.enableAutoSIPrefix(False)
    return axis


def _number(x: object) -> float:
    """A JSON number or the strings "nan"/"inf"/"-inf" as a float."""
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return math.nan


class PlotPane(QWidget):
    """A title row (with extra controls and "Save PNG…") above one lazily created plot widget."""

    saved = Signal(str)  # the PNG's path

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title_label = QLabel(title)
        self.title_label.setStyleSheet("font-weight: bold;")
        self.note_label = QLabel()
        self.note_label.setStyleSheet("color: palette(placeholder-text);")
        # A long note is cut, not allowed to widen the panel: the plot's width is worth more.
        self.note_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.note_label.setMinimumWidth(20)
        self.save_button = QPushButton()
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._ask_save)
        self.save_button.setMinimumWidth(64)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.controls.addWidget(self.title_label)
        self.controls.addWidget(self.note_label, 1)
        self.controls.addWidget(self.save_button)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addLayout(self.controls)
        self.plot_widget: Any = None  # a pyqtgraph PlotWidget, made on first use
        self._title = title
        #: Where "Save PNG…" proposes to write (the panel names it after the tensor shown).
        self.suggested_path = "plot.png"
        PlotPane._retranslate(self)

    def _retranslate(self) -> None:
        """The pane's fixed texts in the interface language (subclasses add theirs)."""
        self.save_button.setText(QCoreApplication.translate("PlotPane", "Save PNG…"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def _plot(self) -> Any:
        if self.plot_widget is None:
            pg = pyqtgraph()
            axes = {"bottom": plain_axis("bottom"), "left": plain_axis("left")}
            self.plot_widget = pg.PlotWidget(axisItems=axes)
            self.plot_widget.setMinimumHeight(150)
            self.plot_widget.setMinimumWidth(120)
            self.plot_widget.setMenuEnabled(False)
            self._layout.addWidget(self.plot_widget, 1)
        return self.plot_widget

    def _shown(self) -> None:
        """Data is on screen: it can be saved."""
        self.plot_widget.show()
        self.save_button.setEnabled(True)

    def clear(self) -> None:
        """No data: no plot at all (empty axes would still read as the last tensor's range)."""
        if self.plot_widget is not None:
            self.plot_widget.clear()
            self.plot_widget.hide()
        self.note_label.clear()
        self.save_button.setEnabled(False)

    def save_png(self, path: str, width: int = 1000) -> None:
        """Write the plot as a PNG ``width`` pixels wide."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self._plot().getPlotItem())
        exporter.parameters()["width"] = width
        exporter.export(path)
        self.saved.emit(path)

    def _ask_save(self) -> None:
        from PySide6.QtWidgets import QFileDialog  # (its tables are built once a dialog opens)

        path, _ = QFileDialog.getSaveFileName(self, self.tr("Save plot"), self.suggested_path, "PNG (*.png)")
        if path:
            self.save_png(path if path.lower().endswith(".png") else path + ".png")


class HistogramPane(PlotPane):
    """Counts of finite values in equal bins (from the engine's stats), with a log-count toggle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.title_label.hide()  # the panel's tab says it
        self.log_box = QCheckBox()
        self.log_box.toggled.connect(self._apply_log)
        self.controls.insertWidget(2, self.log_box)
        self.edges: list[float] = []
        self.counts: list[int] = []
        self._retranslate()

    def _retranslate(self) -> None:
        super()._retranslate()
        self.title_label.setText(self.tr("Histogram"))
        self.log_box.setText(self.tr("Log count"))
        if self.plot_widget is not None:
            self.plot_widget.setLabel("bottom", self.tr("value"))
            self.plot_widget.setLabel("left", self.tr("count"))

    def set_histogram(self, edges: Sequence[object], counts: Sequence[int], note: str = "") -> None:
        import numpy as np

        self.edges = [_number(e) for e in edges]
        self.counts = [int(c) for c in counts]
        plot = self._plot()
        plot.clear()
        x = np.asarray(self.edges, dtype=float)
        y = np.asarray(self.counts, dtype=float)
        pg = pyqtgraph()
        item = pg.PlotDataItem(x, y, stepMode="center", fillLevel=0, brush=_BAR_BRUSH, pen=_BAR_PEN)
        plot.addItem(item)
        plot.setLabel("bottom", self.tr("value"))
        plot.setLabel("left", self.tr("count"))
        self.note_label.setText(note)
        self._apply_log(self.log_box.isChecked())
        self._shown()

    def _apply_log(self, on: bool) -> None:
        """Show the counts linearly or on a log scale; the view spans exactly the bins and counts."""
        if self.plot_widget is None or len(self.edges) < 2:
            return
        for item in self.plot_widget.getPlotItem().listDataItems():
            item.setFillLevel(None if on else 0)  # log(0) has no place to fill to
        self.plot_widget.setLogMode(False, on)
        low, high = self.edges[0], self.edges[-1]
        finite = [e for e in (low, high) if math.isfinite(e)]
        if len(finite) == 2 and high > low:
            self.plot_widget.setXRange(low, high, padding=0.02)
        top = max(self.counts, default=0)
        if on:
            self.plot_widget.setYRange(0.0, math.log10(max(top, 1)) * 1.05 + 0.05, padding=0)
        else:
            self.plot_widget.setYRange(0.0, max(top, 1) * 1.05, padding=0)


class HeatmapPane(PlotPane):
    """A 2-D block of values as an image with a colour bar (rows down, columns across)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.title_label.hide()  # the panel's tab says it
        self.image: Any = None
        self._bar: Any = None
        self._retranslate()

    def _retranslate(self) -> None:
        super()._retranslate()
        self.title_label.setText(self.tr("Heatmap"))
        if self.plot_widget is not None:
            self.plot_widget.setLabel("bottom", self.tr("column"))
            self.plot_widget.setLabel("left", self.tr("row"))

    def set_values(
        self, values: Sequence[Sequence[object]], row_start: int = 0, col_start: int = 0, note: str = ""
    ) -> None:
        import numpy as np

        data = np.array([[_number(v) for v in row] for row in values], dtype=float)
        if data.ndim != 2 or not data.size:
            self.clear()
            return
        finite = data[np.isfinite(data)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if high <= low:
            high = low + 1.0
        data = np.where(np.isfinite(data), data, low)
        pg = pyqtgraph()
        plot = self._plot()
        plot.clear()
        if self._bar is not None:
            plot.getPlotItem().layout.removeItem(self._bar)
            self._bar.setParentItem(None)
            self._bar = None
        self.image = pg.ImageItem(data)
        self.image.setRect(col_start, row_start, data.shape[1], data.shape[0])
        plot.addItem(self.image)
        plot.getPlotItem().invertY(True)
        plot.setAspectLocked(False)
        plot.setLabel("bottom", self.tr("column"))
        plot.setLabel("left", self.tr("row"))
        viridis = pg.colormap.get("viridis")
        self._bar = pg.ColorBarItem(values=(low, high), colorMap=viridis, interactive=False)
        self._bar.setImageItem(self.image, insert_in=plot.getPlotItem())
        plot.autoRange()
        self.note_label.setText(note)
        self._shown()


class BarChartPane(PlotPane):
    """Horizontal-label bar chart: one bar per named part (bytes by top-level part)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.labels: list[str] = []
        self.values: list[float] = []

    def set_bars(self, labels: Sequence[str], values: Sequence[float], axis_label: str = "") -> None:
        pg = pyqtgraph()
        self.labels = list(labels)
        self.values = [float(v) for v in values]
        plot = self._plot()
        plot.clear()
        bars = pg.BarGraphItem(
            x=list(range(len(self.values))), height=self.values, width=0.7, brush=_BAR_BRUSH, pen=_BAR_PEN
        )
        plot.addItem(bars)
        plot.getAxis("bottom").setTicks([list(enumerate(self.labels))])
        plot.setLabel("left", axis_label)
        plot.getPlotItem().setMouseEnabled(x=False, y=False)
        plot.autoRange()
        self._shown()
