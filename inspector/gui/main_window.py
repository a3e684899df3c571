"""The main window: tabs of open checkpoints, the load-options bar, menus, drag and drop."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QCoreApplication, QEvent, QObject, QSettings, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QTabBar,
    QTabWidget,
    QToolBar,
    QWidget,
)

from inspector.core.formatting import escape_text
from inspector.core.load_options import LoadOptions, MapLocation
from inspector.core.safety import Verdict
from inspector.gui.checkpoint_tab import CheckpointTab, PeekFunction, default_peek
from inspector.gui.durations import Clock
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.i18n import LANGUAGES, QT_TRANSLATE_NOOP, UiLanguage, language_label
from inspector.gui.load_options_bar import LoadOptionsBar
from inspector.gui.status_widgets import verdict_label
from inspector.gui.tasks import TaskRunner
from inspector.remote.locations import is_url

if TYPE_CHECKING:  # the windows and dialogs a menu opens are imported when first opened
    from inspector.gui.diff_window import DiffWindow
    from inspector.gui.download_cache_dialog import DownloadCacheDialog

APP_NAME = "Checkpoint Inspector"
#: What File ▸ Open lists: every layout the reader knows by a file (folders: Open Folder).
OPEN_PATTERNS = (
    "*.pth", "*.pt", "*.ckpt", "*.bin", "*.tar", "*.safetensors", "*.index.json", "*.jit",
)  # fmt: skip
FILE_FILTER = QT_TRANSLATE_NOOP("MainWindow", "Checkpoints ({patterns});;All files (*)")
SETTINGS_LAST_FOLDER = "recent/folder"
EMPTY_TEXT = QT_TRANSLATE_NOOP("MainWindow", "Open a checkpoint (Ctrl+O) or drop one here")
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
        if not isinstance(value, list):
            return []
        return [str(p) for p in value if p]

    def add(self, path: str) -> None:
        paths = [p for p in self.paths() if p != path]
        self._settings.setValue(RECENT_KEY, [path, *paths][:RECENT_MAX])

    def clear(self) -> None:
        self._settings.setValue(RECENT_KEY, [])


def _normalized(path: str) -> str:
    if is_url(path):
        return path
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


SETTINGS_GEOMETRY = "window/geometry"


class MainWindow(QMainWindow):
    """Routes user actions to tabs; tabs and the bar do the work, the window only wires them."""

    def __init__(
        self,
        settings: QSettings,
        engine: EngineBridge | None = None,
        runner: TaskRunner | None = None,
        peek_fn: PeekFunction = default_peek,
        parent: QWidget | None = None,
        language: UiLanguage | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._settings = settings
        # Without a ``language`` the menu still stores the choice and installs its translators.
        self._language = language if language is not None else UiLanguage(settings, parent=self)
        self._engine = engine
        self._runner = runner if runner is not None else TaskRunner(self)
        self._peek_fn = peek_fn
        self.recent = RecentFiles(settings)
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self._restore_geometry()

        self.options_bar = LoadOptionsBar(settings)
        self.options_bar.options_changed.connect(self._on_options_changed)
        self.options_toolbar = QToolBar()
        self.options_toolbar.setObjectName("loadOptionsToolBar")
        self.options_toolbar.setMovable(False)
        self.options_toolbar.addWidget(self.options_bar)
        self.addToolBar(self.options_toolbar)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("checkpointTabs")
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._update_title)
        self.tabs.currentChanged.connect(self._on_current_tab_changed)
        self.empty_label = QLabel()
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
        """Menus and actions without text: ``_retranslate`` names them, now and on a language change."""
        self.file_menu = self.menuBar().addMenu("")
        file_menu = self.file_menu
        self.open_action = file_menu.addAction("", self.open_dialog)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_folder_action = file_menu.addAction("", self.open_folder_dialog)
        self.open_folder_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_url_action = file_menu.addAction("", self.open_url_dialog)
        self.open_url_action.setShortcut(QKeySequence("Ctrl+Shift+U"))
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        self.close_tab_action = file_menu.addAction("", self.close_current_tab)
        self.close_tab_action.setShortcut(QKeySequence("Ctrl+W"))
        self.export_action = file_menu.addAction("", self.export_current)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.compare_action = file_menu.addAction("", self.compare_dialog)
        self.compare_action.setShortcut(QKeySequence("Ctrl+D"))
        self.downloads_action = file_menu.addAction("", self.show_download_cache)
        file_menu.addSeparator()
        self.quit_action = file_menu.addAction("", self.close)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        self.view_menu = self.menuBar().addMenu("")
        view_menu = self.view_menu
        self.find_action = view_menu.addAction("", self.focus_filter)
        self.find_action.setShortcut(QKeySequence.StandardKey.Find)
        self.expand_all_action = view_menu.addAction("", self.expand_all)
        self.expand_all_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.collapse_all_action = view_menu.addAction("", self.collapse_all)
        self.collapse_all_action.setShortcut(QKeySequence("Ctrl+Shift+L"))
        view_menu.addSeparator()
        self.stats_all_action = view_menu.addAction("", self.compute_all_stats)
        self.stats_all_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.breakdown_action = view_menu.addAction("", self.show_breakdown)
        self.breakdown_action.setShortcut(QKeySequence("Ctrl+B"))
        view_menu.addSeparator()
        self.language_menu = view_menu.addMenu("")
        self.language_menu.setObjectName("languageMenu")
        self.language_group = QActionGroup(self)
        self.language_actions: dict[str, QAction] = {}
        for code, _label in LANGUAGES:
            action = self.language_menu.addAction("")
            action.setCheckable(True)
            action.setChecked(code == self._language.choice())
            action.setData(code)
            action.triggered.connect(lambda _checked=False, c=code: self._on_language_chosen(c))
            self.language_group.addAction(action)
            self.language_actions[code] = action
        self._retranslate()

    def _retranslate(self) -> None:
        """Every text the window sets itself, in the current language."""
        self.file_menu.setTitle(self.tr("&File"))
        self.open_action.setText(self.tr("&Open…"))
        self.open_folder_action.setText(self.tr("Open &Folder…"))
        self.open_url_action.setText(self.tr("Open &URL…"))
        self.recent_menu.setTitle(self.tr("Open &Recent"))
        self.close_tab_action.setText(self.tr("&Close Tab"))
        self.export_action.setText(self.tr("&Export…"))
        self.compare_action.setText(self.tr("Co&mpare…"))
        self.downloads_action.setText(self.tr("&Downloaded Checkpoints…"))
        self.stats_all_action.setText(self.tr("Compute &Statistics for All"))
        self.breakdown_action.setText(self.tr("Training Check&point Breakdown…"))
        self.quit_action.setText(self.tr("&Quit"))
        self.view_menu.setTitle(self.tr("&View"))
        self.expand_all_action.setText(self.tr("&Expand All"))
        self.collapse_all_action.setText(self.tr("&Collapse All"))
        self.find_action.setText(self.tr("&Filter Keys…"))
        self.language_menu.setTitle(self.tr("&Language"))
        for code, action in self.language_actions.items():
            action.setText(language_label(code))
        self.options_toolbar.setWindowTitle(self.tr("Load options"))
        self.empty_label.setText(self.tr(EMPTY_TEXT))
        self._name_close_buttons()
        self._fill_recent_menu()
        self._update_title()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """In a tab's filter box, a menu shortcut (Ctrl+E, Ctrl+D, Ctrl+F …) is the menu's, not one
        of the line edit's Emacs-style keys (end of line, delete, forward)."""
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            pressed = QKeySequence(event.keyCombination())
            if any(action.shortcut() == pressed for action in self._menu_actions()):
                event.ignore()
                return True
        return super().eventFilter(watched, event)

    def _menu_actions(self) -> list[QAction]:
        actions: list[QAction] = []
        for menu in (self.file_menu, self.view_menu):
            actions += [a for a in menu.actions() if not a.shortcut().isEmpty()]
        return actions

    def _name_close_buttons(self) -> None:
        """Qt names each tab's close button when the tab is made, in the language of that moment."""
        bar = self.tabs.tabBar()
        for row in range(self.tabs.count()):
            button = bar.tabButton(row, QTabBar.ButtonPosition.RightSide)
            if button is not None:
                button.setToolTip(QCoreApplication.translate("QTabBar", "Close Tab"))

    def _on_language_chosen(self, code: str) -> None:
        """View ▸ Language: store the choice and switch now (windows retranslate on LanguageChange)."""
        self._language.set_choice(code)
        self.language_actions[self._language.choice()].setChecked(True)
        self.statusBar().showMessage(
            self.tr("Language changed. Messages already shown change the next time they are shown."),
            8000,
        )

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = self.recent_menu.addAction(escape_text(path).replace("&", "&&"))
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if paths:
            self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction(self.tr("Clear"), self._clear_recent)
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

    def last_folder(self) -> str:
        """Where Open and Open Folder start: the folder of the last file or folder opened."""
        folder = str(self._settings.value(SETTINGS_LAST_FOLDER, "") or "")
        return folder if folder and os.path.isdir(folder) else os.path.expanduser("~")

    def open_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog  # (its tables are built once a dialog opens)

        file_filter = self.tr(FILE_FILTER).format(patterns=" ".join(OPEN_PATTERNS))
        paths, _ = QFileDialog.getOpenFileNames(
            self, self.tr("Open checkpoint"), self.last_folder(), file_filter
        )
        self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        """A torch.distributed.checkpoint folder or a folder holding a Hugging Face shard set."""
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, self.tr("Open checkpoint folder"), self.last_folder())
        if folder:
            self.open_path(folder)

    def open_url_dialog(self) -> None:
        """A checkpoint where it lives, read by ranges (``inspector.remote``)."""
        from inspector.gui.open_url_dialog import OpenUrlDialog

        dialog = OpenUrlDialog(self)
        if dialog.exec() == OpenUrlDialog.DialogCode.Accepted:
            self.open_path(dialog.url())

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
        options = self.options_bar.options()  # before the new tab is shown and the bar shows its options
        tab = CheckpointTab(path, self._runner, self._engine, self._peek_fn, clock=self._clock)
        tab.model_card.remember_folding(self._settings)
        tab.filter_edit.installEventFilter(self)  # the menus' shortcuts win over its editing keys
        tab.open(options)
        tab.state_changed.connect(self._update_title)
        tab.map_location_requested.connect(self._on_map_location_requested)
        row = self.tabs.addTab(tab, tab.display_name.replace("&", "&&"))
        self.tabs.setTabToolTip(row, escape_text(tab.shown_path))
        self.tabs.setCurrentIndex(row)
        self.stack.setCurrentWidget(self.tabs)
        if tab.remote:  # listed as shown: without user name, password or query (tokens)
            self.recent.add(tab.shown_path)
            return tab
        self.recent.add(path)
        self._settings.setValue(SETTINGS_LAST_FOLDER, os.path.dirname(path.rstrip(os.sep)) or path)
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
            self.statusBar().showMessage(self.tr("Open a checkpoint first; export works on the current tab."))
            return
        self.export_dialog = ExportDialog(
            tab.index, self._engine, self, clock=self._clock, load_options=tab.load_options
        )
        self.export_dialog.show()

    def compare_dialog(self, path_b: str = "") -> DiffWindow:
        """File ▸ Compare…: the current tab's file as A (if any); B is chosen in the window."""
        from inspector.gui.diff_window import DiffWindow

        tab = self.current_tab()
        path_a = tab.path if tab is not None else ""
        self.diff_window = DiffWindow(
            self._engine, self._runner, path_a, path_b, self._peek_fn, self, clock=self._clock
        )
        self.diff_window.show()
        if path_a and path_b:
            self.diff_window.compare()
        return self.diff_window

    def show_download_cache(self) -> DownloadCacheDialog:
        """File ▸ Downloaded Checkpoints…: the cache folder of Download and load, Open Folder, Clear."""
        from inspector.gui.download_cache_dialog import DownloadCacheDialog

        self.download_cache_dialog = DownloadCacheDialog(self)
        self.download_cache_dialog.show()
        return self.download_cache_dialog

    def compute_all_stats(self) -> None:
        """View ▸ Compute Statistics for All on the current tab (NaN/Inf and norm columns fill in)."""
        tab = self.current_tab()
        if tab is None or not tab.compute_all_stats():
            self.statusBar().showMessage(self.tr("Open a checkpoint first, and wait for the one running."))

    def show_breakdown(self) -> None:
        tab = self.current_tab()
        if tab is None or tab.show_breakdown() is None:
            self.statusBar().showMessage(self.tr("Open a checkpoint first."))

    def collapse_all(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.collapse_all()

    def focus_filter(self) -> None:
        """View ▸ Filter Keys (Ctrl+F): the cursor goes to the current tab's filter box."""
        tab = self.current_tab()
        if tab is not None:
            tab.focus_filter()

    def _update_title(self) -> None:
        for row, each in enumerate(self.tab_widgets()):
            verdict = each.verdict
            self.tabs.setTabIcon(row, self._tab_icon(verdict is Verdict.DANGEROUS, each.has_error))
            scan = (
                "\n" + self.tr("Scan: {verdict}").format(verdict=verdict_label(verdict))
                if verdict is not None
                else ""
            )
            self.tabs.setTabToolTip(row, escape_text(each.shown_path) + scan)
        tab = self.current_tab()
        if tab is not None and tab.is_tree_shown:
            self.setWindowTitle(f"{tab.display_name} — {APP_NAME}")
        else:
            self.setWindowTitle(APP_NAME)

    def _tab_icon(self, dangerous: bool, has_error: bool) -> QIcon:
        """A tab's icon: the style's critical sign for a dangerous file, its warning for an error."""
        if not dangerous and not has_error:
            return QIcon()
        from PySide6.QtWidgets import QStyle  # (its tables are built once a tab shows one of its signs)

        pixmap = (
            QStyle.StandardPixmap.SP_MessageBoxCritical
            if dangerous
            else QStyle.StandardPixmap.SP_MessageBoxWarning
        )
        return self.style().standardIcon(pixmap)

    # -- options and engine ------------------------------------------------------------------

    def _on_options_changed(self, options: LoadOptions) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.reload(options)

    def _on_current_tab_changed(self, _row: int) -> None:
        """The bar shows how the tab now in front was loaded (its own choice, not the last one made)."""
        tab = self.current_tab()
        if tab is not None:
            self.options_bar.show_options(tab.options)

    def _on_map_location_requested(self, loc: MapLocation) -> None:
        # The bar saves the choice and emits options_changed, which reloads the current tab.
        self.options_bar.set_map_location(loc)

    def _on_engine_ready(self, devices: list[str], _torch_version: str) -> None:
        self.options_bar.set_engine_devices(devices)

    # -- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() or is_url(url.toString()) for url in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() if url.isLocalFile() else url.toString() for url in event.mimeData().urls()
                 if url.isLocalFile() or is_url(url.toString())]  # fmt: skip
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _restore_geometry(self) -> None:
        """The size and place of the last window, or most of the screen the first time."""
        saved = self._settings.value(SETTINGS_GEOMETRY)
        if isinstance(saved, (bytes, bytearray, QByteArray)) and self.restoreGeometry(QByteArray(saved)):
            return
        screen = QGuiApplication.primaryScreen()
        avail = screen.availableGeometry() if screen is not None else None
        width = min(1500, int(avail.width() * 0.9)) if avail else 1400
        height = min(940, int(avail.height() * 0.9)) if avail else 860
        self.resize(max(width, 800), max(height, 500))

    def closeEvent(self, event: QCloseEvent) -> None:
        self._settings.setValue(SETTINGS_GEOMETRY, self.saveGeometry())
        for tab in self.tab_widgets():
            tab.close_tab()
        self._runner.shutdown()
        super().closeEvent(event)
