"""The interface language: the system locale unless View ▸ Language says otherwise.

``UiLanguage`` owns the translators it installs on the application (ours and Qt's own, for standard
buttons and dialogs). Installing or removing one makes Qt send ``LanguageChange`` to every widget,
which retranslates its labels in ``changeEvent``. Sentences that core and the engine write about a
file stay English: they are made outside Qt.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import (
    QCoreApplication,
    QLibraryInfo,
    QLocale,
    QObject,
    QSettings,
    QTranslator,
    Signal,
)


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:
    """Mark ``text`` for lupdate under ``context`` (it finds calls by this name); translate where shown.

    Qt's own returns ``object`` to type checkers; this one keeps constants typed as ``str``.
    """
    return text


SETTINGS_LANGUAGE = "ui/language"
SYSTEM = "system"
ENGLISH = "en"
SIMPLIFIED_CHINESE = "zh_CN"

#: (setting value, menu label). A language names itself, so only "System" is translated.
LANGUAGES = (
    (SYSTEM, QT_TRANSLATE_NOOP("UiLanguage", "System")),
    (ENGLISH, "English"),
    (SIMPLIFIED_CHINESE, "简体中文"),
)

TRANSLATIONS = Path(__file__).resolve().parents[2] / "resources" / "translations"
CATALOG = "checkpoint_inspector"


def language_label(code: str) -> str:
    """The menu label of a language setting, translated where it is not the language's own name."""
    label = dict(LANGUAGES).get(code, code)
    return QCoreApplication.translate("UiLanguage", label) if code == SYSTEM else label


class UiLanguage(QObject):
    """Reads and stores the "ui/language" choice and keeps the matching translators installed."""

    changed = Signal(str)  # the new choice: "system", "en" or "zh_CN"

    def __init__(
        self,
        settings: QSettings,
        directory: Path = TRANSLATIONS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._directory = directory
        self._translators: list[QTranslator] = []

    def choice(self) -> str:
        value = str(self._settings.value(SETTINGS_LANGUAGE, SYSTEM) or SYSTEM)
        return value if value in dict(LANGUAGES) else SYSTEM

    def locale(self) -> QLocale:
        """The locale the interface speaks for the current choice."""
        choice = self.choice()
        if choice == SYSTEM:
            return QLocale.system()
        return QLocale(choice)

    @property
    def is_translated(self) -> bool:
        """True while a catalog of ours is installed (the interface is not English)."""
        return bool(self._translators)

    def apply(self) -> bool:
        """Install the translators for the current choice; False when the interface stays English."""
        self.remove()
        app = QCoreApplication.instance()
        locale = self.locale()
        if app is None or locale.language() in (QLocale.Language.English, QLocale.Language.C):
            return False
        ours = QTranslator(self)
        if not ours.load(locale, CATALOG, "_", str(self._directory)):
            return False
        translators = [ours]
        qt_own = QTranslator(self)  # Qt's own strings: OK/Cancel, file dialogs, edit menus
        if qt_own.load(locale, "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
            translators.append(qt_own)
        for translator in translators:
            app.installTranslator(translator)
            self._translators.append(translator)
        return True

    def set_choice(self, choice: str) -> None:
        """Store ``choice`` and switch to it now; open windows retranslate on ``LanguageChange``."""
        if choice not in dict(LANGUAGES) or choice == self.choice():
            return
        self._settings.setValue(SETTINGS_LANGUAGE, choice)
        self.apply()
        self.changed.emit(choice)

    def remove(self) -> None:
        """Uninstall every translator this object installed (English again)."""
        app = QCoreApplication.instance()
        translators, self._translators = self._translators, []
        for translator in translators:
            if app is not None:
                app.removeTranslator(translator)
            translator.deleteLater()
