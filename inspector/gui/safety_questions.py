"""The two questions a tab asks, inside itself, before loading more than plain tensors from a file.

``AllowGlobalsQuestion``: weights-only loading refused globals; allow exactly those, or trust the file.
``TrustFileQuestion``: the warning before ``weights_only=False``, naming what the pickle will run.
Each is a panel in the file's own tab, so the rest of the window (other tabs among it) stays usable
while it waits. Both only answer, once, by ``answered``; the tab's document decides what to load.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text
from inspector.core.model import GlobalClass
from inspector.gui.i18n import QT_TRANSLATE_NOOP

if TYPE_CHECKING:
    from PySide6.QtWidgets import QStyle

#: The answers a question gives (``answered``'s argument).
ALLOW = "allow"
TRUST = "trust"
CANCEL = ""

_CLASS_TEXT = {
    GlobalClass.DANGEROUS: QT_TRANSLATE_NOOP(
        "TrustFileQuestion", "dangerous: can run commands, touch files or reach the network"
    ),
    GlobalClass.UNKNOWN: QT_TRANSLATE_NOOP(
        "TrustFileQuestion", "unknown: imported and called as the file says"
    ),
    GlobalClass.ALLOWED: QT_TRANSLATE_NOOP("TrustFileQuestion", "allowed by weights-only loading"),
}


def _global_list(items: list[tuple[str, GlobalClass]]) -> str:
    rows = []
    for name, verdict in items:
        colour = "#b00020" if verdict is GlobalClass.DANGEROUS else "palette(text)"
        what = QCoreApplication.translate("TrustFileQuestion", _CLASS_TEXT[verdict])
        shown = html.escape(escape_text(name))
        rows.append(f"<li><code style='color:{colour}'>{shown}</code> — {what}</li>")
    return "<ul style='margin-left:-20px'>" + "".join(rows) + "</ul>"


class _Question(QFrame):
    """A framed question with an icon, a heading, rich text and buttons; answers once."""

    answered = Signal(str)  # ALLOW, TRUST or CANCEL

    def __init__(
        self, object_name: str, colour: str, icon: QStyle.StandardPixmap, parent: QWidget | None
    ) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            f"#{object_name} {{ background: palette(base); border: 2px solid {colour}; border-radius: 4px; }}"
        )
        self.done = False
        self.heading = QLabel()
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.heading.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.clicked.connect(self.reject)
        self._safe: QPushButton = self.cancel_button  # the choice that runs nothing from the file
        self.icon = QLabel()
        self.icon.setPixmap(self.style().standardIcon(icon).pixmap(32, 32))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.body = QVBoxLayout()
        self.body.addWidget(self.heading)
        self.body.addWidget(self.message)
        row = QHBoxLayout(self)
        row.addWidget(self.icon)
        row.addLayout(self.body, 1)

    def _finish_layout(self, safe: QPushButton) -> None:
        """The buttons under the text; ``safe`` is drawn as the default choice (the button box
        would otherwise pick its first accepting button, however dangerous)."""
        for button in self.buttons.buttons():
            if isinstance(button, QPushButton):
                button.setDefault(button is safe)
        self.body.addWidget(self.buttons)
        self._safe = safe

    def answer(self, choice: str) -> None:
        """Give the answer (once: a second click on the way out is not a second answer)."""
        if not self.done:
            self.done = True
            self.answered.emit(choice)

    def reject(self) -> None:
        self.answer(CANCEL)

    def focus_safe_choice(self) -> None:
        """Put the keyboard on the choice that runs nothing from the file."""
        self._safe.setFocus(Qt.FocusReason.OtherFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.reject()
        else:
            super().keyPressEvent(event)


class TrustFileQuestion(_Question):
    """Asks whether to load ``name`` with ``weights_only=False``; the keyboard starts on Cancel."""

    def __init__(
        self,
        name: str,
        will_run: list[tuple[str, GlobalClass]],
        pickle_modules: list[str],
        parent: QWidget | None = None,
        *,
        holds_code: bool = False,
    ) -> None:
        from PySide6.QtWidgets import QStyle  # (its tables are built once a question is asked)

        super().__init__("trustFileQuestion", "#c62828", QStyle.StandardPixmap.SP_MessageBoxWarning, parent)
        self.will_run = [qualname for qualname, _ in will_run]
        self.heading.setText(self.tr("Trust {name}?").format(name=name))
        self.message.setObjectName("trustMessage")
        self.message.setText(self._text(name, will_run, holds_code))

        self.pickle_combo = QComboBox()
        self.pickle_combo.setObjectName("pickleModuleCombo")
        for module in ["pickle", *(m for m in pickle_modules if m != "pickle")]:
            self.pickle_combo.addItem(module)
        self.pickle_combo.setToolTip(
            self.tr("torch refuses a custom pickle module under weights-only loading")
        )
        form = QFormLayout()
        form.addRow(self.tr("Pickle module:"), self.pickle_combo)
        self.body.addLayout(form)

        self.trust_button = QPushButton(self.tr("Trust and load"))
        self.trust_button.setObjectName("trustButton")
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.trust_button.clicked.connect(lambda: self.answer(TRUST))
        self._finish_layout(self.cancel_button)

    def _text(self, name: str, will_run: list[tuple[str, GlobalClass]], holds_code: bool) -> str:
        quoted = html.escape(f"“{name}”")
        code = (
            "<p>"
            + self.tr(
                "It holds TorchScript code: trusting loads it with torch.jit.load, which runs that code."
            )
            + "</p>"
            if holds_code
            else ""
        )
        if will_run:
            listing = (
                code
                + "<p>"
                + self.tr("Its pickle names these, and torch.load will import and call them:")
                + f"</p>{_global_list(will_run)}"
            )
        elif holds_code:
            listing = code
        else:
            listing = (
                "<p>"
                + self.tr(
                    "The static read found nothing beyond torch's own globals, but whatever the "
                    "pickle holds will run."
                )
                + "</p>"
            )
        warning = self.tr(
            "<b>Trusting loads {name} with weights_only=False.</b> torch.load then uses "
            "Python's full pickle: the file can run any code, in the loader process, with your "
            "permissions."
        ).format(name=quoted)
        advice = self.tr(
            "Only trust files you made or whose source you trust. "
            "This applies to this tab only and is forgotten when it closes."
        )
        return f"<p>{warning}</p>{listing}<p>{advice}</p>"

    def pickle_module(self) -> str:
        return self.pickle_combo.currentText()


class AllowGlobalsQuestion(_Question):
    """Lists what weights-only loading refused: allow exactly those, trust the file, or cancel."""

    def __init__(
        self,
        name: str,
        needed: list[tuple[str, GlobalClass]],
        refused: list[str],
        parent: QWidget | None = None,
    ) -> None:
        from PySide6.QtWidgets import QStyle

        super().__init__(
            "allowGlobalsQuestion", "#d9822b", QStyle.StandardPixmap.SP_MessageBoxQuestion, parent
        )
        self.names = [qualname for qualname, _ in needed]
        self.heading.setText(self.tr("Allow globals for {name}?").format(name=name))
        self.message.setObjectName("allowMessage")
        self.message.setText(self._text(name, needed, refused))
        several = len(needed) > 1
        self.allow_button = QPushButton(
            self.tr("Allow exactly these") if several else self.tr("Allow exactly this")
        )
        self.allow_button.setObjectName("allowButton")
        self.allow_button.setEnabled(bool(needed) and not refused)
        self.trust_button = QPushButton(self.tr("Trust the whole file…"))
        self.trust_button.setObjectName("trustWholeFileButton")
        self.copy_code_button = QPushButton(self.tr("Copy code"))
        self.copy_code_button.setObjectName("copyCodeButton")
        self.copy_code_button.setToolTip(
            self.tr("Copy the code that loads this file with exactly these allowed")
        )
        self.buttons.addButton(self.allow_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.copy_code_button, QDialogButtonBox.ButtonRole.HelpRole)
        self.allow_button.clicked.connect(lambda: self.answer(ALLOW))
        self.trust_button.clicked.connect(lambda: self.answer(TRUST))
        # Allowing exactly the listed names keeps weights-only loading: the safe choice, when it can be had.
        self._finish_layout(self.allow_button if self.allow_button.isEnabled() else self.cancel_button)

    def _text(self, name: str, needed: list[tuple[str, GlobalClass]], refused: list[str]) -> str:
        quoted = html.escape(f"“{name}”")
        several = len(needed) > 1
        refusal = (
            self.tr("Weights-only loading refused {name}: its pickle needs these globals:")
            if several
            else self.tr("Weights-only loading refused {name}: its pickle needs this global:")
        )
        text = f"<p>{refusal.format(name=quoted)}</p>{_global_list(needed)}"
        if refused:
            never = self.tr(
                "{globals} can never be allowed (torch blocks it, or it can run code); "
                "only trusting the whole file would load it."
            ).format(globals=html.escape(", ".join(escape_text(n) for n in refused)))
            return text + f"<p style='color:#b00020'>{never}</p>"
        choices = (
            self.tr(
                "<b>Allow exactly these</b> keeps weights-only loading and lets torch import only "
                "these, for this tab. <b>Trust the whole file</b> loads it without weights_only."
            )
            if several
            else self.tr(
                "<b>Allow exactly this</b> keeps weights-only loading and lets torch import only "
                "this one, for this tab. <b>Trust the whole file</b> loads it without weights_only."
            )
        )
        return text + f"<p>{choices}</p>"
