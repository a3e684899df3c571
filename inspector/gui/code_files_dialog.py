"""A read-only view of a TorchScript archive's code files: the list, and the selected file's text.

The text comes straight from the zip (``inspector.core.script_code``); nothing is compiled or run.
Reads go through the task runner; a token drops results for a file that is no longer selected.
"""

from __future__ import annotations

import os

import shiboken6
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text, format_bytes
from inspector.core.script_code import CodeFile, list_code_files, read_code_file
from inspector.gui.display_text import escape_lines
from inspector.gui.tasks import TaskRunner

_NameRole = Qt.ItemDataRole.UserRole


class CodeFilesDialog(QDialog):
    """The ``code/*.py`` files of one archive; selecting one shows its text."""

    files_listed = Signal()
    text_shown = Signal(str)  # the name of the file whose text is now shown

    def __init__(self, path: str, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self._runner = runner
        self._token = 0
        self.file_list = QListWidget()
        self.file_list.setObjectName("codeFileList")
        self.text_view = QPlainTextEdit()
        self.text_view.setObjectName("codeText")
        self.text_view.setReadOnly(True)
        self.text_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setWordWrap(True)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.file_list)
        splitter.addWidget(self.text_view)
        splitter.setStretchFactor(1, 3)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.resize(900, 600)
        self.file_list.currentItemChanged.connect(self._on_current_changed)
        self._retranslate()
        self._runner.start(lambda: list_code_files(path), self._on_listed, self._on_failed)

    def _retranslate(self) -> None:
        self.setWindowTitle(
            self.tr("Code files of {name}").format(name=escape_text(os.path.basename(self.path)))
        )

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    def _on_listed(self, files: list[CodeFile]) -> None:
        if not self._alive():
            return
        for code in files:
            item = QListWidgetItem(f"{escape_text(code.name)}  ({format_bytes(code.size)})")
            item.setData(_NameRole, code.name)
            self.file_list.addItem(item)
        self.status_label.setText(
            self.tr("{count} code file(s), shown as text; nothing is run.").format(count=len(files))
        )
        self.files_listed.emit()
        if files:
            self.file_list.setCurrentRow(0)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self._token += 1
        if current is None:
            self.text_view.clear()
            return
        token = self._token
        name = str(current.data(_NameRole))
        self._runner.start(
            lambda: read_code_file(self.path, name),
            lambda text: self._on_text(token, name, text),
            self._on_failed,
        )

    def _on_text(self, token: int, name: str, text: str) -> None:
        if not self._alive() or token != self._token:
            return
        self.text_view.setPlainText(escape_lines(text))  # bidi overrides cannot reorder what is read
        self.text_shown.emit(name)

    def _on_failed(self, exc: Exception) -> None:
        if not self._alive():
            return
        message = exc.message if isinstance(exc, CheckpointError) else self.tr("an unexpected error.")
        self.status_label.setText(
            self.tr("The code files could not be read: {message}").format(message=message)
        )
