"""One tab per file: the summary line, the filter, the tree, and what the engine says about loading.

Opening is two-phase: the static peek runs on the task pool and shows the tree, then the engine
loads the file with torch and "Loaded on" fills in. The peek carries a generation number, so a
result that arrives after a cancel, a reload or a close is dropped; the load is an engine job the
tab holds, discarded (cancelled, and heard no more) when the tab moves on.

Safety: the scan verdict (``inspector.core.safety``) is a badge on the tab. What the policy
refuses to hand to torch (dangerous globals, TorchScript code) is never submitted until the user
trusts the file in this tab; globals that weights-only loading refuses are allowed, or the file
trusted, only by the user's answer to a dialog, asked while this tab is the one shown. These
choices live in the tab and die with it: nothing is remembered, nothing relaxed without asking.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import shiboken6
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QModelIndex,
    QPoint,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text, format_bytes, format_count, format_params
from inspector.core.keyfilter import KeyIndex, MatchMode
from inspector.core.load_options import LoadOptions, MapLocation, format_map_location
from inspector.core.model import CheckpointIndex, Node, PathPart
from inspector.core.optimizer_map import OptimizerMap, map_optimizers
from inspector.core.safety import (
    Refusal,
    Verdict,
    global_class,
    load_refusal,
    refused_names,
    unique_names,
    verdict_of,
    what_would_run,
)
from inspector.engine.protocol import ErrorKind, Failure, LoadReply, LoadRequest, StatsAllReply
from inspector.gui.code_files_dialog import CodeFilesDialog
from inspector.gui.column_widths import ColumnSizer
from inspector.gui.detail_panel import DetailPanel
from inspector.gui.durations import Clock, wait_text
from inspector.gui.engine_bridge import EngineBridge, EngineJob
from inspector.gui.filter_proxy import CheckpointFilterProxy
from inspector.gui.i18n import QT_TRANSLATE_NOOP
from inspector.gui.load_options_bar import map_location_label
from inspector.gui.stats_all import StatsAllRow
from inspector.gui.status_widgets import BusyRow, DangerBanner, ErrorPanel, VerdictBadge
from inspector.gui.tasks import TaskRunner
from inspector.gui.training_breakdown import TrainingBreakdown, tree_notes
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole
from inspector.gui.trust_dialog import AllowGlobalsDialog, TrustFileDialog

PeekFunction = Callable[[str], CheckpointIndex]

#: Trees with more tensors than this open collapsed below the first level and filter-expand less.
_REVEAL_LIMIT = 50  # on a large tree, the parents of at most this many matches open
_WIDE_LIMIT = 200  # on large trees, rows with more children than this start closed
_EXPAND_LIMIT = 5000
_FILTER_DELAY_MS = 150
_INVALID_FILTER_STYLE = "QLineEdit { background: #ffd7d7; color: #000000; }"

_MODES = (
    (QT_TRANSLATE_NOOP("CheckpointTab", "Substring"), MatchMode.SUBSTRING),
    (QT_TRANSLATE_NOOP("CheckpointTab", "Glob"), MatchMode.GLOB),
    (QT_TRANSLATE_NOOP("CheckpointTab", "Regex"), MatchMode.REGEX),
)

#: Said when the engine's error carries no sentence of its own (translated at display time).
_KIND_SENTENCES = {
    ErrorKind.CUDA_UNAVAILABLE: QT_TRANSLATE_NOOP(
        "CheckpointTab", "{name} was saved on CUDA, and this machine has no CUDA device."
    ),
    ErrorKind.DEVICE_UNAVAILABLE: QT_TRANSLATE_NOOP(
        "CheckpointTab", "{name} needs a device this machine does not have."
    ),
    ErrorKind.WEIGHTS_ONLY: QT_TRANSLATE_NOOP(
        "CheckpointTab", "{name} needs globals that weights-only loading does not allow."
    ),
    ErrorKind.CORRUPT: QT_TRANSLATE_NOOP("CheckpointTab", "{name} is damaged: torch could not read it."),
    ErrorKind.NOT_FOUND: QT_TRANSLATE_NOOP("CheckpointTab", "{name} no longer exists."),
    ErrorKind.CRASHED: QT_TRANSLATE_NOOP("CheckpointTab", "The torch worker stopped while loading {name}."),
    ErrorKind.TORCHSCRIPT: QT_TRANSLATE_NOOP(
        "CheckpointTab",
        "{name} holds TorchScript code, which runs if loaded with torch.jit.load; the tensors are "
        "shown from the static read.",
    ),
    ErrorKind.DANGEROUS: QT_TRANSLATE_NOOP(
        "CheckpointTab", "{name} can run code on this computer, so it is not handed to torch."
    ),
    ErrorKind.REFUSED_GLOBAL: QT_TRANSLATE_NOOP(
        "CheckpointTab",
        "{name} needs a global that can never be allowed; only trusting it would load it.",
    ),
    ErrorKind.MISSING_GLOBAL: QT_TRANSLATE_NOOP(
        "CheckpointTab", "{name} needs a global the loader cannot import."
    ),
    ErrorKind.OTHER: QT_TRANSLATE_NOOP("CheckpointTab", "torch could not load {name}."),
}

_TRUST = QT_TRANSLATE_NOOP("CheckpointTab", "Trust this file…")
_ALLOW_OR_TRUST = QT_TRANSLATE_NOOP("CheckpointTab", "Allow or trust…")

# Failures worth simply trying again; failures that trusting the file in this tab gets past.
_TRY_AGAIN = frozenset({ErrorKind.CRASHED, ErrorKind.OTHER, ErrorKind.NOT_FOUND})
_TRUST_HELPS = frozenset(
    {ErrorKind.WEIGHTS_ONLY, ErrorKind.REFUSED_GLOBAL, ErrorKind.TORCHSCRIPT, ErrorKind.DANGEROUS}
)


def _tr(text: str) -> str:
    """Translate a string marked with ``QT_TRANSLATE_NOOP("CheckpointTab", …)``."""
    return QCoreApplication.translate("CheckpointTab", text)


def _regex_reason(exc: ValueError) -> str:
    """Python's own words about a bad pattern (the part after "…: "), without the pattern repeated."""
    cause = exc.__cause__
    return str(cause) if cause is not None else str(exc)


