"""Start-up of the window: hand files to a running app, or start the torch worker (before Qt is
imported, so its ``import torch`` runs while the window starts and the file is read), show the
window, then open the given files."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from inspector.engine.protocol import Event, EventCallback
    from inspector.gui.engine_bridge import ClientFactory, EngineBridge, EngineClientLike
    from inspector.gui.main_window import MainWindow
    from inspector.gui.single_instance import InstanceServer

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

    said: list[str] = []

    def on_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if kind == QtMsgType.QtFatalMsg:
            from inspector.terminal import fail

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


class EarlyEngine:
    """The torch worker, started before Qt: the events it sends before the window's bridge exists
    are kept, and handed to the bridge in their order once it does."""

    def __init__(self, client_factory: ClientFactory) -> None:
        self._lock = threading.Lock()
        self._held: list[Event] = []
        self._target: EventCallback | None = None
        self._factory = client_factory
        self.client: EngineClientLike = client_factory(self._deliver)
        self.client.start()

    def _deliver(self, event: Event) -> None:
        with self._lock:
            if self._target is None:
                self._held.append(event)
                return
            target = self._target
        target(event)

    def bridge(self) -> EngineBridge:
        """The window's bridge over this worker (call once, after the QApplication exists)."""
        from inspector.gui.engine_bridge import EngineBridge

        callbacks: list[EventCallback] = []

        def adopt(on_event: EventCallback) -> EngineClientLike:
            if callbacks:  # the bridge's second worker: a client of its own
                return self._factory(on_event)
            callbacks.append(on_event)
            return self.client

        bridge = EngineBridge(adopt)
        with self._lock:  # replayed under the lock so no later event overtakes a held one
            self._target = callbacks[0]
            for event in self._held:
                callbacks[0](event)
            self._held.clear()
        bridge.start()
        return bridge


def real_engine_client(on_event: EventCallback) -> EngineClientLike:
    """The torch worker's client (ImportError for a GUI without the engine)."""
    from inspector.engine.client import EngineClient

    return EngineClient(on_event)


def run_gui(
    paths: list[str],
    argv: Sequence[str] | None = None,
    new_window: bool = False,
    *,
    client_factory: ClientFactory | None = real_engine_client,
    on_window: Callable[[MainWindow], None] | None = None,
) -> int:
    """Open the main window on ``paths`` (each its own tab) and run until it closes.

    Unless ``new_window``, a running app of this user takes ``paths`` as new tabs and this process
    exits at once, without importing Qt or starting a worker where the platform allows. Without a
    display: one sentence on stderr, exit status 2. ``client_factory`` makes the engine's client
    (None: no engine); ``on_window`` is called with the window once it is shown.
    """
    reason = missing_display()
    if reason is not None:
        from inspector.terminal import fail

        return fail(NO_WINDOW.format(reason=reason))
    handed: bool | None = False  # None: only Qt can tell (Windows' named pipes)
    if not new_window:
        from inspector.gui.instance_channel import hand_over

        handed = hand_over(paths)
        if handed:
            return 0
    early: EarlyEngine | None = None
    if client_factory is not None and handed is not None:  # this process shows the window
        try:
            early = EarlyEngine(client_factory)
        except ImportError:  # a GUI without the engine still shows every static tree
            client_factory = None
    # The static reader is imported before Qt: PySide's import hook reads the source of every module
    # imported after it (to see whether it uses PySide), about 0.5 ms for each of the reader's modules.
    import inspector.remote.static_read  # noqa: F401

    try:
        return _run_window(paths, argv, new_window, handed, early, client_factory, on_window)
    finally:
        if early is not None:
            early.client.close()  # nothing to do when the window's bridge has closed it


def _run_window(
    paths: list[str],
    argv: Sequence[str] | None,
    new_window: bool,
    handed: bool | None,
    early: EarlyEngine | None,
    client_factory: ClientFactory | None,
    on_window: Callable[[MainWindow], None] | None,
) -> int:
    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtGui import QFileOpenEvent, QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or _create_application(list(argv if argv is not None else sys.argv))
    assert isinstance(app, QApplication)
    app.setOrganizationName(APP_ORGANIZATION)
    app.setApplicationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    if handed is None:  # where only Qt can tell whether an app runs: ask it, then start the worker
        from inspector.gui.single_instance import hand_over

        if hand_over(paths):
            return 0
        if client_factory is not None:
            try:
                early = EarlyEngine(client_factory)
            except ImportError:
                early = None

    from inspector.gui.i18n import UiLanguage
    from inspector.gui.main_window import MainWindow

    settings = QSettings(APP_ORGANIZATION, APP_NAME)
    # The system locale, or View ▸ Language's choice; installed before any widget has text.
    language = UiLanguage(settings, parent=app)
    language.apply()
    engine = early.bridge() if early is not None else None
    window = MainWindow(settings, engine, language=language)
    window.show()
    if on_window is not None:
        on_window(window)

    def receive(files: list[str]) -> None:
        window.open_paths(files)
        window.showNormal()
        window.raise_()
        window.activateWindow()

    servers: list[InstanceServer] = []

    def after_first_paint() -> None:
        """The window's icon (rendering its SVG), and taking later launches' files: once the first
        tree is painted (or, for a slow or failed read, ``first_paint.AT_THE_LATEST_MS`` has
        passed), so they cost the first paint nothing."""
        if app.windowIcon().isNull():
            from inspector.desktop import ICONS

            app.setWindowIcon(QIcon(str(ICONS / "checkpoint-inspector.svg")))
        if servers or new_window:
            return
        from inspector.gui.single_instance import InstanceServer

        server = InstanceServer(lambda: [tab.path for tab in window.tab_widgets()], app)
        server.files_received.connect(receive)
        server.listen()
        servers.append(server)

    if sys.platform == "darwin":  # elsewhere a filter on the application would only slow every event

        class FileOpenFilter(QObject):
            """macOS hands double-clicked files to a running app as ``QFileOpenEvent``."""

            def eventFilter(self, watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
                    receive([event.file()])
                    return True
                return False

        app.installEventFilter(FileOpenFilter(app))
    window.open_paths(paths)
    first = window.current_tab()
    if first is None:
        QTimer.singleShot(0, after_first_paint)
    else:
        from inspector.gui.first_paint import after_paint

        tab = first
        after_paint(tab.tree.viewport(), after_first_paint, ready=lambda: tab.is_tree_shown)
    try:
        return int(app.exec())
    finally:
        for server in servers:
            server.close()
        if engine is not None:
            engine.close()
