"""A long static read in the window: the busy bar says which stage it is in and how much of its
pickle is read, and Cancel (or closing the tab) stops the read itself, not just its answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek
from inspector.core.read_progress import PICKLE, START, TREE, ReadStopped, report
from inspector.gui.checkpoint_document import DocumentState
from inspector.gui.main_window import MainWindow
from inspector.gui.tasks import TaskRunner
from tests import checkpoints

WAIT_MS = 30_000
MakeWindow = Callable[..., MainWindow]


class SteppedRead:
    """A static read the test moves on stage by stage: it reports as a large file's read does and
    waits for the test between stages; ``stopped`` names the stage where ReadStopped came out."""

    def __init__(self, real: Path) -> None:
        self.real = real
        self.steps = [threading.Event(), threading.Event()]
        self.stopped: list[str] = []

    def __call__(self, path: str) -> CheckpointIndex:
        stage = START
        try:
            report(START)
            stage = PICKLE
            report(PICKLE, 250, 1000)
            self.steps[0].wait(WAIT_MS / 1000)
            report(PICKLE, 1000, 1000)
            stage = TREE
            report(TREE)
            self.steps[1].wait(WAIT_MS / 1000)
            report(TREE, 16_384)
        except ReadStopped:
            self.stopped.append(stage)
            raise
        return peek(self.real)


def _open(make_window: MakeWindow, tmp_path: Path) -> tuple[Any, SteppedRead]:
    read = SteppedRead(checkpoints.build_state_dict(tmp_path).path)
    window = make_window(None, peek_fn=read)
    return window.open_path(str(tmp_path / "big.pth")), read


def test_the_busy_bar_shows_the_stage_and_how_much_of_the_pickle_is_read(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, runner: TaskRunner
) -> None:
    tab, read = _open(make_window, tmp_path)
    bar = tab.busy.progress
    qtbot.waitUntil(lambda: bar.maximum() == 1000 and bar.value() == 250, timeout=WAIT_MS)
    assert tab.busy.label.text() == "Reading big.pth: its pickle…"
    read.steps[0].set()
    qtbot.waitUntil(lambda: "tree" in tab.busy.label.text(), timeout=WAIT_MS)
    assert tab.busy.label.text() == "Reading big.pth: laying out its tree…"
    assert bar.maximum() == 0  # no measure of the rows left: the bar only moves
    read.steps[1].set()
    qtbot.waitUntil(lambda: tab.is_tree_shown, timeout=WAIT_MS)
    assert not tab.is_busy and read.stopped == []


def test_cancel_stops_the_read_at_its_next_report(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, runner: TaskRunner
) -> None:
    tab, read = _open(make_window, tmp_path)
    qtbot.waitUntil(lambda: tab.busy.progress.value() == 250, timeout=WAIT_MS)
    tab.busy.cancel_button.click()
    assert tab.document.state is DocumentState.OPEN_CANCELLED and not tab.is_busy
    read.steps[0].set()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    assert read.stopped == [PICKLE]  # it went no further than the pickle it was reading
    assert tab.error_panel.message_label.text() == "Opening big.pth was cancelled."


def test_closing_the_tab_stops_its_read(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, runner: TaskRunner
) -> None:
    tab, read = _open(make_window, tmp_path)
    qtbot.waitUntil(lambda: tab.busy.progress.value() == 250, timeout=WAIT_MS)
    read.steps[0].set()
    qtbot.waitUntil(lambda: "tree" in tab.busy.label.text(), timeout=WAIT_MS)
    window = tab.window()
    window.close_tab(window.tabs.indexOf(tab))
    read.steps[1].set()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    assert read.stopped == [TREE]
