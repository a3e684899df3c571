"""The model card above a tab's tree: what model the file holds, each claim with its evidence.

A header button folds the card to one line: a card that recognised no family starts folded, one
that did starts unfolded, and the user's last choice for each is remembered. The card itself is
``inspector.core.model_card``'s (computed from the static read off the GUI thread); this widget
shows it, and renews its fit lines when the engine reports its devices' memory. Claims are rows
whose children (and tooltips) are the keys and shapes they rest on; every string from the file
passes ``escape_text``.
A wrapper prefix that the export can strip gets a button that opens the export with it stripped.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text, format_bytes, format_params
from inspector.core.load_options import LoadOptions
from inspector.core.model import CheckpointIndex
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.i18n import QT_TRANSLATE_NOOP

if TYPE_CHECKING:  # the card's module is imported by the read of a card, after the tree is shown
    from inspector.core.model_card import ModelCard

#: The card's names of sizes and topics, translated where shown (core's sentences stay English).
_NAMES = {
    "layers": QT_TRANSLATE_NOOP("ModelCardView", "Layers"),
    "decoder_layers": QT_TRANSLATE_NOOP("ModelCardView", "Decoder layers"),
    "hidden": QT_TRANSLATE_NOOP("ModelCardView", "Hidden size"),
    "intermediate": QT_TRANSLATE_NOOP("ModelCardView", "Intermediate size"),
    "heads": QT_TRANSLATE_NOOP("ModelCardView", "Attention heads"),
    "kv_heads": QT_TRANSLATE_NOOP("ModelCardView", "KV heads"),
    "experts": QT_TRANSLATE_NOOP("ModelCardView", "Experts"),
    "head_dim": QT_TRANSLATE_NOOP("ModelCardView", "Head dimension"),
    "vocab": QT_TRANSLATE_NOOP("ModelCardView", "Vocabulary"),
    "positions": QT_TRANSLATE_NOOP("ModelCardView", "Positions"),
    "max_positions": QT_TRANSLATE_NOOP("ModelCardView", "Max positions"),
    "token_types": QT_TRANSLATE_NOOP("ModelCardView", "Token types"),
    "stem_width": QT_TRANSLATE_NOOP("ModelCardView", "Stem width"),
    "patch_size": QT_TRANSLATE_NOOP("ModelCardView", "Patch size"),
    "image_tokens": QT_TRANSLATE_NOOP("ModelCardView", "Image tokens"),
    "latent_channels": QT_TRANSLATE_NOOP("ModelCardView", "Latent channels"),
    "cross_attention": QT_TRANSLATE_NOOP("ModelCardView", "Cross-attention size"),
    "time_embedding": QT_TRANSLATE_NOOP("ModelCardView", "Time embedding size"),
    "conv_layers": QT_TRANSLATE_NOOP("ModelCardView", "Convolution layers"),
    "classes": QT_TRANSLATE_NOOP("ModelCardView", "Classes"),
    "input_channels": QT_TRANSLATE_NOOP("ModelCardView", "Input channels"),
    "norm": QT_TRANSLATE_NOOP("ModelCardView", "Norm"),
    "tied_embeddings": QT_TRANSLATE_NOOP("ModelCardView", "Tied embeddings"),
    "variant": QT_TRANSLATE_NOOP("ModelCardView", "Variant"),
    "attention": QT_TRANSLATE_NOOP("ModelCardView", "Attention"),
    "adapter": QT_TRANSLATE_NOOP("ModelCardView", "Adapter"),
    "optimizer": QT_TRANSLATE_NOOP("ModelCardView", "Optimizer"),
    "scheduler": QT_TRANSLATE_NOOP("ModelCardView", "Scheduler"),
    "epoch": QT_TRANSLATE_NOOP("ModelCardView", "Epoch"),
    "step": QT_TRANSLATE_NOOP("ModelCardView", "Step"),
    "ema": QT_TRANSLATE_NOOP("ModelCardView", "EMA copy"),
}
_PARTS = {
    "embeddings": QT_TRANSLATE_NOOP("ModelCardView", "embeddings"),
    "blocks": QT_TRANSLATE_NOOP("ModelCardView", "blocks"),
    "head": QT_TRANSLATE_NOOP("ModelCardView", "head"),
    "other": QT_TRANSLATE_NOOP("ModelCardView", "other"),
}

_MAX_BODY_HEIGHT = 240
#: Whether a card starts unfolded, by whether it recognised a family: (settings key, default).
_FOLDING = {True: ("modelCard/unfoldRecognised", True), False: ("modelCard/unfoldUnrecognised", False)}


def _tr(text: str) -> str:
    return QCoreApplication.translate("ModelCardView", text)


class _WholeRowsTree(QTreeWidget):
    """A list that shows only whole rows: when its rows do not all fit (a long card, or one squeezed
    by the window), the strip at the bottom that would show a row cut in half stays blank."""

    def updateGeometries(self) -> None:
        super().updateGeometries()  # sets the top margin to the header's height
        margins = self.viewportMargins()
        row = self.sizeHintForRow(0)
        height = self.viewport().height() + margins.bottom()
        overflow = row > 0 and self.topLevelItemCount() and self.verticalScrollBar().maximum() > 0
        cut = height % row if overflow and height > row else 0
        if cut != margins.bottom():
            self.setViewportMargins(margins.left(), margins.top(), margins.right(), cut)


def _name(key: str) -> str:
    return _tr(_NAMES[key]) if key in _NAMES else escape_text(key.replace("_", " "))


class ModelCardView(QFrame):
    """The collapsible card (see the module docstring)."""

    toggled = Signal(bool)  # expanded
    card_shown = Signal()

    def __init__(self, engine: EngineBridge | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._engine = engine
        self._index: CheckpointIndex | None = None
        self._options: LoadOptions | None = None
        self._settings: QSettings | None = None
        self.card: ModelCard | None = None
        self.export_dialog: QDialog | None = None
        self.header = QToolButton()
        self.header.setObjectName("modelCardHeader")
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.toggled.connect(self.set_expanded)
        self.header.clicked.connect(self._remember)
        self.strip_button = QPushButton()
        self.strip_button.setObjectName("stripPrefixButton")
        self.strip_button.clicked.connect(self.export_without_prefix)
        self.strip_button.hide()
        self.body = _WholeRowsTree()
        self.body.setObjectName("modelCardBody")
        self.body.setColumnCount(2)
        self.body.setRootIsDecorated(True)
        self.body.setUniformRowHeights(True)
        self.body.setMaximumHeight(_MAX_BODY_HEIGHT)
        self.body.header().setStretchLastSection(True)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.header)
        top.addStretch(1)
        top.addWidget(self.strip_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.body)
        self.hide()
        if engine is not None:
            engine.engine_ready.connect(self._on_engine_ready)

    # -- showing a card ------------------------------------------------------------------------

    def show_card(self, index: CheckpointIndex, card: ModelCard, options: LoadOptions | None = None) -> None:
        """Show ``card`` (of ``index``); ``options`` are the tab's answers the export must keep."""
        from inspector.core.model_card import UNRECOGNISED

        self._index, self.card, self._options = index, card, options
        key, default = _FOLDING[card.family != UNRECOGNISED]
        stored = self._settings.value(key, default) if self._settings is not None else default
        self.header.setChecked(stored in (True, "true"))
        self._refit()
        self._fill()
        self.show()
        self.card_shown.emit()

    def remember_folding(self, settings: QSettings) -> None:
        """Keep the user's fold or unfold of a card, for the next card of its kind, in ``settings``."""
        self._settings = settings

    def _remember(self, expanded: bool) -> None:
        if self._settings is not None and self.card is not None:
            from inspector.core.model_card import UNRECOGNISED

            self._settings.setValue(_FOLDING[self.card.family != UNRECOGNISED][0], expanded)

    def _refit(self) -> None:
        """The fit lines with this computer's memory now and the accelerators' the engine reported."""
        if self.card is not None and self._engine is not None:
            from inspector.core.model_card import device_fits, host_and

            self.card.fits = device_fits(self.card.stored_bytes, host_and(self._engine.device_memory))

    def _on_engine_ready(self, _devices: list[str], _torch_version: str) -> None:
        if self.card is not None:
            self._refit()
            self._fill()

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        """Unfold the claims, or fold the card to its header line."""
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # comes back here through toggled
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
        self.toggled.emit(expanded)

    def strippable_prefixes(self) -> list[str]:
        return [p.prefix for p in self.card.prefixes if p.strippable] if self.card is not None else []

    def _fill(self) -> None:
        card = self.card
        if card is None:
            return
        self.header.setText(self._headline(card))
        self.header.setToolTip(
            "\n".join(escape_text(e) for e in card.evidence) or self.tr("No rule set matched.")
        )
        self.header.setArrowType(Qt.ArrowType.DownArrow if self.expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(self.expanded)
        self.body.setHeaderLabels([self.tr("Claim"), self.tr("Value")])
        self.body.clear()
        if card.evidence:
            self._row(self.tr("Family"), card.label, card.evidence)
        for d in card.dimensions:
            value = f"{d.value:,}" if d.value is not None else self.tr("not determined")
            self._row(_name(d.name), value + (f" ({d.note})" if d.note else ""), d.evidence)
        for f in card.facts:
            self._row(_name(f.topic), f.text, f.evidence)
        for p in card.prefixes:
            self._row(
                self.tr("Key prefix"), self.tr("every key starts with {0} ({1})").format(p.prefix, p.wrapper)
            )
        if card.lora is not None:
            ranks = ", ".join(f"{t} r={'/'.join(map(str, r))}" for t, r in card.lora.ranks.items())
            alpha = card.lora.alpha or self.tr("not stored")
            text = self.tr("{0} modules: {1}; alpha {2}").format(card.lora.modules, ranks, alpha)
            self._row("LoRA", text, card.lora.evidence)
        for t in card.training:
            self._row(_name(t.role), f"{t.key}: {t.text}", t.evidence)
        parts = ", ".join(
            f"{_tr(_PARTS.get(n, n))} {format_params(v)}" for n, v in card.split_params().items()
        )
        self._row(self.tr("Parameters"), format_params(card.params) + (f" ({parts})" if parts else ""))
        sizes = ", ".join(f"{label} {format_bytes(n)}" for label, n in card.bytes_at.items())
        self._row(
            self.tr("Weights"),
            self.tr("{0} as stored; at {1}").format(format_bytes(card.stored_bytes), sizes),
            (self.tr("Counts only the weights: no activations, KV cache or framework overhead."),),
        )
        for fit in card.fits:
            verdict = self.tr("fit") if fit.fits else self.tr("do not fit")
            text = self.tr("the weights {0} in {1} free").format(verdict, format_bytes(fit.free_bytes))
            if fit.total_bytes is not None:
                text = self.tr("the weights {0} in {1} free of {2}").format(
                    verdict, format_bytes(fit.free_bytes), format_bytes(fit.total_bytes)
                )
            self._row(f"{fit.device} ({fit.name})" if fit.name else fit.device, text)
        if card.config is not None:
            for path in card.config.paths:
                shown = [f"{k} = {v}" for k, v in card.config.shown.items()]
                self._row(self.tr("Config"), os.path.basename(path), shown)
            for problem in card.config.problems:
                self._row(self.tr("Config"), problem)
        for c in card.contradictions:
            self._row(self.tr("Contradiction"), c)
        self.body.resizeColumnToContents(0)
        rows = self.body.topLevelItemCount()
        row = max(self.body.sizeHintForRow(0), 1)
        top = self.body.header().sizeHint().height() + 2 * self.body.frameWidth()
        whole = min(rows, max((_MAX_BODY_HEIGHT - top) // row, 1))  # whole rows: none shown cut in half
        self.body.setMaximumHeight(top + whole * row)  # a short card takes no more room than it needs
        prefixes = self.strippable_prefixes()
        self.strip_button.setVisible(bool(prefixes) and self._index is not None)
        self.strip_button.setText(self.tr("Export without “{0}”…").format(escape_text("".join(prefixes))))

    def _headline(self, card: ModelCard) -> str:
        parts = [
            self.tr("Model: {0}").format(card.label),
            self.tr("{0} params").format(format_params(card.params)),
        ]
        layers = card.dimension("layers")
        if layers is not None and layers.value is not None:
            parts.append(self.tr("{0} layers").format(layers.value))
        if card.lora is not None:
            parts.append("LoRA")
        if card.training:  # said even when the card is folded: the file is more than a model
            roles = dict.fromkeys(_tr(_NAMES.get(t.role, t.role)).lower() for t in card.training)
            parts.append(self.tr("training checkpoint: {0}").format(", ".join(roles)))
        return escape_text("  ·  ".join(parts))

    def _row(self, name: str, value: str, evidence: tuple[str, ...] | list[str] = ()) -> QTreeWidgetItem:
        """A claim and, below it and in its tooltip, what it rests on (all escaped)."""
        item = QTreeWidgetItem([escape_text(name), escape_text(value)])
        shown = [escape_text(e) for e in evidence]
        if shown:
            tip = self.tr("Evidence:") + "\n" + "\n".join(shown)
            item.setToolTip(0, tip)
            item.setToolTip(1, tip)
            for line in shown:
                item.addChild(QTreeWidgetItem(["", line]))
        self.body.addTopLevelItem(item)
        return item

    # -- the export that strips the prefix -----------------------------------------------------

    def export_without_prefix(self) -> QDialog | None:
        """The export dialog with the wrapper prefixes in "Strip prefixes" (nothing is written until
        the user exports)."""
        from inspector.gui.export_dialog import ExportDialog

        prefixes = self.strippable_prefixes()
        if self._index is None or not prefixes:
            return None
        dialog = ExportDialog(self._index, self._engine, self, load_options=self._options)
        card = self.card
        inside = card.model_key if card is not None and card.model_key else ""
        wrapper = "".join(prefixes)
        if inside:  # a training checkpoint's model part: only its keys lose the prefix, the rest stays
            dialog.rename_edit.setPlainText(f"^{re.escape(inside + '.' + wrapper)}=>{inside}.")
        else:
            dialog.strip_edit.setText(wrapper)
        dialog.target_edit.setText(os.path.splitext(self._index.path)[0] + "_unwrapped.pth")
        dialog.update_preview()
        self.export_dialog = dialog
        dialog.show()
        return dialog

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._fill()
        super().changeEvent(event)
