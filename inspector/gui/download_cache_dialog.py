"""File ▸ Downloaded Checkpoints…: the folder where "Download and load" keeps whole copies of remote
files, how many there are and their size, with Open Folder and Clear (asked first)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from inspector.core.formatting import escape_text, format_bytes
from inspector.remote.download_cache import cache_contents, cache_folder, clear_cache


def ask_before(parent: QWidget, title: str, text: str, name: str, then: Callable[[], object]) -> None:
    """A Yes / Cancel question about the cache folder (Cancel the default); ``then`` runs on Yes."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel
    box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, parent)
    box.setObjectName(name)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.accepted.connect(then)
    box.open()


class DownloadCacheDialog(QDialog):
    """Where downloaded copies are kept; ``refresh`` counts them again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadCacheDialog")
        self.setWindowTitle(self.tr("Downloaded Checkpoints"))
        explain = QLabel(
            self.tr(
                "“Download and load” keeps the whole copy of a remote file here for torch; a copy of the "
                "same URL and version is used again without downloading it. Clearing it loses nothing "
                "that cannot be downloaded again."
            )
        )
        explain.setWordWrap(True)
        self.folder_label = QLabel()
        self.folder_label.setObjectName("cacheFolderLabel")
        self.folder_label.setTextFormat(Qt.TextFormat.PlainText)
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.contents_label = QLabel()
        self.contents_label.setObjectName("cacheContentsLabel")
        self.open_button = QPushButton(self.tr("Open Folder"))
        self.open_button.clicked.connect(self.open_folder)
        self.clear_button = QPushButton(self.tr("Clear…"))
        self.clear_button.setObjectName("clearCacheButton")
        self.clear_button.clicked.connect(self.ask_clear)
        close = QPushButton(self.tr("Close"))
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.contents_label)
        layout.addLayout(buttons)
        self.resize(560, self.sizeHint().height())
        self.refresh()

    def refresh(self) -> None:
        contents = cache_contents()
        self.folder_label.setText(escape_text(str(contents.folder)))
        if contents.count == 0:
            self.contents_label.setText(self.tr("No downloaded copies."))
        else:
            text = (
                self.tr("1 downloaded copy, {size}")
                if contents.count == 1
                else self.tr("{count} downloaded copies, {size} in all")
            )
            self.contents_label.setText(text.format(count=contents.count, size=format_bytes(contents.size)))
        self.clear_button.setEnabled(contents.count > 0)

    def open_folder(self) -> None:
        """Show the folder in the platform's file manager (made first, so there is one to show)."""
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def ask_clear(self) -> None:
        """Ask, then remove every downloaded copy."""
        contents = cache_contents()
        ask_before(
            self,
            self.tr("Clear downloaded checkpoints"),
            self.tr("Remove every downloaded copy ({size}) from {folder}?").format(
                size=format_bytes(contents.size), folder=escape_text(str(contents.folder))
            ),
            "clearCacheQuestion",
            self.clear,
        )

    def clear(self) -> None:
        clear_cache()
        self.refresh()
