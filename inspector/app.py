"""Start-up of the window: hand files to a running app, or show the window, then start the torch
worker, then open the given files."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QEvent, QObject

APP_ORGANIZATION = "CheckpointInspector"
APP_NAME = "Checkpoint Inspector"
APP_ID = "io.github.checkpointinspector.CheckpointInspector"


def run_gui(paths: list[str], argv: Sequence[str] | None = None, new_window: bool = False) -> int:
    """Open the main window on ``paths`` (each its own tab) and run until it closes.

    Unless ``new_window``, a running app of this user takes ``paths`` as new tabs and this
    process exits at once.
    """
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtGui import QFileOpenEvent, QIcon
    from PySide6.QtWidgets import QApplication

    from inspector.gui.single_instance import InstanceServer, hand_over

    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv))
    assert isinstance(app, QApplication)
    app.setOrganizationName(APP_ORGANIZATION)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    if not new_window and hand_over(paths):
        return 0

    from inspector.desktop import ICONS
    from inspector.gui.engine_bridge import EngineBridge
    from inspector.gui.i18n import UiLanguage
    from inspector.gui.main_window import MainWindow

    app.setWindowIcon(QIcon(str(ICONS / "checkpoint-inspector.svg")))
    settings = QSettings(APP_ORGANIZATION, APP_NAME)
    # The system locale, or View ▸ Language's choice; installed before any widget has text.
    language = UiLanguage(settings, parent=app)
    language.apply()
    engine: EngineBridge | None
    try:
        from inspector.engine.client import EngineClient
    except ImportError:  # a GUI without the engine still shows every static tree
        engine = None
    else:
        engine = EngineBridge(EngineClient)

    window = MainWindow(settings, engine, language=language)
    window.show()

    def receive(files: list[str]) -> None:
        window.open_paths(files)
        window.showNormal()
        window.raise_()
        window.activateWindow()

    server = None
    if not new_window:
        server = InstanceServer(lambda: [tab.path for tab in window.tab_widgets()], app)
        server.files_received.connect(receive)
        server.listen()

    class FileOpenFilter(QObject):
        """macOS hands double-clicked files to a running app as ``QFileOpenEvent``."""

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
                receive([event.file()])
                return True
            return False

    file_open_filter = FileOpenFilter(app)
    app.installEventFilter(file_open_filter)
    if engine is not None:
        # The worker imports torch in its own process; starting it after show() keeps the
        # window's first paint ahead of the spawn.
        QTimer.singleShot(0, engine.start)
    window.open_paths(paths)
    try:
        return int(app.exec())
    finally:
        if server is not None:
            server.close()
        if engine is not None:
            engine.close()
