"""The two questions a tab asks before loading more than plain tensors from a file.

``AllowGlobalsDialog``: weights-only loading refused globals; allow exactly those, or trust the file.
``TrustFileDialog``: the warning before ``weights_only=False``, naming what the pickle will run.
Both only answer; the tab decides what to load, for itself only, and never remembers it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text
from inspector.core.model import GlobalClass
from inspector.gui.i18n import QT_TRANSLATE_NOOP

_CLASS_TEXT = {
    GlobalClass.DANGEROUS: QT_TRANSLATE_NOOP(
        "TrustFileDialog", "dangerous: can run commands, touch files or reach the network"
    ),
    GlobalClass.UNKNOWN: QT_TRANSLATE_NOOP(
        "TrustFileDialog", "unknown: imported and called as the file says"
    ),
    GlobalClass.ALLOWED: QT_TRANSLATE_NOOP("TrustFileDialog", "allowed by weights-only loading"),
}


def _global_list(items: list[tuple[str, GlobalClass]]) -> str:
    rows = []
    for name, verdict in items:
        colour = "#b00020" if verdict is GlobalClass.DANGEROUS else "palette(text)"
        what = QCoreApplication.translate("TrustFileDialog", _CLASS_TEXT[verdict])
        shown = html.escape(escape_text(name))
        rows.append(f"<li><code style='color:{colour}'>{shown}</code> — {what}</li>")
    return "<ul style='margin-left:-20px'>" + "".join(rows) + "</ul>"


def _icon_label(widget: QWidget, pixmap: QStyle.StandardPixmap) -> QLabel:
    label = QLabel()
    label.setPixmap(widget.style().standardIcon(pixmap).pixmap(40, 40))
    return label


class TrustFileDialog(QDialog):
    """Asks whether to load ``name`` with ``weights_only=False``; Cancel is the default button."""

    def __init__(
        self,
        name: str,
        will_run: list[tuple[str, GlobalClass]],
        pickle_modules: list[str],
        parent: QWidget | None = None,
        *,
        holds_code: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trustFileDialog")
        self.setWindowTitle(self.tr("Trust {name}?").format(name=name))
        self.will_run = [qualname for qualname, _ in will_run]
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
        self.message = QLabel(f"<p>{warning}</p>{listing}<p>{advice}</p>")
        self.message.setObjectName("trustMessage")
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(460)

        self.pickle_combo = QComboBox()
        self.pickle_combo.setObjectName("pickleModuleCombo")
        for module in ["pickle", *(m for m in pickle_modules if m != "pickle")]:
            self.pickle_combo.addItem(module)
        self.pickle_combo.setToolTip(
            self.tr("torch refuses a custom pickle module under weights-only loading")
        )
        form = QFormLayout()
        form.addRow(self.tr("Pickle module:"), self.pickle_combo)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.trust_button = QPushButton(self.tr("Trust and load"))
        self.trust_button.setObjectName("trustButton")
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setDefault(True)
        cancel.setFocus()
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        text = QVBoxLayout()
        text.addWidget(self.message)
        text.addLayout(form)
        top = QFormLayout()
        top.addRow(_icon_label(self, QStyle.StandardPixmap.SP_MessageBoxWarning), text)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.buttons)

    def pickle_module(self) -> str:
        return self.pickle_combo.currentText()


class AllowGlobalsDialog(QDialog):
    """Lists what weights-only loading refused; ``choice`` is "allow", "trust" or None (cancel)."""

    def __init__(
        self,
        name: str,
        needed: list[tuple[str, GlobalClass]],
        refused: list[str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("allowGlobalsDialog")
        self.setWindowTitle(self.tr("Allow globals for {name}?").format(name=name))
        self.names = [qualname for qualname, _ in needed]
        self.choice: str | None = None
        quoted = html.escape(f"“{name}”")
        several = len(needed) > 1
        allow_label = self.tr("Allow exactly these") if several else self.tr("Allow exactly this")
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
            text += f"<p style='color:#b00020'>{never}</p>"
        else:
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
            text += f"<p>{choices}</p>"
        self.message = QLabel(text)
        self.message.setObjectName("allowMessage")
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(460)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.allow_button = QPushButton(allow_label)
        self.allow_button.setObjectName("allowButton")
        self.allow_button.setEnabled(bool(needed) and not refused)
        self.trust_button = QPushButton(self.tr("Trust the whole file…"))
        self.trust_button.setObjectName("trustWholeFileButton")
        self.buttons.addButton(self.allow_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.allow_button.clicked.connect(lambda: self._answer("allow"))
        self.trust_button.clicked.connect(lambda: self._answer("trust"))
        self.buttons.rejected.connect(self.reject)
        (self.allow_button if self.allow_button.isEnabled() else self.buttons.button(
            QDialogButtonBox.StandardButton.Cancel
        )).setDefault(True)  # fmt: skip

        top = QFormLayout()
        top.addRow(_icon_label(self, QStyle.StandardPixmap.SP_MessageBoxQuestion), self.message)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.buttons)

    def _answer(self, choice: str) -> None:
        self.choice = choice
        self.accept()
