"""A time on screen is the time the user waited, from the request to the answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from inspector.core.peek import peek
from inspector.gui.detail_panel import DetailPanel
from inspector.gui.diff_window import DiffWindow
from inspector.gui.durations import format_seconds, wait_text
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.export_dialog import ExportDialog
from inspector.gui.main_window import MainWindow
from tests import checkpoints

WAIT_MS = 60_000


class HandClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wait_text_names_the_measured_part_only_when_it_is_much_shorter() -> None:
    assert wait_text(3.94, 0.04, "torch.load itself:") == "3.9 s (torch.load itself: 40 ms)"
    assert wait_text(0.05, 0.04, "torch.load itself:") == "50 ms"
    assert wait_text(2.0, None, "x") == "2.0 s"
    assert format_seconds(0.0153) == "15 ms"


def test_load_time_counts_from_the_open(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    engine: EngineBridge,
    fake_client: dict[str, Any],
    tmp_path: Path,
) -> None:
    clock = HandClock()
    fake_client["hold"] = True
    window = make_window(engine, clock=clock)
    tab = window.open_path(str(checkpoints.build_training(tmp_path).path))
    qtbot.waitUntil(lambda: tab.is_loading, timeout=WAIT_MS)
    clock.now += 3.9  # the worker starting and importing torch
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        engine.client.release()  # type: ignore[attr-defined]
    said = tab.load_label.text()
    assert " in 3.9 s (torch.load itself: " in said and " ms)" in said


def test_statistics_time_counts_from_the_selection(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "w.pth"
    torch.save({"w": torch.randn(8, 8)}, path)
    node = next(n for n in peek(str(path)).root.tensors() if n.key == "w")
    clock = HandClock()
    fake_client["hold"] = True
    panel = DetailPanel(engine, clock=clock)
    qtbot.addWidget(panel)
    panel.show_node(str(path), node)
    qtbot.waitUntil(lambda: panel.busy, timeout=WAIT_MS)
    clock.now += 1.7
    with qtbot.waitSignal(panel.stats_shown, timeout=WAIT_MS):
        engine.client.release()  # type: ignore[attr-defined]
    assert panel.status_label.text().startswith("Statistics in 1.7 s (computing: ")


def test_export_and_compare_times_count_from_the_click(
    qtbot: Any, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    source = checkpoints.build_training(tmp_path).path
    clock = HandClock()
    fake_client["hold"] = True
    dialog = ExportDialog(peek(str(source)), engine, clock=clock)
    qtbot.addWidget(dialog)
    dialog.target_edit.setText(str(tmp_path / "copy.pth"))
    dialog.start_export()
    assert dialog.running and dialog.job is not None
    clock.now += 5.0
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS):
        engine.client.release()  # type: ignore[attr-defined]
    assert " in 5.0 s (writing: " in dialog.report_label.text()

    window = DiffWindow(engine, None, str(source), str(tmp_path / "copy.pth"), clock=clock)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.finished, timeout=WAIT_MS):
        window.compare()
        clock.now += 2.5
    assert "compared in 2.5 s (comparing: " in window.summary_label.text()
