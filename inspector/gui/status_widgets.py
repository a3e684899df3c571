"""The busy row (indeterminate progress and Cancel) and the error panel shown above a tab's tree."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.safety import Verdict
from inspector.gui.display_text import escape_lines
from inspector.gui.i18n import QT_TRANSLATE_NOOP


class BusyRow(QWidget):
    """ "Reading x.pth…" with an indeterminate progress bar and a Cancel button."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(220)
        self.progress.setMaximumHeight(14)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        layout.addStretch(1)
        self.hide()

    def show_busy(self, text: str, done: int = 0, total: int = 0) -> None:
        """``text`` beside an indeterminate bar, or one at ``done`` of ``total`` when a total is known."""
        self.label.setText(text)
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(min(1000, done * 1000 // total))
        else:
            self.progress.setRange(0, 0)
        self.show()

    def hide_busy(self) -> None:
        # A hidden indeterminate bar stops its animation timer.
        self.hide()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.cancel_button.setText(self.tr("Cancel"))
        super().changeEvent(event)


class ErrorPanel(QFrame):
    """A sentence about the file, a "Details…" expander with the raw text, and action buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "#errorPanel { background: palette(base); border: 1px solid #d9822b; border-radius: 4px; }"
        )
        self.message_label = QLabel()
        self.message_label.setObjectName("errorMessage")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.details_button = QToolButton()
        self.details_button.setObjectName("errorDetailsButton")
        self.details_button.setText(self.tr("Details…"))
        self.details_button.setCheckable(True)
        self.details_text = QPlainTextEdit()
        self.details_text.setObjectName("errorDetails")
        self.details_text.setReadOnly(True)
        self.details_text.setMaximumHeight(160)
        self.details_text.hide()
        self.details_button.toggled.connect(self.details_text.setVisible)

        self._actions_layout = QHBoxLayout()
        self._actions_layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.message_label, 1)
        top.addLayout(self._actions_layout)
        top.addWidget(self.details_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.details_text)
        self.action_buttons: list[QPushButton] = []
        self.hide()

    def show_error(
        self,
        message: str,
        details: str | None = None,
        actions: list[tuple[str, Callable[[], None]]] | None = None,
    ) -> None:
        self.clear()
        self.message_label.setText(message)
        has_details = bool(details and details.strip() and details.strip() != message)
        self.details_button.setVisible(has_details)
        self.details_text.setPlainText(escape_lines(details or "") if has_details else "")
        for text, callback in actions or []:
            button = QPushButton(text)
            button.clicked.connect(callback)
            self._actions_layout.addWidget(button)
            self.action_buttons.append(button)
        self.show()

    def clear(self) -> None:
        for button in self.action_buttons:
            self._actions_layout.removeWidget(button)
            button.deleteLater()
        self.action_buttons = []
        self.message_label.clear()
        self.details_button.setChecked(False)
        self.details_text.clear()
        self.hide()

    def button(self, text: str) -> QPushButton | None:
        """The action button labelled ``text`` (for tests and keyboard users)."""
        return next((b for b in self.action_buttons if b.text() == text), None)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.details_button.setText(self.tr("Details…"))
        super().changeEvent(event)


_BADGE_STYLES = {
    Verdict.SAFE: "background: #2e7d32; color: #ffffff;",
    Verdict.UNKNOWN: "background: #f9a825; color: #000000;",
    Verdict.DANGEROUS: "background: #c62828; color: #ffffff;",
}

_VERDICT_LABELS = {
    Verdict.SAFE: QT_TRANSLATE_NOOP("VerdictBadge", "Safe"),
    Verdict.UNKNOWN: QT_TRANSLATE_NOOP("VerdictBadge", "Unknown globals"),
    Verdict.DANGEROUS: QT_TRANSLATE_NOOP("VerdictBadge", "Dangerous"),
}


def verdict_label(verdict: Verdict) -> str:
    """The badge text of a scan verdict, in the interface language."""
    return QCoreApplication.translate("VerdictBadge", _VERDICT_LABELS[verdict])


class VerdictBadge(QLabel):
    """The scan verdict of a tab's file: Safe, Unknown globals or Dangerous, coloured."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBadge")
        self.verdict: Verdict | None = None
        self.hide()

    def set_verdict(self, verdict: Verdict, tooltip: str) -> None:
        self.verdict = verdict
        style = _BADGE_STYLES[verdict]
        self.setStyleSheet(
            f"#verdictBadge {{ {style} border-radius: 4px; padding: 1px 8px; font-weight: bold; }}"
        )
        self.setText(verdict_label(verdict))
        self.setToolTip(tooltip)
        self.show()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange and self.verdict is not None:
            self.setText(verdict_label(self.verdict))
        super().changeEvent(event)


class DangerBanner(QFrame):
    """A red banner above the tree: why the file was not handed to torch, and the way to trust it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dangerBanner")
        self.setStyleSheet(
            "#dangerBanner { background: #fdecea; border: 2px solid #c62828; border-radius: 4px; }"
            "#dangerBanner QLabel { color: #7f0000; }"
        )
        self.message_label = QLabel()
        self.message_label.setObjectName("dangerMessage")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.trust_button = QPushButton(self.tr("Trust this file…"))
        self.trust_button.setObjectName("trustFileButton")
        layout = QHBoxLayout(self)
        layout.addWidget(self.message_label, 1)
        layout.addWidget(self.trust_button)
        self.hide()

    def show_message(self, message: str, can_trust: bool) -> None:
        self.message_label.setText(message)
        self.trust_button.setVisible(can_trust)
        self.show()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.trust_button.setText(self.tr("Trust this file…"))
        super().changeEvent(event)
