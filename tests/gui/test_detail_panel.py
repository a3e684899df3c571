"""The tensor detail panel with the real engine: statistics, values, plots, and the tree's columns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import QCoreApplication, QEvent, QItemSelection, QItemSelectionModel, QModelIndex, Qt
from PySide6.QtGui import QGuiApplication

from inspector.core.model import Node
from inspector.core.peek import peek
from inspector.engine.protocol import ErrorKind, Failure, JobEvent, Request, SliceRequest
from inspector.gui.detail_panel import PAGE_COLS, PAGE_ROWS, DetailPanel, format_number
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole

WAIT_MS = 120_000  # the worker imports torch first

pytestmark = pytest.mark.slow


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    weights = torch.randn(40, 24)
    weights[3, 4] = float("nan")
    weights[5, 6] = float("inf")
    weights[7, 8] = float("-inf")
    weights[0, :5] = 0.0
    tensors = {
        "embed.weight": weights,
        "cube": torch.arange(4 * 150 * 40, dtype=torch.float32).reshape(4, 150, 40),
        "labels": torch.tensor([0, 1, 1, 2, 2, 2, 7], dtype=torch.int64),
        "mask": torch.tensor([True, False, True, True]),
    }
    path = tmp_path / "sample.pth"
    torch.save({"model": tensors}, path)
    return path, tensors


def _node(path: Path, key: str) -> Node:
    return next(n for n in peek(str(path)).root.tensors() if n.key == key)


def _find(model: Any, key: str) -> QModelIndex:
    flags = Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
    [found] = model.match(model.index(0, 0), ItemRole.KeyRole, key, 1, flags)
    return found


def _panel(qtbot: Any, engine: EngineBridge) -> DetailPanel:
    panel = DetailPanel(engine)
    qtbot.addWidget(panel)
    panel.resize(700, 800)
    panel.show()
    return panel


def test_statistics_match_numpy_and_plots_save_to_png(
    qtbot: Any, real_engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    path, tensors = sample
    panel = _panel(qtbot, real_engine)
    with (
        qtbot.waitSignal(panel.heatmap_shown, timeout=WAIT_MS),
        qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS),
    ):
        panel.show_node(str(path), _node(path, "model.embed.weight"))

    x = tensors["embed.weight"].numpy().astype(np.float64)
    finite = x[np.isfinite(x)]
    expected = {
        "min": finite.min(),
        "max": finite.max(),
        "mean": finite.mean(),
        "std": finite.std(ddof=1),  # torch.std's default
        "abs_mean": np.abs(finite).mean(),
        "l2_norm": math.sqrt(float((finite**2).sum())),
    }
    assert panel.stats is not None
    for name, value in expected.items():
        assert panel.stats[name] == pytest.approx(value, rel=1e-9), name
        assert panel.stat_labels[name].text() == format_number(float(panel.stats[name]))
    assert panel.stat_labels["nan"].text().startswith("1 ")
    assert panel.stat_labels["posinf"].text().startswith("1 ")
    assert panel.stat_labels["neginf"].text().startswith("1 ")
    assert panel.stat_labels["zeros"].text().startswith(f"{int((x == 0).sum())} ")
    assert panel.status_label.text().startswith("Statistics in ")

    counts, _edges = np.histogram(finite, bins=len(panel.histogram.counts))
    assert panel.histogram.counts == counts.tolist()
    hist_png, heat_png = tmp_path / "hist.png", tmp_path / "heat.png"
    panel.histogram.log_box.setChecked(True)
    panel.histogram.save_png(str(hist_png))
    panel.heatmap.save_png(str(heat_png))
    for png in (hist_png, heat_png):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert panel.heatmap.image is not None and panel.heatmap.image.image.shape == (40, 24)


def test_int_and_bool_value_counts(
    qtbot: Any, real_engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = sample
    panel = _panel(qtbot, real_engine)
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
        panel.show_node(str(path), _node(path, "model.labels"))
    assert panel.stat_labels["value_counts"].text() == "0: 1, 1: 2, 2: 3, 7: 1"
    assert panel.stat_labels["min"].text() == "0" and panel.stat_labels["max"].text() == "7"
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
        panel.show_node(str(path), _node(path, "model.mask"))
    assert panel.stat_labels["value_counts"].text() == "True ×3, False ×1"


def test_a_new_selection_drops_the_old_answer(
    qtbot: Any, real_engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = sample
    panel = _panel(qtbot, real_engine)
    computed: list[tuple[Any, ...]] = []
    panel.stats_computed.connect(lambda p, _s: computed.append(p))
    panel.show_node(str(path), _node(path, "model.embed.weight"))
    panel._request()  # send the first request now, as if the debounce had fired
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS) as shown:
        panel.show_node(str(path), _node(path, "model.labels"))
    assert shown.args[0]["key"] == "model.labels"
    qtbot.waitUntil(lambda: not panel._jobs.pending, timeout=WAIT_MS)
    assert panel.stats is not None and panel.stats["key"] == "model.labels"
    assert ("model", "labels") in computed  # the dropped answer may still feed the tree


def test_slice_view_of_a_3d_tensor_pages_and_copies(
    qtbot: Any, real_engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, tensors = sample
    cube = tensors["cube"].numpy()
    panel = _panel(qtbot, real_engine)
    panel.tabs.setCurrentWidget(panel.values)
    panel.show_node(str(path), _node(path, "model.cube"))
    values = panel.values
    model = values.model
    assert (model.rowCount(), model.columnCount()) == (4, 150)  # axes 0 × 1, axis 2 at 0
    assert len(values.index_boxes) == 1

    # Rows = axis 2, columns = axis 0, axis 1 fixed at 137 (a page beyond the first).
    values.set_axes(2, 0, [0, 137, 0])
    assert (model.rowCount(), model.columnCount()) == (40, 4)
    assert model.fixed_index == [0, 137, 0]
    expected = cube[:, 137, :].T
    qtbot.waitUntil(lambda: model.cell(39, 3, fetch=True) is not None, timeout=WAIT_MS)
    for r in (0, 17, 39):
        for c in range(4):
            assert model.data(model.index(r, c)) == f"{expected[r, c]:.6g}"

    # A page far from the start: only that page is read.
    values.set_axes(1, 2, [3, 0, 0])
    assert (model.rowCount(), model.columnCount()) == (150, 40)
    qtbot.waitUntil(lambda: model.cell(PAGE_ROWS + 5, PAGE_COLS + 1) is not None, timeout=WAIT_MS)
    assert model.cell(PAGE_ROWS + 5, PAGE_COLS + 1) == float(cube[3, PAGE_ROWS + 5, PAGE_COLS + 1])
    assert len(model._pages) <= 4  # the page the view shows and the one asked for, not all 8

    top_left = model.index(PAGE_ROWS + 5, PAGE_COLS)
    bottom_right = model.index(PAGE_ROWS + 6, PAGE_COLS + 2)
    values.table.selectionModel().select(
        QItemSelection(top_left, bottom_right), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    with qtbot.waitSignal(values.copied, timeout=WAIT_MS) as copied:
        values.copy_selection("numpy")
    block = cube[3, PAGE_ROWS + 5 : PAGE_ROWS + 7, PAGE_COLS : PAGE_COLS + 3]
    literal = copied.args[0]
    assert literal.startswith("np.array([[") and "dtype=np.float32" in literal
    assert np.array_equal(eval(literal, {"np": np}), block)  # the literal is valid NumPy
    with qtbot.waitSignal(values.copied, timeout=WAIT_MS):
        values.copy_selection("text")
    rows = QGuiApplication.clipboard().text().splitlines()
    assert [[float(v) for v in row.split("\t")] for row in rows] == block.tolist()


def test_tree_columns_fill_from_statistics(qtmodeltester: Any, sample_tree: Node) -> None:
    model = CheckpointTreeModel(sample_tree)
    weight = ("model", "layers.0.weight")
    stats = {"l2_norm": 2.5, "nan": 2, "posinf": 0, "neginf": 1, "has_nan_or_inf": True}
    model.set_tensor_stats({weight: stats, ("model", "layers.1.bias"): {"l2_norm": 1.0, "nan": 0}})
    qtmodeltester.check(model, force_py=True)
    node = model.node_at_path(weight)
    assert node is not None
    index = model.index_of(node)
    assert index.siblingAtColumn(Column.NORM).data() == "2.5"
    assert index.siblingAtColumn(Column.NONFINITE).data() == "NaN ×2, −Inf ×1"
    assert index.siblingAtColumn(Column.NONFINITE).data(ItemRole.SortRole) == 3
    top = model.index(0, Column.NONFINITE, QModelIndex())  # "model" holds one flagged tensor
    assert top.data() == "1 tensor"


def test_selecting_a_tensor_in_the_window_and_statistics_for_all(
    qtbot: Any, make_window: Any, real_engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = sample
    window = make_window(real_engine)
    window.resize(1300, 800)
    window.show()
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: tab.is_tree_shown, timeout=WAIT_MS)
    assert tab.tree.header().isSectionHidden(Column.NORM)
    proxy_index = _find(tab.proxy, "model.embed.weight")
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=WAIT_MS):
        tab.tree.setCurrentIndex(proxy_index)
    assert tab.detail.node is not None and tab.detail.node.key == "model.embed.weight"
    assert not tab.tree.header().isSectionHidden(Column.NORM)  # this tensor's norm is known now
    assert proxy_index.siblingAtColumn(Column.NONFINITE).data() == "NaN ×1, +Inf ×1, −Inf ×1"

    with qtbot.waitSignal(tab.stats_all_finished, timeout=WAIT_MS) as done:
        window.compute_all_stats()
    assert done.args[0].flagged == ("model.embed.weight",)
    assert "1 tensors hold NaN or Inf" in tab.load_label.text()
    cube = _find(tab.proxy, "model.cube")
    expected_norm = float(np.linalg.norm(np.arange(4 * 150 * 40, dtype=np.float64)))
    assert cube.siblingAtColumn(Column.NORM).data() == f"{expected_norm:.4g}"
    assert cube.siblingAtColumn(Column.NONFINITE).data() == "none"


def test_statistics_in_one_tab_do_not_wait_for_a_long_load_in_another(
    qtbot: Any, make_window: Any, engine: EngineBridge, fake_client: dict[str, Any],
    sample: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path,
) -> None:  # fmt: skip
    """Two files open; the engine is still loading them (as with a million-tensor file). Selecting
    a tensor of the second shows its statistics at once, and the loads go on."""
    import threading

    from inspector.engine.protocol import LoadRequest
    from inspector.engine.worker import answer

    path, _ = sample
    big = tmp_path / "big.pth"
    torch.save({f"w{i}": torch.zeros(2) for i in range(50)}, big)
    gate = threading.Event()

    def respond(request: Any, control: Any) -> Any:
        if isinstance(request, LoadRequest):
            gate.wait(WAIT_MS / 1000)
        return answer(request, control)

    fake_client["responder"] = respond
    window = make_window(engine)
    window.show()
    first, tab = window.open_path(str(big)), window.open_path(str(path))
    qtbot.waitUntil(lambda: first.is_tree_shown and tab.is_tree_shown, timeout=WAIT_MS)
    with qtbot.waitSignal(tab.detail.stats_shown, timeout=30_000):  # the loads wait up to 120 s
        tab.tree.setCurrentIndex(_find(tab.proxy, "model.labels"))
    assert tab.detail.node is not None and tab.detail.node.key == "model.labels"
    assert tab.detail.stat_labels["max"].text() == "7"
    assert [t.is_loading for t in (first, tab)] == [True, True]  # both loads still wait
    loads = [r for _, r in engine.client.submitted if isinstance(r, LoadRequest)]  # type: ignore[attr-defined]
    assert len(loads) == 2
    gate.set()
    qtbot.waitUntil(lambda: not engine.running_jobs, timeout=WAIT_MS)


def test_std_is_labelled_as_the_sample_std_torch_gives(
    qtbot: Any, engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, tensors = sample
    panel = _panel(qtbot, engine)
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
        panel.show_node(str(path), _node(path, "model.labels"))
    assert panel.stats is not None and panel.stats["std_correction"] == 1
    assert panel.stats["std"] == pytest.approx(float(tensors["labels"].double().std()))  # torch.std's n − 1
    assert panel.stat_names["std"].text() == "std (n−1)"


def _failing_slices(fake_client: dict[str, Any], reason: str) -> list[SliceRequest]:
    """Make every slice job fail with ``reason``; the slice requests sent are collected in the list."""
    from inspector.engine.worker import answer

    asked: list[SliceRequest] = []

    def responder(request: Request, control: Any) -> JobEvent:
        if isinstance(request, SliceRequest):
            asked.append(request)
            return Failure(control.job, ErrorKind.UNREADABLE, reason)
        return answer(request, control)

    fake_client["responder"] = responder
    return asked


def test_a_page_that_cannot_be_read_says_why_where_its_values_would_be(
    qtbot: Any,
    engine: EngineBridge,
    fake_client: dict[str, Any],
    sample: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    reason = "The bytes of model.cube lie past the end of sample.pth."
    asked = _failing_slices(fake_client, reason)
    path, _ = sample
    panel = _panel(qtbot, engine)
    panel.tabs.setCurrentWidget(panel.values)
    with qtbot.waitSignal(panel.values.model.failed, timeout=WAIT_MS):
        panel.show_node(str(path), _node(path, "model.cube"))
    model = panel.values.model
    cell = model.index(0, 0)
    assert cell.data() == "unreadable"  # not "…", which says the value is on its way
    assert cell.data(Qt.ItemDataRole.ToolTipRole) == reason
    status = panel.values.status_label
    assert status.isVisible() and reason in status.text()  # the sentence itself, on screen
    pages = [r for r in asked if r.row_count == PAGE_ROWS]
    panel.values.table.viewport().repaint()  # the view asks for the cells again
    assert model.index(0, 1).data() == "unreadable"
    assert [r for r in asked if r.row_count == PAGE_ROWS] == pages  # a failed page is not asked again
    panel.values.table.selectAll()
    panel.values.copy_selection("text")
    assert "could not be read" in status.text() and reason in status.text()  # not "Reading…" forever
    panel.resize(
        panel.sizeHint().width(), 700
    )  # as narrow as beside the tree: the sentence and buttons whole
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    assert panel.width() == panel.sizeHint().width()
    for button in (panel.values.copy_text_button, panel.values.copy_numpy_button):
        assert button.width() >= button.sizeHint().width(), button.text()
    assert status.width() >= panel.values.table.width() - 10  # a line of its own, not a sliver


def test_a_part_of_a_sparse_or_nested_tensor_says_what_it_is_part_of(
    qtbot: Any, engine: EngineBridge, tmp_path: Path
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = {
            "coo": torch.eye(3).to_sparse_coo(),
            "nest": torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)]),
        }
    path = tmp_path / "kinds.pt"
    torch.save(values, path)
    root = peek(str(path)).root
    parts = {n.key: n for n in root.walk() if n.parent is not None and n.parent.tensor is not None}
    assert {"coo.indices", "coo.values", "nest.buffer"} <= set(parts)
    panel = _panel(qtbot, engine)
    for key, whole in (
        ("coo.indices", "the sparse_coo tensor “coo”"),
        ("nest.buffer", "the nested tensor “nest”"),
    ):
        panel.show_node(str(path), parts[key])
        panel._request()  # as if the selection had settled
        text = panel.status_label.text()
        assert f"part of {whole}" in text and "plain tensors" in text, text
        assert "no tensor named" not in text
        assert not panel.stats_box.isEnabled() and not panel.tabs.isEnabled()  # nothing to read there
    panel.show_node(str(path), next(n for n in root.tensors() if n.key == "coo"))  # the whole: listed only
    assert "listed, not read" in panel.status_label.text()
    assert not panel.stats_box.isEnabled() and not panel.tabs.isEnabled()
    assert engine.client.submitted == []  # type: ignore[attr-defined]  # nothing asked that cannot be answered


def test_the_panel_asks_only_for_the_width_it_needs(
    qtbot: Any, engine: EngineBridge, sample: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    """Beside the tree the panel wants no more room than it needs, so the keys get the rest; at that
    width every number and every tab is still whole."""
    path, _ = sample
    panel = _panel(qtbot, engine)
    wanted = panel.sizeHint().width()
    assert wanted <= panel.minimumSizeHint().width() + 10
    panel.resize(wanted, 700)
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
        panel.show_node(str(path), _node(path, "model.embed.weight"))
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    for name, label in panel.stat_labels.items():
        if label.isVisible():
            assert label.width() >= label.fontMetrics().horizontalAdvance(label.text()), name
            title = panel.stat_names[name]
            assert title.width() >= title.fontMetrics().horizontalAdvance(title.text()), title.text()
    bar = panel.tabs.tabBar()
    assert all(bar.tabRect(i).right() <= bar.width() for i in range(bar.count()))
