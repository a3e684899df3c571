"""The main window: tabs of open checkpoints, the load-options bar, menus, drag and drop."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QToolBar,
    QWidget,
)

from inspector.core.load_options import LoadOptions, MapLocation
from inspector.gui.checkpoint_tab import CheckpointTab, PeekFunction, default_peek
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.load_options_bar import LoadOptionsBar
from inspector.gui.safety import Verdict
from inspector.gui.tasks import TaskRunner

APP_NAME = "Checkpoint Inspector"
FILE_FILTER = "Checkpoints (*.pth *.pt *.ckpt *.bin *.tar);;All files (*)"
EMPTY_TEXT = "Open a checkpoint (Ctrl+O) or drop one here"
RECENT_KEY = "recent/files"
RECENT_MAX = 10


class RecentFiles:
    """The most recently opened paths, newest first, kept in QSettings."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    def paths(self) -> list[str]:
        value = self._settings.value(RECENT_KEY, [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(p) for p in value or [] if p]

    def add(self, path: str) -> None:
        paths = [p for p in self.paths() if p != path]
        self._settings.setValue(RECENT_KEY, [path, *paths][:RECENT_MAX])

    def clear(self) -> None:
        self._settings.setValue(RECENT_KEY, [])


def _normalized(path: str) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


class MainWindow(QMainWindow):
    """Routes user actions to tabs; tabs and the bar do the work, the window only wires them."""

    def __init__(
        self,
        settings: QSettings,
        engine: EngineBridge | None = None,
        runner: TaskRunner | None = None,
        peek_fn: PeekFunction = default_peek,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._engine = engine
        self._runner = runner if runner is not None else TaskRunner(self)
        self._peek_fn = peek_fn
        self.recent = RecentFiles(settings)
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1200, 760)

        self.options_bar = LoadOptionsBar(settings)
        self.options_bar.options_changed.connect(self._on_options_changed)
        toolbar = QToolBar("Load options")
        toolbar.setObjectName("loadOptionsToolBar")
        toolbar.setMovable(False)
        toolbar.addWidget(self.options_bar)
        self.addToolBar(toolbar)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("checkpointTabs")
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._update_title)
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("emptyLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: palette(placeholder-text); font-size: 15pt;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)

        self._build_menus()
        if engine is not None:
            engine.engine_ready.connect(self._on_engine_ready)
            engine.engine_failed.connect(self.statusBar().showMessage)
            if engine.is_ready:
                self.options_bar.set_engine_devices(engine.devices)

    # -- menus -------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = file_menu.addAction("&Open…", self.open_dialog)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        self.close_tab_action = file_menu.addAction("&Close Tab", self.close_current_tab)
        self.close_tab_action.setShortcut(QKeySequence("Ctrl+W"))
        self.export_action = file_menu.addAction("&Export…", self.export_current)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        view_menu = self.menuBar().addMenu("&View")
        self.expand_all_action = view_menu.addAction("&Expand All", self.expand_all)
        self.expand_all_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.collapse_all_action = view_menu.addAction("Co&llapse All", self.collapse_all)
        self.collapse_all_action.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self._fill_recent_menu()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if paths:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear", self._clear_recent)
        clear.setEnabled(bool(paths))

    def _clear_recent(self) -> None:
        self.recent.clear()
        self._fill_recent_menu()

    # -- tabs --------------------------------------------------------------------------------

    def tab_widgets(self) -> list[CheckpointTab]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())]  # type: ignore[misc]

    def current_tab(self) -> CheckpointTab | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, CheckpointTab) else None

    def open_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open checkpoint", "", FILE_FILTER)
        self.open_paths(paths)

    def open_paths(self, paths: list[str]) -> None:
        for path in paths:
            self.open_path(path)

    def open_path(self, path: str) -> CheckpointTab:
        """Open ``path`` in a new tab, or focus the tab that already shows it."""
        path = _normalized(path)
        for tab in self.tab_widgets():
            if tab.path == path:
                self.tabs.setCurrentWidget(tab)
                return tab
        tab = CheckpointTab(path, self._runner, self._engine, self._peek_fn)
        tab.state_changed.connect(self._update_title)
        tab.map_location_requested.connect(self._on_map_location_requested)
        row = self.tabs.addTab(tab, tab.display_name)
        self.tabs.setTabToolTip(row, path)
        self.tabs.setCurrentIndex(row)
        self.stack.setCurrentWidget(self.tabs)
        self.recent.add(path)
        tab.open(self.options_bar.options())
        return tab

    def close_tab(self, row: int) -> None:
        tab = self.tabs.widget(row)
        if isinstance(tab, CheckpointTab):
            tab.close_tab()
        self.tabs.removeTab(row)
        if tab is not None:
            tab.deleteLater()
        if self.tabs.count() == 0:
            self.stack.setCurrentWidget(self.empty_label)
        self._update_title()

    def close_current_tab(self) -> None:
        if self.tabs.count():
            self.close_tab(self.tabs.currentIndex())

    def expand_all(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.expand_all()

    def export_current(self) -> None:
        """File ▸ Export… on the current tab (once its static read is done)."""
        from inspector.gui.export_dialog import ExportDialog

        tab = self.current_tab()
        if tab is None or tab.index is None:
            self.statusBar().showMessage("Open a checkpoint first; export works on the current tab.")
            return
        self.export_dialog = ExportDialog(tab.index, self._engine, self)
        self.export_dialog.show()

    def collapse_all(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.collapse_all()

    def _update_title(self) -> None:
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        danger = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        for row, each in enumerate(self.tab_widgets()):
            verdict = each.verdict
            dangerous = verdict is Verdict.DANGEROUS
            self.tabs.setTabIcon(row, danger if dangerous else warning if each.has_error else QIcon())
            scan = f"\nScan: {verdict.value}" if verdict is not None else ""
            self.tabs.setTabToolTip(row, each.path + scan)
        tab = self.current_tab()
        if tab is not None and tab.is_tree_shown:
            self.setWindowTitle(f"{tab.display_name} — {APP_NAME}")
        else:
            self.setWindowTitle(APP_NAME)

    # -- options and engine ------------------------------------------------------------------

    def _on_options_changed(self, options: LoadOptions) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.reload(options)

    def _on_map_location_requested(self, loc: MapLocation) -> None:
        # The bar saves the choice and emits options_changed, which reloads the current tab.
        self.options_bar.set_map_location(loc)

    def _on_engine_ready(self, devices: list[str], _torch_version: str) -> None:
        self.options_bar.set_engine_devices(devices)

    # -- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        for tab in self.tab_widgets():
            tab.close_tab()
        self._runner.shutdown()
        super().closeEvent(event)
