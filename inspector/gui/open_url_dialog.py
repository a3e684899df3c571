"""File ▸ Open URL…: a checkpoint where it lives (``https://``, ``s3://``, ``hf://``), typed or pasted.

The URL is checked as the remote reader checks it (a ``file://`` or malformed URL is a sentence in
the dialog, which stays open); nothing is fetched until the tab opens. A URL on the clipboard is
offered at once.
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text
from inspector.remote.locations import is_url, parse_location


class OpenUrlDialog(QDialog):
    """One line for the URL, the reason it cannot be read, and Open / Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Open URL"))
        self.url_edit = QLineEdit()
        self.url_edit.setObjectName("urlEdit")
        self.url_edit.setPlaceholderText(
            "https://…/model.pth   s3://bucket/key   hf://org/repo/model.safetensors"
        )
        self.url_edit.setMinimumWidth(520)
        clipboard = QGuiApplication.clipboard()
        pasted = clipboard.text().strip() if clipboard is not None else ""
        if pasted and "\n" not in pasted and is_url(pasted):
            self.url_edit.setText(pasted)
        hint = QLabel(
            self.tr(
                "The tree, the safety scan and statistics are read by ranges, without downloading "
                "the file; loading it with torch needs a local copy."
            )
        )
        hint.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("urlError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        self.url_edit.textChanged.connect(lambda _text: self.error_label.hide())
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("Address of a checkpoint (https://, s3://, hf://):")))
        layout.addWidget(self.url_edit)
        layout.addWidget(hint)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def url(self) -> str:
        return self.url_edit.text().strip()

    def _check_and_accept(self) -> None:
        text = self.url()
        try:
            if not is_url(text):
                raise CheckpointError(
                    self.tr("{text} is not a URL; open local files with File ▸ Open.").format(
                        text=text or "“”"
                    )
                )
            parse_location(text)
        except CheckpointError as exc:
            self.error_label.setText(escape_text(exc.message))
            self.error_label.show()
            return
        self.accept()