def default_peek(path: str) -> CheckpointIndex:
    """Core's static reader, imported on first use so the window starts without it."""
    from inspector.core.peek import peek

    return peek(path)


def summary_text(index: CheckpointIndex) -> str:
    """One line about the file: format, tensors, the model's params and every tensor's (where they
    differ), size, dtype mix, saved devices."""
    from inspector.core.formatting import escape_text
    from inspector.core.optimizer_map import model_params

    parts: list[str] = [index.format]
    tensors = index.tensor_count
    parts.append(
        (
            QCoreApplication.translate("CheckpointTab", "{count} tensor")
            if tensors == 1
            else QCoreApplication.translate("CheckpointTab", "{count} tensors")
        ).format(count=format_count(tensors))
    )
    total, model = format_params(index.total_params), model_params(index)
    if model is None:
        parts.append(
            QCoreApplication.translate("CheckpointTab", "{total} params in all tensors").format(total=total)
        )
    elif model == index.total_params:
        parts.append(QCoreApplication.translate("CheckpointTab", "{params} params").format(params=total))
    else:
        parts.append(
            QCoreApplication.translate(
                "CheckpointTab", "{model} model params · {total} in all tensors"
            ).format(model=format_params(model), total=total)
        )
    parts.append(format_bytes(index.total_bytes))
    dtypes = index.dtype_mix()
    if dtypes:
        shown = [f"{name} ×{count}" for name, count in list(dtypes.items())[:4]]
        if len(dtypes) > 4:
            shown.append(QCoreApplication.translate("CheckpointTab", "+{n} more").format(n=len(dtypes) - 4))
        parts.append(", ".join(shown))
    devices = index.saved_devices()
    if devices:
        parts.append(
            QCoreApplication.translate("CheckpointTab", "saved on {devices}").format(
                devices=", ".join(map(escape_text, devices))
            )
        )
    if index.format.several_files:
        files = {
            f for n in index.root.tensors() if n.tensor is not None for f in n.tensor.shard.split(", ") if f
        }
        parts.append(
            (
                QCoreApplication.translate("CheckpointTab", "{count} data file")
                if len(files) == 1
                else QCoreApplication.translate("CheckpointTab", "{count} data files")
            ).format(count=len(files))
        )
    meta = next((n for n in index.root.children if n.key == "__metadata__"), None)
    if meta is not None and index.format.string_metadata:
        entries = [escape_text(f"{n.name}={n.value}") for n in meta.children[:3]]
        if len(meta.children) > 3:
            entries.append("…")
        parts.append(
            QCoreApplication.translate("CheckpointTab", "metadata: {entries}").format(
                entries=", ".join(entries) or "{}"
            )
        )
    return "  ·  ".join(parts)


