"""The bar where the user chooses how torch loads a file: map_location, weights_only, mmap."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QSettings, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from inspector.core.formatting import escape_text
from inspector.core.load_options import (
    AS_SAVED_ELSE_CPU,
    LoadOptions,
    MapLocation,
    format_map_location,
    parse_map_location,
)

#: The combo's item data are canonical map locations (``format_map_location``), the same in every
#: language; only the labels of the named ones are translated, and labels are never parsed or stored.
AS_SAVED = format_map_location(None)
AS_SAVED_ELSE = format_map_location(AS_SAVED_ELSE_CPU)
CUSTOM = "custom"
_FIXED = (AS_SAVED_ELSE, AS_SAVED, "cpu", "meta")
#: What a first start, and every start after a session that chose "As saved", loads with: it opens a
#: file saved on a device this machine lacks instead of failing on it.
DEFAULT_MAP_LOCATION = AS_SAVED_ELSE

SETTINGS_MAP_LOCATION = "load/map_location"
SETTINGS_MMAP = "load/mmap"


def map_location_label(text: str) -> str:
    """What the user sees for a canonical map location: "As saved" translated, devices as they are."""
    if text == AS_SAVED:
        return QCoreApplication.translate("LoadOptionsBar", "As saved")
    if text == AS_SAVED_ELSE:
        return QCoreApplication.translate("LoadOptionsBar", "As saved where possible, else cpu")
    if text == CUSTOM:
        return QCoreApplication.translate("LoadOptionsBar", "Custom…")
    return text


def _setting_bool(settings: QSettings, key: str, default: bool) -> bool:
    value = settings.value(key, default)
    if isinstance(value, str):  # IniFormat gives "true"/"false" back
        return value.lower() in {"true", "1", "yes"}
    return bool(value)


class CustomMapLocationDialog(QDialog):
    """Asks for a device or a mapping such as ``cuda:1→cuda:0``; OK only while it parses."""

    def __init__(self, initial: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(440)
        self.edit = QLineEdit(initial)
        self.edit.setPlaceholderText("cuda:1->cuda:0, cuda:2->cpu")
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("customMapLocationMessage")
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setStyleSheet("color: #c62828;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        layout.addWidget(self.edit)
        layout.addWidget(self.message)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._validate)
        self._retranslate()
        self._validate(initial)

    def _retranslate(self) -> None:
        self.setWindowTitle(self.tr("Custom map location"))
        self.prompt.setText(
            self.tr(
                "A device (cpu, meta, cuda:N, mps), or saved->target pairs separated by commas, "
                "e.g. cuda:1->cuda:0, cuda:2->cpu (→ works as well as ->):"
            )
        )

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def map_location(self) -> MapLocation:
        return parse_map_location(self.edit.text())

    def _validate(self, text: str) -> None:
        ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        try:
            parse_map_location(text)
        except ValueError as exc:
            self.message.setText(escape_text(str(exc)))
            ok_button.setEnabled(False)
        else:
            self.message.setText("")
            ok_button.setEnabled(True)
        self._fit_message()

    def _fit_message(self) -> None:
        """Grow the dialog so that every line of the message shows (a wrapped label asks for no height)."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
        needed = self.message.heightForWidth(max(self.message.width(), 1))
        self.message.setMinimumHeight(max(needed, 0))
        if self.height() < self.sizeHint().height():
            self.resize(self.width(), self.sizeHint().height())


