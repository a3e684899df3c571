"""Start-up of the window: show it first, then start the torch worker, then open the given files."""

from __future__ import annotations

import sys
from collections.abc import Sequence

APP_ORGANIZATION = "CheckpointInspector"
APP_NAME = "Checkpoint Inspector"


def run_gui(paths: list[str], argv: Sequence[str] | None = None) -> int:
    """Open the main window on ``paths`` (each its own tab) and run until it closes."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.gui.engine_bridge import EngineBridge
    from inspector.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    app.setOrganizationName(APP_ORGANIZATION)
    app.setApplicationName(APP_NAME)
    settings = QSettings(APP_ORGANIZATION, APP_NAME)

    engine: EngineBridge | None
    try:
        from inspector.engine.client import EngineClient
    except ImportError:  # a GUI without the engine still shows every static tree
        engine = None
    else:
        engine = EngineBridge(EngineClient)

    window = MainWindow(settings, engine)
    window.show()
    if engine is not None:
        # The worker imports torch in its own process; starting it after show() keeps the
        # window's first paint ahead of the spawn.
        QTimer.singleShot(0, engine.start)
    window.open_paths(paths)
    try:
        return int(app.exec())
    finally:
        if engine is not None:
            engine.close()