class CheckpointTab(QWidget):
    """Shows one checkpoint; asks the window (by signal) to change options, never the reverse."""

    state_changed = Signal()  # tree shown, busy changed, error shown
    tree_shown = Signal()
    load_finished = Signal()  # "Loaded on" filled in
    load_failed = Signal(str)  # the engine's error kind
    stats_all_finished = Signal(object)  # the StatsAllReply, after the tree's columns filled in
    map_location_requested = Signal(object)  # MapLocation: the error panel's "Load on cpu"

    def __init__(
        self,
        path: str,
        runner: TaskRunner,
        engine: EngineBridge | None,
        peek_fn: PeekFunction = default_peek,
        parent: QWidget | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self._clock = clock
        self._asked_at: float | None = None  # when the user opened or reloaded: the wait starts there
        self._load_asked_at = 0.0
        self._loaded: tuple[LoadReply, float] | None = None  # the last load's answer, and the wait
        self._loaded_text = ""
        # Shown in labels, titles and dialogs: a file name may hold control or bidi characters.
        self.display_name = escape_text(os.path.basename(path.rstrip(os.sep)) or path)
        self._runner = runner
        self._engine = engine
        self._peek_fn = peek_fn
        self._generation = 0
        self._job: EngineJob | None = None  # the running load
        self._options = LoadOptions()
        self._closed = False
        # This tab's own answers to the safety dialogs: never saved, never shared with other tabs.
        self._trusted = False
        self._pickle_module: str | None = None
        self._allowed_globals: tuple[str, ...] = ()
        self._reported_globals: list[str] = []  # what the engine last said weights-only refused
        self.safety_dialog: QDialog | None = None  # the open Allow/Trust dialog (for tests too)
        self._watching_tabs = False  # connected to the window's tab switches
        self.index: CheckpointIndex | None = None
        self.model: CheckpointTreeModel | None = None
        self.proxy = CheckpointFilterProxy(self)
        self.filter_error: str | None = None

        self.verdict_badge = VerdictBadge()
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summaryLabel")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.danger_banner = DangerBanner()
        self.danger_banner.trust_button.clicked.connect(self.ask_trust)
        self.load_label = QLabel()
        self.load_label.setObjectName("loadLabel")
        self.load_label.setWordWrap(True)  # a long line wraps instead of widening the window
        self.load_label.setTextFormat(Qt.TextFormat.PlainText)
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self.cancel)
        self.error_panel = ErrorPanel()

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("filterEdit")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_mode_combo = QComboBox()
        self.filter_mode_combo.setObjectName("filterModeCombo")
        for label, mode in _MODES:
            self.filter_mode_combo.addItem(_tr(label), mode)
        self.expand_button = QPushButton()
        self.collapse_button = QPushButton()
        self.code_files_button = QPushButton()  # TorchScript archives only
        self.code_files_button.setObjectName("codeFilesButton")
        self.code_files_button.hide()
        self.code_files_button.clicked.connect(self.show_code_files)
        self.code_files: QDialog | None = None
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(_FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.filter_edit.returnPressed.connect(self._on_filter_return)
        self.filter_message = QLabel()  # why the filter shows nothing: an invalid regex, or no match
        self.filter_message.setObjectName("filterMessage")
        self.filter_message.setWordWrap(True)
        self.filter_message.setTextFormat(Qt.TextFormat.PlainText)
        self.filter_message.hide()
        self.filter_mode_combo.currentIndexChanged.connect(self.apply_filter)
        self.expand_button.clicked.connect(self.expand_all)
        self.collapse_button.clicked.connect(self.collapse_all)

        self.tree = QTreeView()
        self.tree.setObjectName("checkpointTree")
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.tree.setModel(self.proxy)
        header = self.tree.header()
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # file order until asked
        self.tree.setSortingEnabled(True)
        header.setStretchLastSection(False)
        header.setSectionsMovable(True)
        header.setMinimumSectionSize(40)
        self.columns = ColumnSizer(self.tree)

        self.copy_key_action = QAction(self)
        self.copy_key_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_key_action.triggered.connect(self.copy_key)
        self.copy_row_action = QAction(self)
        self.copy_row_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.copy_row_action.triggered.connect(self.copy_row)
        for action in (self.copy_key_action, self.copy_row_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.tree.addAction(action)

        filter_row = QHBoxLayout()
        filter_row.setContentsMargins(0, 0, 0, 0)
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.filter_mode_combo)
        filter_row.addSpacing(12)
        filter_row.addWidget(self.expand_button)
        filter_row.addWidget(self.collapse_button)
        filter_row.addWidget(self.code_files_button)
        self.tree_area = QWidget()
        tree_layout = QVBoxLayout(self.tree_area)
        tree_layout.setContentsMargins(0, 0, 0, 0)
        tree_layout.addLayout(filter_row)
        tree_layout.addWidget(self.filter_message)
        # The detail panel beside the tree shows the selected tensor (statistics, plots, values).
        self.detail = DetailPanel(engine, clock=clock)
        self.detail.stats_computed.connect(self._on_stats_computed)
        self.stats_all = StatsAllRow(engine)
        self.stats_all.finished.connect(self._on_stats_all_finished)
        self.stats_all.failed.connect(self.load_label.setText)
        self.optimizer_maps: list[OptimizerMap] = []
        self.breakdown: QDialog | None = None
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("treeDetailSplitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setCollapsible(0, False)
        self.splitter.setCollapsible(1, True)  # dragged to the edge, the panel gives the tree its room
        self.splitter.setSizes([1000, 400])  # the tree's numbers first; the panel can be widened
        tree_layout.addWidget(self.stats_all)
        tree_layout.addWidget(self.splitter, 1)
        self.tree_area.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.verdict_badge)
        header_row.addWidget(self.summary_label, 1)
        layout.addLayout(header_row)
        layout.addWidget(self.danger_banner)
        layout.addWidget(self.load_label)
        layout.addWidget(self.busy)
        layout.addWidget(self.error_panel)
        layout.addWidget(self.tree_area, 1)
        self._stretch = QWidget()  # keeps the error panel at the top when there is no tree
        layout.addWidget(self._stretch, 1)
        self.summary_label.hide()
        self.load_label.hide()
        self._retranslate()

    def _retranslate(self) -> None:
        """The tab's fixed texts, and the summary and scan lines; messages wait for the next event."""
        self.filter_edit.setPlaceholderText(self.tr("Filter keys…"))
        for row, (label, _mode) in enumerate(_MODES):
            self.filter_mode_combo.setItemText(row, _tr(label))
        self.expand_button.setText(self.tr("Expand all"))
        self.collapse_button.setText(self.tr("Collapse all"))
        self.code_files_button.setText(self.tr("Code files…"))
        self.copy_key_action.setText(self.tr("Copy key"))
        self.copy_row_action.setText(self.tr("Copy row"))
        if self.index is not None:
            self.summary_label.setText(summary_text(self.index))
            self._show_scan()
        if self._loaded is not None and self.load_label.text() == self._loaded_text:
            self._loaded_text = self._load_text()
            self.load_label.setText(self._loaded_text)
        if self.model is not None:
            self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.model.columnCount() - 1)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    # -- state -------------------------------------------------------------------------------

    @property
    def is_tree_shown(self) -> bool:
        return self.index is not None

    @property
    def is_busy(self) -> bool:
        return self.busy.isVisibleTo(self)

    @property
    def has_error(self) -> bool:
        return self.error_panel.isVisibleTo(self)

    @property
    def is_loading(self) -> bool:
        return self._job is not None

    @property
    def options(self) -> LoadOptions:
        """The window's load options, as last given to ``open`` or ``reload``."""
        return self._options

    @property
    def load_options(self) -> LoadOptions:
        """What the engine is asked for: the window's options plus this tab's allow/trust answers."""
        if self._trusted:
            return replace(
                self._options, weights_only=False, allowed_globals=(), pickle_module=self._pickle_module
            )
        return replace(self._options, allowed_globals=self._allowed_globals, pickle_module=None)

    @property
    def verdict(self) -> Verdict | None:
        """The scan verdict once the static read is shown."""
        return verdict_of(self.index).verdict if self.index is not None else None

    @property
    def is_trusted(self) -> bool:
        return self._trusted

    @property
    def held_back(self) -> bool:
        """True while the safety policy does not let torch see the file with this tab's answers."""
        return self._refusal() is not None

    def _refusal(self) -> Refusal | None:
        """The safety policy's answer for this tab's next load. Only this tab's "Trust" answer
        trusts the file: the window's weights_only switch never lets a dangerous file through."""
        if self.index is None:
            return None
        options = replace(self.load_options, weights_only=not self._trusted)
        return load_refusal(self.display_name, verdict_of(self.index), options)

    # -- opening and loading -----------------------------------------------------------------

    def open(self, options: LoadOptions) -> None:
        """Peek the file (on the task pool), then load it with the engine."""
        self._options = options
        self._asked_at = self._clock()
        self._cancel_load()
        self._generation += 1
        generation = self._generation
        self.error_panel.clear()
        self.busy.show_busy(self.tr("Reading {name}…").format(name=self.display_name))
        self._runner.start(
            lambda: self._peek_fn(self.path),
            lambda index: self._on_peek_finished(generation, index),
            lambda exc: self._on_peek_failed(generation, exc),
        )
        self.state_changed.emit()

    def reload(self, options: LoadOptions) -> None:
        """Load again with new options; the static tree stays, "Loaded on" waits for the answer."""
        self._options = options
        self._asked_at = self._clock()
        if self.index is None:
            self.open(options)
            return
        self._start_load()

    def cancel(self) -> None:
        """Stop what runs now: a peek's result is dropped, a load is cancelled in the engine."""
        if self._job is not None:
            self._cancel_load()
            self.busy.hide_busy()
            self.load_label.setText(self.tr("Loading was cancelled; the tree shows what the file holds."))
            self.load_label.show()
            self.error_panel.show_error(
                self.tr("Loading with torch was cancelled."),
                actions=[(self.tr("Load again"), lambda: self.reload(self._options))],
            )
        elif self.index is None and self.is_busy:
            self._generation += 1
            self.busy.hide_busy()
            self.error_panel.show_error(
                self.tr("Opening {name} was cancelled.").format(name=self.display_name),
                actions=[(self.tr("Open again"), lambda: self.open(self._options))],
            )
        self.state_changed.emit()

    def close_tab(self) -> None:
        """Drop every pending result and cancel the engine job; the window deletes the widget."""
        self._closed = True
        self._generation += 1
        self._cancel_load()
        self._filter_timer.stop()
        self.detail.show_node("", None)
        self.stats_all.cancel()
        dialog, self.safety_dialog = self.safety_dialog, None
        if dialog is not None:
            dialog.reject()  # its answer would be for a tab that is gone
        stack = self._tab_stack()
        if stack is not None and self._watching_tabs:
            stack.currentChanged.disconnect(self._on_current_tab_changed)
            self._watching_tabs = False

    def _cancel_load(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.discard()

    def _start_load(self) -> None:
        asked, self._asked_at = self._asked_at, None
        self._cancel_load()
        self.error_panel.clear()
        if self.model is not None:
            self.model.set_loaded_devices({})
        refusal = self._refusal()
        if refusal is not None:
            # The safety policy's answer: the file never reaches torch.load untrusted.
            self.busy.hide_busy()
            if refusal.kind == ErrorKind.TORCHSCRIPT:
                message = _tr(_KIND_SENTENCES[ErrorKind.TORCHSCRIPT]).format(name=f"“{self.display_name}”")
                self.error_panel.show_error(message, refusal.details, [(_tr(_TRUST), self.ask_trust)])
            self.load_label.setText(
                self.tr("Not loaded with torch: shown from the static read only, so nothing in the file ran.")
            )
            self.load_label.show()
            self.state_changed.emit()
            return
        if self.index is not None and self.index.format.several_files:
            # torch.load opens single files; a shard set is shown from its static read.
            self.busy.hide_busy()
            self.load_label.setText(
                self.tr("A checkpoint in several files is shown from its static read, not loaded with torch.")
            )
            self.load_label.show()
            self.state_changed.emit()
            return
        if self._engine is None:
            self.load_label.setText(self.tr("The torch engine is not available: “Loaded on” stays empty."))
            self.load_label.show()
            return
        where = map_location_label(format_map_location(self._options.map_location))
        self.load_label.hide()
        self.busy.show_busy(self.tr("Loading with torch (map location: {where})…").format(where=where))
        self._load_asked_at = asked if asked is not None else self._clock()
        self._job = self._engine.submit(LoadRequest(self.path, self.load_options), owner=self)
        self._job.finished.connect(self._on_load_finished)
        self._job.failed.connect(self._on_load_failed)
        self.state_changed.emit()

    def _is_current(self, generation: int) -> bool:
        """False for a stale result, or once the tab is closed or deleted."""
        return generation == self._generation and not self._closed and shiboken6.isValid(self)

    def _on_peek_finished(self, generation: int, index: CheckpointIndex) -> None:
        if not self._is_current(generation):
            return
        self.busy.hide_busy()
        self._show_tree(index)
        self._start_load()
        self._runner.start(
            lambda: KeyIndex(index.root),
            lambda keys: self._on_key_index(generation, keys),
            lambda _exc: None,  # the filter builds its own on first use
        )
        self._runner.start(
            lambda: map_optimizers(index),
            lambda maps: self._on_optimizer_maps(generation, maps),
            lambda _exc: None,  # no notes in the tree; the breakdown computes its own
        )

    def _on_key_index(self, generation: int, keys: KeyIndex) -> None:
        if self._is_current(generation):
            self.proxy.set_key_index(keys)

    def _on_peek_failed(self, generation: int, exc: Exception) -> None:
        if not self._is_current(generation):
            return
        self.busy.hide_busy()
        if isinstance(exc, CheckpointError):
            message, details = exc.message, exc.details
        else:
            message = self.tr("{name} could not be read because of an unexpected error.").format(
                name=self.display_name
            )
            details = "".join(traceback.format_exception(exc))
        self.error_panel.show_error(
            message, details, actions=[(self.tr("Try again"), lambda: self.open(self._options))]
        )
        self.state_changed.emit()

    def _on_load_finished(self, reply: LoadReply) -> None:
        self._job = None
        self.busy.hide_busy()
        if self.model is not None:
            self.model.set_loaded_devices(dict(reply.devices))
        self._loaded = (reply, self._clock() - self._load_asked_at)
        self._loaded_text = self._load_text()
        self.load_label.setText(self._loaded_text)
        self.load_label.show()
        self.load_finished.emit()
        self.state_changed.emit()

    def _load_text(self) -> str:
        """What the last load did: where, how long the user waited, what moved, what was allowed."""
        assert self._loaded is not None
        reply, waited = self._loaded
        where = map_location_label(format_map_location(self._options.map_location))
        took = wait_text(waited, reply.seconds, self.tr("torch.load itself:"))
        text = self.tr("Loaded with torch (map location: {where}) in {time}").format(where=where, time=took)
        moved = reply.moved
        if moved:
            for target in sorted(set(moved.values())):
                lacking = sorted(escape_text(s) for s, t in moved.items() if t == target)
                text += self.tr(
                    "; saved on {devices}, which this machine lacks, so loaded on {target}"
                ).format(devices=", ".join(lacking), target=target)
        options = self.load_options
        if not options.weights_only:
            text += self.tr("; trusted: weights_only=False, pickle module {module}").format(
                module=options.pickle_module or "pickle"
            )
        elif options.allowed_globals:
            text += self.tr("; allowed for this tab: {names}").format(
                names=", ".join(escape_text(n) for n in options.allowed_globals)
            )
        return text + self.tr(".")

    def _on_load_failed(self, failure: Failure) -> None:
        self._job = None
        self.busy.hide_busy()
        kind = failure.kind
        message = failure.message
        if not message:
            template = _KIND_SENTENCES.get(kind, _KIND_SENTENCES[ErrorKind.OTHER])
            message = _tr(template).format(name=self.display_name)
        names = failure.globals
        if kind is ErrorKind.WEIGHTS_ONLY:
            self._reported_globals = unique_names([*self._reported_globals, *names])
        if kind is ErrorKind.WEIGHTS_ONLY and names and not all(escape_text(n) in message for n in names):
            shown = ", ".join(escape_text(n) for n in names)
            message += " " + self.tr("It references: {names}.").format(names=shown)
        actions: list[tuple[str, Callable[[], None]]] = []
        suggest = failure.suggest
        if suggest:
            label = self.tr("Load on {device}").format(device=suggest)
            actions.append((label, lambda: self._request_map_location(suggest)))
        elif kind in _TRY_AGAIN:
            actions.append((self.tr("Try again"), lambda: self.reload(self._options)))
        elif kind is ErrorKind.WEIGHTS_ONLY and names:
            actions.append((_tr(_ALLOW_OR_TRUST), lambda: self.ask_allow(names)))
        elif kind in _TRUST_HELPS and not self._trusted:
            actions.append((_tr(_TRUST), self.ask_trust))
        self.error_panel.show_error(message, failure.details, actions)
        self.load_label.hide()
        self.load_failed.emit(kind.value)
        self.state_changed.emit()
        if kind is ErrorKind.WEIGHTS_ONLY and names and self.safety_dialog is None:
            self.ask_allow(names)

    # -- allowing globals and trusting the file (this tab only) --------------------------------

    def ask_allow(self, names: list[str]) -> None:
        """The dialog that lists globals weights-only loading refused: allow exactly them, or trust."""
        if self.index is None or self._closed:
            return
        names = unique_names([*self._allowed_globals, *names])
        needed = [(name, global_class(name, self.index)) for name in names]
        dialog = AllowGlobalsDialog(self.display_name, needed, refused_names(names), self)

        def on_finished(_result: int) -> None:
            if self._closed or self.safety_dialog is not dialog:
                return
            self.safety_dialog = None
            if dialog.choice == "allow":
                self._allowed_globals = tuple(names)
                self._start_load()
            elif dialog.choice == "trust":
                self.ask_trust()

        self._show_dialog(dialog, on_finished)

    def ask_trust(self) -> None:
        """The warning that names what a trusted load runs; accepting loads with weights_only=False."""
        if self.index is None or self._closed or self._trusted:
            return
        will_run = what_would_run(self.index, [*self._allowed_globals, *self._reported_globals])
        pickle_modules: list[str] = []
        if self._engine is not None:
            pickle_modules = self._engine.pickle_modules
        holds_code = verdict_of(self.index).torchscript_code
        dialog = TrustFileDialog(self.display_name, will_run, pickle_modules, self, holds_code=holds_code)

        def on_finished(result: int) -> None:
            if self._closed or self.safety_dialog is not dialog:
                return
            self.safety_dialog = None
            if result == QDialog.DialogCode.Accepted:
                self._trusted = True
                self._pickle_module = dialog.pickle_module()
                self._show_scan()
                self._start_load()

        self._show_dialog(dialog, on_finished)

    def _show_dialog(self, dialog: QDialog, on_finished: Callable[[int], None]) -> None:
        """Ask in this tab: the dialog opens now if this tab is the one shown, else when it is."""
        if self.safety_dialog is not None:
            self.safety_dialog.reject()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.safety_dialog = dialog
        dialog.finished.connect(on_finished)
        stack = self._tab_stack()
        if stack is not None and not self._watching_tabs:
            stack.currentChanged.connect(self._on_current_tab_changed)
            self._watching_tabs = True
        if self.is_current_tab:
            dialog.open()

    def _tab_stack(self) -> QStackedWidget | None:
        parent = self.parentWidget()
        return parent if isinstance(parent, QStackedWidget) else None

    @property
    def is_current_tab(self) -> bool:
        """True when this tab is the one its window shows (or it stands alone)."""
        stack = self._tab_stack()
        return stack is None or stack.currentWidget() is self

    def _on_current_tab_changed(self, _index: int) -> None:
        """A question about this file is shown only over this file's tab."""
        dialog = self.safety_dialog
        if dialog is None or self._closed or not shiboken6.isValid(dialog):
            return
        if self.is_current_tab and not dialog.isVisible():
            dialog.open()
        elif not self.is_current_tab and dialog.isVisible():
            dialog.hide()

    def _show_scan(self) -> None:
        """The verdict badge, and the red banner for a file with dangerous globals."""
        assert self.index is not None
        judged = verdict_of(self.index)
        unsafe = [escape_text(n) for n in unique_names(g.qualname for g in self.index.unsafe_globals)]
        tooltip = (
            self.tr("Globals outside torch's weights-only set: {names}").format(names=", ".join(unsafe))
            if unsafe
            else self.tr("The pickle references only what weights-only loading allows.")
        )
        if judged.torchscript_code:
            tooltip += "\n" + _tr(_KIND_SENTENCES[ErrorKind.TORCHSCRIPT]).format(name=self.display_name)
        self.verdict_badge.set_verdict(judged.verdict, tooltip)
        if not judged.dangerous and not judged.differentials:
            self.danger_banner.hide()
            return
        listed = ", ".join(escape_text(n) for n in judged.dangerous)
        if not judged.dangerous:
            message = self.tr(
                "{name} would be read differently by another reader ({why}), so what torch runs may "
                "not be what is shown. It is shown from its static read only and is not handed to torch."
            ).format(name=self.display_name, why=escape_text(judged.differentials[0]))
        elif self._trusted:
            message = self.tr(
                "You trusted {name} in this tab, so it is loaded with weights_only=False "
                "and its pickle may call {globals}."
            ).format(name=self.display_name, globals=listed)
        else:
            message = self.tr(
                "{name} references {globals}, which can run code on this computer. "
                "It is shown from its static read only and is not handed to torch."
            ).format(name=self.display_name, globals=listed)
        self.danger_banner.show_message(message, can_trust=not self._trusted)

    def _request_map_location(self, loc: MapLocation) -> None:
        self.map_location_requested.emit(loc)

    # -- the tree ----------------------------------------------------------------------------

    def _show_tree(self, index: CheckpointIndex) -> None:
        self.index = index
        self.model = CheckpointTreeModel(index.root, self)
        self.proxy.setSourceModel(self.model)
        self.summary_label.setText(summary_text(index))
        self.summary_label.setToolTip(escape_text(index.path))
        self.summary_label.show()
        self._show_scan()
        if index.warnings:
            self.load_label.setText("; ".join(index.warnings))
            self.load_label.show()
        self._stretch.hide()
        self.tree_area.show()
        self._expand_initial()
        for column in (Column.NONFINITE, Column.NORM):  # shown once statistics are computed
            self.columns.set_hidden(column, True)
        self.columns.set_hidden(Column.SHARD, not index.format.several_files)
        self.columns.apply(self.model)
        self.code_files_button.setVisible(index.format.holds_code)
        self.tree_shown.emit()
        self.state_changed.emit()

    # -- looking inside tensors (issue 6) ------------------------------------------------------

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = current.siblingAtColumn(Column.NAME).data(ItemRole.NodeRole) if current.isValid() else None
        self.detail.show_node(self.path, node if node is not None and node.tensor is not None else None)

    def _on_stats_computed(self, path: tuple[PathPart, ...], stats: dict[str, Any]) -> None:
        if self.model is not None and not self._closed:
            self.model.set_tensor_stats({path: stats})
            self._show_stats_columns()

    def _show_stats_columns(self) -> None:
        if self.model is not None:
            self.columns.show_columns([Column.NONFINITE, Column.NORM], self.model)

    def compute_all_stats(self) -> bool:
        """Statistics for every tensor in the engine (progress and Cancel above the tree)."""
        if self.index is None or self._closed:
            return False
        return self.stats_all.start(self.path)

    def _on_stats_all_finished(self, reply: StatsAllReply) -> None:
        if self.model is None or self._closed:
            return
        self.model.set_tensor_stats(reply.stats)
        self._show_stats_columns()
        flagged = reply.flagged
        if flagged:
            shown = ", ".join(escape_text(k) for k in flagged[:5]) + (" …" if len(flagged) > 5 else "")
            self.load_label.setText(self.tr("{0} tensors hold NaN or Inf: {1}").format(len(flagged), shown))
        else:
            self.load_label.setText(self.tr("No tensor holds NaN or Inf."))
        self.load_label.show()
        self.stats_all_finished.emit(reply)

    def _on_optimizer_maps(self, generation: int, maps: list[OptimizerMap]) -> None:
        if not self._is_current(generation) or self.model is None:
            return
        self.optimizer_maps = maps
        names, tooltips = tree_notes(maps)
        if names or tooltips:
            self.model.set_notes(names, tooltips)
            if not self.columns.user_sized:
                self.columns.apply(self.model)  # the names grew by their labels
            self.proxy.set_labels(names)  # "q_proj" finds the optimizer rows labelled with it
            if self.filter_edit.text() and not self._filter_timer.isActive():
                self.apply_filter()  # (a pending keystroke applies the labels itself)

    def show_breakdown(self) -> QDialog | None:
        """The training-checkpoint breakdown (bytes by part, optimizer state by parameter)."""
        if self.index is None:
            return None
        self.breakdown = TrainingBreakdown(self.index, self._engine, self.optimizer_maps or None, self)
        self.breakdown.show()
        return self.breakdown

    def show_code_files(self) -> QDialog | None:
        """A read-only view of a TorchScript archive's code files (read from the zip, never run)."""
        if self.index is None or not self.index.format.holds_code:
            return None
        self.code_files = CodeFilesDialog(self.path, self._runner, self)
        self.code_files.show()
        return self.code_files

    def expand_all(self) -> None:
        self.tree.expandAll()

    def collapse_all(self) -> None:
        self.tree.collapseAll()

    def focus_filter(self) -> None:
        """Put the cursor in the filter box with its text selected (View ▸ Filter Keys, Ctrl+F)."""
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def _on_filter_return(self) -> None:
        """Enter in the filter box: filter now and go to the first row, ready for the arrow keys."""
        self.apply_filter()
        if self.proxy.rowCount() and self.filter_error is None:
            self.tree.setFocus(Qt.FocusReason.OtherFocusReason)
            if not self.tree.currentIndex().isValid():
                self.tree.setCurrentIndex(self.proxy.index(0, 0))

    def apply_filter(self) -> None:
        """Filter the tree by the box's text in the chosen mode; an invalid regex turns it red and
        says why, and a filter that keeps nothing says so."""
        self._filter_timer.stop()
        text = self.filter_edit.text()
        mode = self.filter_mode_combo.currentData()
        try:
            self.proxy.set_filter(text, mode)
        except ValueError as exc:
            self.filter_error = str(exc)
            self.filter_edit.setStyleSheet(_INVALID_FILTER_STYLE)
            self.filter_edit.setToolTip(self.filter_error)
            self._show_filter_message(
                self.tr("Not a valid regular expression: {error}").format(error=_regex_reason(exc)),
                error=True,
            )
            return
        self.filter_error = None
        self.filter_edit.setStyleSheet("")
        self.filter_edit.setToolTip("")
        if self.index is None:
            self._show_filter_message("")
            return
        if text and self.proxy.rowCount() == 0:
            self._show_filter_message(
                self.tr("No key or label matches “{text}”.").format(text=text), error=False
            )
        else:
            self._show_filter_message("")
        if not text:
            self.tree.collapseAll()
            self._expand_initial()
        elif self.index.tensor_count <= _EXPAND_LIMIT:
            self.tree.expandAll()
        else:
            hits = self.proxy.first_hits(_REVEAL_LIMIT + 1)
            if len(hits) <= _REVEAL_LIMIT:  # a broad filter (the first letters typed) opens nothing
                self._reveal(hits)

    def _show_filter_message(self, text: str, error: bool = False) -> None:
        self.filter_message.setText(text)
        self.filter_message.setStyleSheet("color: #c62828;" if error else "color: palette(placeholder-text);")
        self.filter_message.setVisible(bool(text))

    def _expand_initial(self) -> None:
        """Two levels open on ordinary files; on large ones only top-level rows with few children
        (a view lays out every visible row: 10,000 siblings cost a third of a second)."""
        assert self.index is not None
        if self.index.tensor_count <= _EXPAND_LIMIT:
            self.tree.expandToDepth(1)
            assert self.model is not None
            for node in self.model.folded_nodes():  # a module's attributes stay folded away
                self.tree.collapse(self.proxy.mapFromSource(self.model.index_of(node)))
            return
        for row in range(self.proxy.rowCount()):
            top = self.proxy.index(row, 0)
            if self.proxy.rowCount(top) <= _WIDE_LIMIT:
                self.tree.expand(top)

    def _reveal(self, nodes: list[Node]) -> None:
        """Expand the ancestors of ``nodes`` only: expanding a 100,000-key tree costs seconds."""
        assert self.model is not None
        for node in nodes:
            up = node.parent
            chain = []
            while up is not None and up.parent is not None:
                chain.append(up)
                up = up.parent
            for ancestor in reversed(chain):
                proxy_index = self.proxy.mapFromSource(self.model.index_of(ancestor))
                if proxy_index.isValid() and not self.tree.isExpanded(proxy_index):
                    self.tree.expand(proxy_index)

    # -- copying -----------------------------------------------------------------------------

    def selected_nodes(self) -> list[Node]:
        rows = self.tree.selectionModel().selectedRows(Column.NAME)
        if not rows and self.tree.currentIndex().isValid():
            rows = [self.tree.currentIndex().siblingAtColumn(Column.NAME)]
        return [row.data(ItemRole.NodeRole) for row in rows]

    def copy_key(self) -> None:
        keys = [escape_text(node.key) for node in self.selected_nodes()]
        if keys:
            QGuiApplication.clipboard().setText("\n".join(keys))

    def copy_row(self) -> None:
        rows = self.tree.selectionModel().selectedRows(Column.NAME)
        if not rows and self.tree.currentIndex().isValid():
            rows = [self.tree.currentIndex().siblingAtColumn(Column.NAME)]
        lines = [self._row_text(row) for row in rows]
        if lines:
            QGuiApplication.clipboard().setText("\n".join(lines))

    def _row_text(self, index: QModelIndex) -> str:
        node: Node = index.data(ItemRole.NodeRole)
        cells = [escape_text(node.key)]
        for column in list(Column)[1:]:
            cells.append(str(index.siblingAtColumn(column).data() or ""))
        return "\t".join(cells)

    def _on_context_menu(self, pos: QPoint) -> None:
        if not self.tree.indexAt(pos).isValid():
            return
        menu = QMenu(self)
        menu.addAction(self.copy_key_action)
        menu.addAction(self.copy_row_action)
        menu.addSeparator()
        menu.addAction(self.tr("Expand all"), self.expand_all)
        menu.addAction(self.tr("Collapse all"), self.collapse_all)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.tree.viewport().mapToGlobal(pos))
