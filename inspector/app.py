"""Start-up of the window: hand files to a running app, or show the window, then start the torch
worker, then open the given files."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

APP_ORGANIZATION = "CheckpointInspector"
APP_NAME = "Checkpoint Inspector"
APP_ID = "io.github.checkpointinspector.CheckpointInspector"

NO_WINDOW = (
    "Checkpoint Inspector cannot open its window: {reason}. In a terminal, use "
    "`checkpoint-inspector info FILE` or `checkpoint-inspector scan FILE` "
    "(see `checkpoint-inspector --help`)."
)


def missing_display(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """Why no window can open here (Qt would abort the process), or ``None`` when one can.

    Only X11 and Wayland systems need a display named in the environment; a headless Qt platform
    (``QT_QPA_PLATFORM=offscreen``, ``vnc`` …) or one this check does not know is left to Qt.
    """
    if platform in ("win32", "darwin"):
        return None
    x11, wayland = bool(environ.get("DISPLAY")), bool(environ.get("WAYLAND_DISPLAY"))
    wanted = [p.split(":", 1)[0].strip() for p in environ.get("QT_QPA_PLATFORM", "").split(";")]
    wanted = [p for p in wanted if p] or ["xcb", "wayland"]
    for name in wanted:
        needs_display = name == "xcb" or name.startswith("wayland")
        if not needs_display or (name == "xcb" and x11) or (name.startswith("wayland") and wayland):
            return None
    return "there is no display (DISPLAY and WAYLAND_DISPLAY are not set)"


def _create_application(argv: list[str]) -> QApplication:
    """The QApplication; when Qt finds no platform it can start, a sentence and exit 2, not an abort."""
    from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from inspector.terminal import fail

    said: list[str] = []

    def on_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if kind == QtMsgType.QtFatalMsg:
            qt_said = "; ".join(m.strip().rstrip(".") for m in said if m.strip())
            fail(NO_WINDOW.format(reason=f"Qt could not start a display ({qt_said or message.strip()})"))
            sys.stderr.flush()
            os._exit(2)  # Qt aborts the process when this returns
        said.append(message)

    previous = qInstallMessageHandler(on_message)
    try:
        app = QApplication(argv)
    finally:
        qInstallMessageHandler(previous)
    for message in said:  # what Qt's own handler would have printed meanwhile
        print(message, file=sys.stderr)
    return app


def run_gui(paths: list[str], argv: Sequence[str] | None = None, new_window: bool = False) -> int:
    """Open the main window on ``paths`` (each its own tab) and run until it closes.

    Unless ``new_window``, a running app of this user takes ``paths`` as new tabs and this
    process exits at once. Without a display: one sentence on stderr, exit status 2.
    """
    reason = missing_display()
    if reason is not None:
        from inspector.terminal import fail

        return fail(NO_WINDOW.format(reason=reason))
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtGui import QFileOpenEvent, QIcon
    from PySide6.QtWidgets import QApplication

    from inspector.gui.single_instance import InstanceServer, hand_over

    app = QApplication.instance() or _create_application(list(argv if argv is not None else sys.argv))
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
