""" "Copy code" in the window: beside the allow question and in the tree's menu, the clipboard gets
the code ``scan --explain`` writes for the tab's options, or for a dangerous file the sentence why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from inspector.core.load_options import LoadOptions
from inspector.core.loading_code import loading_code
from inspector.core.peek import peek
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.safety_questions import AllowGlobalsQuestion
from tests import checkpoints

WAIT_MS = 30_000


def test_copy_code_beside_the_allow_question_copies_the_safe_loading_code(
    qtbot: Any, make_window: Callable[..., MainWindow], engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_namespace(tmp_path).path
    window = make_window(engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.load_failed, timeout=WAIT_MS):
        pass
    question = tab.safety_question
    assert isinstance(question, AllowGlobalsQuestion)
    assert question.copy_code_button.text() == "Copy code"
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(question.copy_code_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert "with torch.serialization.safe_globals([argparse.Namespace]):" in copied
    assert f'torch.load("{path}", map_location="cpu", weights_only=True, mmap=True)' in copied
    assert copied == loading_code(peek(path), LoadOptions(map_location="cpu")).code
    assert not question.done  # copying is not an answer: the question stays


def test_a_dangerous_file_copies_the_sentence_not_code(
    qtbot: Any, make_window: Callable[..., MainWindow], engine: EngineBridge, tmp_path: Path
) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1)}, path)
    path.write_bytes(b"\x80\x02cposix\nsystem\n)R.")
    window = make_window(engine)
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    tab.copy_loading_code()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("“evil.pth” references posix.system, which can run code")
    assert "torch.load(" not in copied
