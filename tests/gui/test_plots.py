"""The histogram a user reads: its value axis spans the data shown, whatever was shown before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtGui import QImage

from inspector.core.model import Node
from inspector.core.peek import peek
from inspector.gui.detail_panel import DetailPanel
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.plots import HistogramPane

WAIT_MS = 60_000


def _tick_values(pane: HistogramPane) -> list[float]:
    """The numbers printed under the value axis, as a user reads them."""
    axis = pane.plot_widget.getAxis("bottom")
    low, high = axis.range
    levels = axis.tickValues(low, high, axis.width())
    shown: list[float] = []
    for spacing, values in levels:
        shown += [float(s) for s in axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing)]
    return shown


def _assert_axis_fits(pane: HistogramPane, values: np.ndarray) -> None:
    low, high = float(values.min()), float(values.max())
    span = high - low
    (x_low, x_high), _y = pane.plot_widget.getViewBox().viewRange()
    assert x_low <= low and x_high >= high  # every bin is on screen
    assert x_high - x_low <= 1.2 * span  # and the data fills the axis
    ticks = _tick_values(pane)
    assert len(ticks) >= 2
    assert all(low - span <= t <= high + span for t in ticks), (ticks, low, high)


def _png(pane: HistogramPane, path: Path) -> QImage:
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)  # the size a user sees
    pane.save_png(str(path))
    image = QImage(str(path))
    assert not image.isNull()
    return image


def test_axis_follows_each_histogram_in_a_row(qtbot: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = rng.normal(size=3072)
    narrow = rng.normal(size=32) * 0.0006
    pane = HistogramPane()
    qtbot.addWidget(pane)
    pane.resize(500, 360)
    pane.show()
    images = []
    for n, values in enumerate((wide, narrow, wide, narrow, wide)):
        counts, edges = np.histogram(values, bins=64)
        pane.set_histogram(edges.tolist(), counts.tolist())
        qtbot.waitExposed(pane)
        _assert_axis_fits(pane, values)
        assert pane.save_button.isEnabled()
        if values is wide:
            images.append(_png(pane, tmp_path / f"{n}.png"))
    assert images[0] == images[1] == images[2]  # the same data saves the same picture


def test_log_count_axis_spans_the_counts(qtbot: Any) -> None:
    pane = HistogramPane()
    qtbot.addWidget(pane)
    pane.show()
    pane.set_histogram([0.0, 1.0, 2.0, 3.0], [1, 0, 1000])
    pane.log_box.setChecked(True)
    _x, (y_low, y_high) = pane.plot_widget.getViewBox().viewRange()
    assert y_low <= 0.0 and 3.0 <= y_high <= 4.0  # log10 of 1 … 1000
    pane.log_box.setChecked(False)
    _x, (y_low, y_high) = pane.plot_widget.getViewBox().viewRange()
    assert y_low <= 0.0 and 1000 <= y_high <= 1200


@pytest.fixture
def two_scales(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "two_scales.pth"
    torch.save(
        {"embed.weight": torch.randn(96, 32) * 1.4, "norm.bias": torch.randn(32) * 0.0006},
        path,
    )
    return path


def _node(index: Any, key: str) -> Node:
    return next(n for n in index.root.tensors() if n.key == key)


def test_panel_selections_in_a_row_keep_axis_and_save_true(
    qtbot: Any, engine: EngineBridge, two_scales: Path, tmp_path: Path
) -> None:
    index = peek(str(two_scales))
    data = torch.load(two_scales, weights_only=True)
    panel = DetailPanel(engine)
    qtbot.addWidget(panel)
    panel.resize(520, 760)
    panel.show()
    images, ticks = [], []
    for n, key in enumerate(("embed.weight", "norm.bias", "embed.weight", "norm.bias", "embed.weight")):
        with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
            panel.show_node(str(two_scales), _node(index, key))
        values = data[key].numpy().astype(np.float64)
        assert panel.stat_labels["min"].text() == f"{values.min():.6g}"
        _assert_axis_fits(panel.histogram, values)
        assert panel.histogram.save_button.isEnabled()
        assert panel.histogram.suggested_path == str(tmp_path / f"{key}_histogram.png")  # beside the file
        if key == "embed.weight":
            ticks.append(_tick_values(panel.histogram))
            images.append(_png(panel.histogram, tmp_path / f"{n}.png"))
    assert ticks[0] == ticks[1] == ticks[2]
    assert images[1] == images[2]  # once laid out, the same data saves the same picture
    panel.show_node(str(two_scales), None)  # a row that is not a tensor: no axes of the last one
    assert not panel.histogram.plot_widget.isVisible() and not panel.histogram.save_button.isEnabled()