class LoadOptionsBar(QWidget):
    """Emits ``options_changed`` when the user changes an option; remembers them in QSettings."""

    options_changed = Signal(object)  # LoadOptions

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._current_text = DEFAULT_MAP_LOCATION
        self.custom_dialog: CustomMapLocationDialog | None = None

        self.map_combo = QComboBox()
        self.map_combo.setObjectName("mapLocationCombo")
        self.map_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for value in (*_FIXED, CUSTOM):
            self.map_combo.addItem(map_location_label(value), value)
        self.weights_only_check = QCheckBox("weights_only")
        self.mmap_check = QCheckBox("mmap")
        self.map_label = QLabel()
        self._retranslate()

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.map_label)
        layout.addWidget(self.map_combo)
        layout.addSpacing(12)
        layout.addWidget(self.weights_only_check)
        layout.addWidget(self.mmap_check)
        layout.addStretch(1)

        self._restore()
        self.map_combo.activated.connect(self._on_map_activated)
        self.weights_only_check.toggled.connect(self._on_weights_only_toggled)
        self.mmap_check.toggled.connect(self._on_option_toggled)

    # -- public ------------------------------------------------------------------------------

    def options(self) -> LoadOptions:
        try:
            loc = parse_map_location(self._current_text)
        except ValueError:
            loc = None
        return LoadOptions(
            map_location=loc,
            weights_only=self.weights_only_check.isChecked(),
            mmap=self.mmap_check.isChecked(),
        )

    def set_map_location(self, loc: MapLocation) -> None:
        """Select ``loc`` (added to the list if new), save it and emit ``options_changed``."""
        self._select(format_map_location(loc))
        self._commit()

    def show_options(self, options: LoadOptions) -> None:
        """Show a tab's options (its map location, mmap, weights_only) without saving or reloading."""
        with QSignalBlocker(self.weights_only_check), QSignalBlocker(self.mmap_check):
            self._select(format_map_location(options.map_location))
            self.weights_only_check.setChecked(options.weights_only)
            self.mmap_check.setChecked(options.mmap)

    def set_engine_devices(self, devices: list[str]) -> None:
        """Offer each device the engine reports (cuda:N, mps) after the fixed entries."""
        for device in devices:
            if self.map_combo.findData(device) < 0:
                self.map_combo.insertItem(self._first_custom_row(), device, device)

    # -- internals ---------------------------------------------------------------------------

    def _retranslate(self) -> None:
        self.map_label.setText(self.tr("Map location:"))
        self.map_combo.setToolTip(self.tr("Where torch.load puts the tensors (map_location)"))
        for row in range(self.map_combo.count()):
            self.map_combo.setItemText(row, map_location_label(str(self.map_combo.itemData(row))))
        self.weights_only_check.setToolTip(
            self.tr("Load with torch's safe unpickler: only tensors and plain containers")
        )
        self.mmap_check.setToolTip(self.tr("Memory-map the file instead of reading it (zip files only)"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    def _first_custom_row(self) -> int:
        return self.map_combo.count() - 1  # "Custom…" stays last

    def _select(self, text: str) -> None:
        """Select the canonical map location ``text``, adding a row for it if new."""
        row = self.map_combo.findData(text)
        if row < 0:
            row = self._first_custom_row()
            self.map_combo.insertItem(row, map_location_label(text), text)
        self.map_combo.setCurrentIndex(row)
        self._current_text = text

    def _restore(self) -> None:
        text = str(self._settings.value(SETTINGS_MAP_LOCATION, DEFAULT_MAP_LOCATION) or DEFAULT_MAP_LOCATION)
        try:
            text = format_map_location(parse_map_location(text))
        except ValueError:
            text = DEFAULT_MAP_LOCATION
        if text == AS_SAVED:
            # Not carried over: on a machine without the saved device every such file would open
            # with an error first; "as saved where possible" does the same wherever it can.
            text = DEFAULT_MAP_LOCATION
        self._select(text)
        # weights_only=False is never restored: a later start must not run a stranger's pickle.
        self.weights_only_check.setChecked(True)
        self.mmap_check.setChecked(_setting_bool(self._settings, SETTINGS_MMAP, True))

    def _commit(self) -> None:
        self._settings.setValue(SETTINGS_MAP_LOCATION, self._current_text)
        self._settings.setValue(SETTINGS_MMAP, self.mmap_check.isChecked())
        self.options_changed.emit(self.options())

    def _on_map_activated(self, row: int) -> None:
        text = str(self.map_combo.itemData(row))
        if text == CUSTOM:
            self._ask_custom()
            return
        changed = text != self._current_text
        self._select(text)
        if changed:
            self._commit()

    def _ask_custom(self) -> None:
        previous = self._current_text
        dialog = CustomMapLocationDialog("" if previous in (AS_SAVED, AS_SAVED_ELSE) else previous, self)
        dialog.setObjectName("customMapLocationDialog")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.custom_dialog = dialog

        def on_finished(result: int) -> None:
            self.custom_dialog = None
            if result != QDialog.DialogCode.Accepted:
                self._select(previous)
                return
            self._select(format_map_location(dialog.map_location()))
            self._commit()

        dialog.finished.connect(on_finished)
        dialog.open()

    def _on_option_toggled(self, _checked: bool) -> None:
        self._commit()

    def _on_weights_only_toggled(self, checked: bool) -> None:
        if not checked and not self.confirm_unsafe():
            with QSignalBlocker(self.weights_only_check):
                self.weights_only_check.setChecked(True)
            return
        self._commit()

    def confirm_unsafe(self) -> bool:
        """Ask before loading without weights_only: the file's pickle may then run any code."""
        answer = QMessageBox.warning(
            self,
            self.tr("Load without weights_only?"),
            self.tr(
                "With weights_only off, torch.load runs whatever code the file's pickle contains, "
                "in the loader process, with your permissions.\n\nOnly do this for files you made "
                "or fully trust. The setting is not remembered: the next start is safe again."
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes
