"""One tab per file: the summary line, the filter, the tree, and what the engine says about loading.

The tab renders a ``CheckpointDocument`` (``inspector.gui.checkpoint_document``), which owns what
the file is doing (peeking, shown, loading, loaded, refused, failed, cancelled), the safety gate
before torch, and what each failure offers. The tab runs the static read on the task pool and the
load in the engine for it, hands their answers back, and draws the result; the user's clicks are
forwarded to the document. A question about allowing globals or trusting the file is a panel in
this tab, so the rest of the window, other tabs among it, stays usable while it waits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import shiboken6
from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
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
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from inspector.core.collector import kept_frozen, release_frozen
from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text, format_bytes, format_count, format_params
from inspector.core.keyfilter import KeyIndex, MatchMode
from inspector.core.load_options import LoadOptions, format_map_location
from inspector.core.loading_code import loading_code
from inspector.core.model import CheckpointIndex, Node, PathPart
from inspector.core.optimizer_map import OptimizerMap, map_optimizers
from inspector.core.read_progress import PICKLE, TREE, ReadStopped, watched
from inspector.core.safety import Verdict, unique_names
from inspector.engine.protocol import ErrorKind, Failure, LoadReply, LoadRequest, StatsAllReply
from inspector.gui.checkpoint_document import (
    Action,
    AllowQuestion,
    CheckpointDocument,
    DocumentState,
    Question,
    TrustQuestion,
)
from inspector.gui.column_widths import ColumnSizer
from inspector.gui.detail_panel import DetailPanel
from inspector.gui.durations import Clock, wait_text
from inspector.gui.engine_bridge import EngineBridge, EngineJob
from inspector.gui.filter_proxy import CheckpointFilterProxy
from inspector.gui.first_paint import after_paint
from inspector.gui.i18n import QT_TRANSLATE_NOOP
from inspector.gui.load_options_bar import map_location_label
from inspector.gui.model_card_view import ModelCardView
from inspector.gui.safety_questions import ALLOW, CANCEL, TRUST, AllowGlobalsQuestion, TrustFileQuestion
from inspector.gui.stats_all import StatsAllRow
from inspector.gui.status_widgets import BusyRow, DangerBanner, ErrorPanel, VerdictBadge
from inspector.gui.tasks import TaskRunner
from inspector.gui.training_breakdown import TrainingBreakdown, tree_notes
from inspector.gui.tree_model import CheckpointTreeModel, Column, ItemRole
from inspector.remote.cancelling import ReadCancel, reading
from inspector.remote.locations import is_url, shown_form

if TYPE_CHECKING:  # read on first download, so the window starts without the readers
    from inspector.core.model_card import ModelCard  # (read once the tree is on screen)
    from inspector.remote.download_cache import CachedCopy

PeekFunction = Callable[[str], CheckpointIndex]

#: Trees with more tensors than this open collapsed below the first level and filter-expand less.
_REVEAL_LIMIT = 50  # on a large tree, the parents of at most this many matches open
_WIDE_LIMIT = 200  # on large trees, rows with more children than this start closed
_EXPAND_LIMIT = 5000
_FILTER_DELAY_MS = 150
#: The busy bar is told of a static read's progress this often at most (seconds).
READ_PROGRESS_S = 0.1
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

#: The buttons of the error panel, by action (``LOAD_ON_SUGGESTED`` names its device).
_ACTION_LABELS = {
    Action.OPEN_AGAIN: QT_TRANSLATE_NOOP("CheckpointTab", "Open again"),
    Action.LOAD_AGAIN: QT_TRANSLATE_NOOP("CheckpointTab", "Load again"),
    Action.ALLOW_OR_TRUST: QT_TRANSLATE_NOOP("CheckpointTab", "Allow or trust…"),
    Action.TRUST: QT_TRANSLATE_NOOP("CheckpointTab", "Trust this file…"),
    Action.DOWNLOAD: QT_TRANSLATE_NOOP("CheckpointTab", "Download and load"),
}
#: After a failure, doing the same again is "Try again".
_TRY_AGAIN = QT_TRANSLATE_NOOP("CheckpointTab", "Try again")
_LOAD_ON = QT_TRANSLATE_NOOP("CheckpointTab", "Load on {device}")

#: What the line under the summary says in each state (nothing where it is not listed).
_STATE_LINES = {
    DocumentState.REFUSED: QT_TRANSLATE_NOOP(
        "CheckpointTab", "Not loaded with torch: shown from the static read only, so nothing in the file ran."
    ),
    DocumentState.SHOWN: QT_TRANSLATE_NOOP(
        "CheckpointTab", "The torch engine is not available: “Loaded on” stays empty."
    ),
    DocumentState.CANCELLED: QT_TRANSLATE_NOOP(
        "CheckpointTab", "Loading was cancelled; the tree shows what the file holds."
    ),
}

#: A file read where it lives is never handed to torch: loading needs the whole file here.
_REMOTE_SHOWN = QT_TRANSLATE_NOOP(
    "CheckpointTab",
    "Read where it lives: “Loaded on” needs the whole file on this machine; Download and load fetches it "
    "into the cache folder and loads that copy.",
)
_REMOTE_SET_SHOWN = QT_TRANSLATE_NOOP(
    "CheckpointTab",
    "Read where it lives: “Loaded on” needs the whole file on this machine, every file of the set; "
    "download the set with its own tools (e.g. hf download) and open the local copy.",
)
_REMOTE_NO_ENGINE = QT_TRANSLATE_NOOP(
    "CheckpointTab",
    "Read where it lives: “Loaded on” needs the whole file on this machine and the torch engine.",
)
_REMOTE_READ = QT_TRANSLATE_NOOP("CheckpointTab", "read {fetched} of {size} in {requests} requests")

# The actions that open a question: not offered twice while one is pending.
_QUESTION_ACTIONS = (Action.ALLOW_OR_TRUST, Action.TRUST)


def _tr(text: str) -> str:
    """Translate a string marked with ``QT_TRANSLATE_NOOP("CheckpointTab", …)``."""
    return QCoreApplication.translate("CheckpointTab", text)


def _regex_reason(exc: ValueError) -> str:
    """Python's own words about a bad pattern (the part after "…: "), without the pattern repeated."""
    cause = exc.__cause__
    return str(cause) if cause is not None else str(exc)


def _release_trees_later() -> None:
    """Once a tab or a tree model is deleted: the trees it let go are freed by one pass of the
    collector (the read left them frozen, so no pass walked them while they were shown)."""
    QTimer.singleShot(0, release_frozen)


def _traceback_text(exc: BaseException) -> str:
    """What an unexpected error's details show (its module is imported for such an error only)."""
    import traceback

    return "".join(traceback.format_exception(exc))


def default_peek(path: str) -> CheckpointIndex:
    """Core's static reader (or, for a URL, the same reader over ranged reads), imported on first
    use so the window starts without it."""
    from inspector.remote.static_read import peek_location

    return peek_location(path)[0]


def _one_file(url: str) -> bool:
    """Whether ``url`` names one file (Download and load takes one), not an HF set or a DCP folder."""
    from inspector.remote.download_cache import download_refusal

    try:
        return download_refusal(url) is None
    except CheckpointError:
        return False  # a malformed URL: its static read says why


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
        shown = [f"{name} ×{count:,}" for name, count in list(dtypes.items())[:4]]
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
    if index.remote_read is not None:
        requests, fetched, size = index.remote_read
        parts.append(
            QCoreApplication.translate("CheckpointTab", _REMOTE_READ).format(
                fetched=format_bytes(fetched), size=format_bytes(size), requests=format_count(requests)
            )
        )
    return "  ·  ".join(parts)


class _ProgressRelay(QObject):
    """Carries a download's or a static read's progress from the task pool's thread to the tab's
    (queued signals)."""

    moved = Signal(int, object, object)  # download ticket, bytes written, bytes in all
    read_moved = Signal(int, str, object, object)  # read ticket, its stage, done, total


class CheckpointTab(QWidget):
    """Shows one checkpoint; asks the window (by signal) to change options, never the reverse."""

    state_changed = Signal()  # the document moved: tree shown, busy changed, error shown
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
        self.remote = is_url(path)  # read by ranges where it lives; never handed to torch
        # Shown in labels, titles and questions: a file name may hold control or bidi characters.
        #: the path as labels show it: a URL without its user name, password or query (tokens)
        self.shown_path = shown_form(path) if self.remote else path
        self.display_name = escape_text(os.path.basename(self.shown_path.rstrip(os.sep)) or self.shown_path)
        self._runner = runner
        self._engine = engine
        self._peek_fn = peek_fn
        self._read_cancel: ReadCancel | None = None  # stops the static read or download under way
        self._relay = _ProgressRelay(self)
        self._relay.moved.connect(self._on_download_moved)
        self._relay.read_moved.connect(self._on_read_moved)
        self._doc = CheckpointDocument(
            path,
            self.display_name,
            self._start_peek,
            self._submit_load if engine is not None else None,
            on_change=self._render,
            clock=clock,
            remote=self.remote,  # torch waits for the local copy
            start_download=self._start_download if self.remote and _one_file(path) else None,
        )
        self.model: CheckpointTreeModel | None = None
        self.destroyed.connect(_release_trees_later)
        self.proxy = CheckpointFilterProxy(self)
        self.filter_error: str | None = None
        self.optimizer_maps: list[OptimizerMap] = []
        self.breakdown: QDialog | None = None
        self.code_files: QDialog | None = None
        self.safety_question: AllowGlobalsQuestion | TrustFileQuestion | None = None  # the open one
        # What was drawn last, so that drawing again touches only what changed.
        self._shown_index: CheckpointIndex | None = None
        self._shown_devices: LoadReply | None = None
        self._shown_status: tuple[object, ...] | None = None
        self._shown_error: tuple[object, ...] | None = None
        self._shown_question: Question | None = None
        self._shown_failure: Failure | None = None
        self._status_text = ""
        self._focus_question = False
        self._signals: list[Callable[[], None]] = []  # emitted once a drawing is complete

        self._build_header()
        self._build_filter_row()
        self._build_tree()
        self._build_copy_actions()
        self._build_tree_area(engine, clock)
        self._build_layout()
        self._retranslate()

    # -- building the widgets ---------------------------------------------------------------

    def _build_header(self) -> None:
        """The verdict badge and summary, the read's notes, the banner, the status line, busy, errors."""
        self.verdict_badge = VerdictBadge()
        self.summary_label = self._text_label("summaryLabel")
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notes_label = self._text_label("readNotesLabel")  # what the static read noticed
        self.danger_banner = DangerBanner()
        self.danger_banner.trust_button.clicked.connect(self.ask_trust)
        self.load_label = self._text_label("loadLabel")  # a long line wraps instead of widening the window
        self.download_button = QPushButton()  # a remote file: fetch its whole copy, then load it
        self.download_button.setObjectName("downloadButton")
        self.download_button.hide()
        self.download_button.clicked.connect(self.download_and_load)
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self.cancel)
        self.error_panel = ErrorPanel()
        self.model_card = ModelCardView(self._engine)  # what model the file holds, above the tree

    @staticmethod
    def _text_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.hide()
        return label

    def _build_filter_row(self) -> None:
        """The filter box and its mode, expand/collapse, and TorchScript's code files."""
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
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(_FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.filter_edit.textChanged.connect(self._filter_timer.start)
        self.filter_edit.returnPressed.connect(self._on_filter_return)
        self.filter_message = self._text_label("filterMessage")  # an invalid regex, or no match
        self.filter_mode_combo.currentIndexChanged.connect(self.apply_filter)
        self.expand_button.clicked.connect(self.expand_all)
        self.collapse_button.clicked.connect(self.collapse_all)

    def _build_tree(self) -> None:
        """The tree view over the filter proxy: sortable, movable columns, file order first."""
        self.tree = QTreeView()
        self.tree.setObjectName("checkpointTree")
        self.tree.setUniformRowHeights(True)
        self._all_open = False  # every row of the filtered tree open since the filter last changed
        self.tree.collapsed.connect(self._row_closed)
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

    def _build_copy_actions(self) -> None:
        """Copy key (Ctrl+C) and copy row (Ctrl+Shift+C), while the tree has the keyboard."""
        self.copy_key_action = QAction(self)
        self.copy_key_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_key_action.triggered.connect(self.copy_key)
        self.copy_row_action = QAction(self)
        self.copy_row_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.copy_row_action.triggered.connect(self.copy_row)
        for action in (self.copy_key_action, self.copy_row_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.tree.addAction(action)

    def _build_tree_area(self, engine: EngineBridge | None, clock: Clock) -> None:
        """The filter row, statistics of every tensor, and the tree beside the detail panel."""
        filter_row = QHBoxLayout()
        filter_row.setContentsMargins(0, 0, 0, 0)
        filter_row.addWidget(self.filter_edit, 1)
        filter_row.addWidget(self.filter_mode_combo)
        filter_row.addSpacing(12)
        filter_row.addWidget(self.expand_button)
        filter_row.addWidget(self.collapse_button)
        filter_row.addWidget(self.code_files_button)
        # The detail panel beside the tree shows the selected tensor (statistics, plots, values).
        self.detail = DetailPanel(engine, clock=clock)
        self.detail.stats_computed.connect(self._on_stats_computed)
        self.stats_all = StatsAllRow(engine)
        self.stats_all.finished.connect(self._on_stats_all_finished)
        self.stats_all.failed.connect(self.load_label.setText)
        self.tree.selectionModel().currentChanged.connect(self._on_current_changed)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("treeDetailSplitter")
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setCollapsible(0, False)
        self.splitter.setCollapsible(1, True)  # dragged to the edge, the panel gives the tree its room
        # The tree's keys and numbers first: the panel opens as narrow as it can be; it can be widened.
        self.splitter.setSizes([1000, self.detail.sizeHint().width()])
        self.tree_area = QWidget()
        tree_layout = QVBoxLayout(self.tree_area)
        tree_layout.setContentsMargins(0, 0, 0, 0)
        tree_layout.addLayout(filter_row)
        tree_layout.addWidget(self.filter_message)
        tree_layout.addWidget(self.stats_all)
        tree_layout.addWidget(self.splitter, 1)
        self.tree_area.hide()

    def _build_layout(self) -> None:
        """Top to bottom: header row, notes, banner, status line, busy row, error, question, tree."""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.verdict_badge)
        header_row.addWidget(self.summary_label, 1)
        layout.addLayout(header_row)
        layout.addWidget(self.model_card)
        status_row = QHBoxLayout()  # the status line, and a remote file's Download and load
        status_row.setContentsMargins(0, 0, 0, 0)
        status_row.addWidget(self.load_label, 1)
        status_row.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignTop)
        for widget in (self.notes_label, self.danger_banner):
            layout.addWidget(widget)
        layout.addLayout(status_row)
        layout.addWidget(self.busy)
        layout.addWidget(self.error_panel)
        self._question_slot = QVBoxLayout()  # where a pending question's panel goes
        self._question_slot.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._question_slot)
        layout.addWidget(self.tree_area, 1)
        self._stretch = QWidget()  # keeps the error panel at the top when there is no tree
        layout.addWidget(self._stretch, 1)

    def _retranslate(self) -> None:
        """The tab's fixed texts, then everything the document's state says, drawn again."""
        self.filter_edit.setPlaceholderText(self.tr("Filter keys…"))
        for row, (label, _mode) in enumerate(_MODES):
            self.filter_mode_combo.setItemText(row, _tr(label))
        self.expand_button.setText(self.tr("Expand all"))
        self.collapse_button.setText(self.tr("Collapse all"))
        self.code_files_button.setText(self.tr("Code files…"))
        self.download_button.setText(self.tr("Download and load"))
        self.copy_key_action.setText(self.tr("Copy key"))
        self.copy_row_action.setText(self.tr("Copy row"))
        if self.index is not None:
            self.summary_label.setText(summary_text(self.index))
        if self.model is not None:
            self.model.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.model.columnCount() - 1)
        self._shown_question = None  # a question's panel is built in the language of the day
        self._render()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    # -- state -------------------------------------------------------------------------------

    @property
    def document(self) -> CheckpointDocument:
        return self._doc

    @property
    def index(self) -> CheckpointIndex | None:
        """The static read, once it is shown."""
        return self._doc.index

    @property
    def is_tree_shown(self) -> bool:
        return self._doc.index is not None

    @property
    def is_busy(self) -> bool:
        return self.busy.isVisibleTo(self)

    @property
    def has_error(self) -> bool:
        return self.error_panel.isVisibleTo(self)

    @property
    def is_loading(self) -> bool:
        return self._doc.is_loading

    @property
    def options(self) -> LoadOptions:
        """The window's load options, as last given to ``open`` or ``reload``."""
        return self._doc.options

    @property
    def load_options(self) -> LoadOptions:
        """What the engine is asked for: the window's options plus this tab's allow/trust answers."""
        return self._doc.load_options

    @property
    def verdict(self) -> Verdict | None:
        """The scan verdict once the static read is shown."""
        judged = self._doc.verdict
        return judged.verdict if judged is not None else None

    @property
    def is_trusted(self) -> bool:
        return self._doc.trusted

    @property
    def held_back(self) -> bool:
        """True while the safety policy does not let torch see the file with this tab's answers."""
        return self._doc.held_back

    # -- what the user asks for: forwarded to the document -----------------------------------

    def open(self, options: LoadOptions) -> None:
        """Peek the file (on the task pool), then load it with the engine."""
        self._doc.open(options)

    def reload(self, options: LoadOptions) -> None:
        """Load again with new options; the static tree stays, "Loaded on" waits for the answer."""
        self._doc.reload(options)

    def cancel(self) -> None:
        """Stop what runs now: a static read stops at its next report (a remote one at once), a
        download at once (its partial copy removed), a load is cancelled in the engine."""
        if self._read_cancel is not None and self._doc.state in (
            DocumentState.PEEKING, DocumentState.DOWNLOADING
        ):  # fmt: skip
            self._read_cancel.cancel()
        self._doc.cancel()

    def download_and_load(self) -> None:
        """Download the remote file's whole copy into the cache folder, then load it with torch; a
        file larger than ``LARGE_DOWNLOAD`` is asked about first."""
        from inspector.remote.download_cache import LARGE_DOWNLOAD, cache_folder

        from .download_cache_dialog import ask_before

        doc = self._doc
        if Action.DOWNLOAD not in doc.actions:
            return
        size = doc.download_progress[1] or (
            doc.index.remote_read[2] if doc.index and doc.index.remote_read else 0
        )
        if size <= LARGE_DOWNLOAD:
            doc.download()
            return
        ask_before(
            self,
            self.tr("Download and load"),
            self.tr("{name} is {size}. Download the whole file into the cache folder {folder}?").format(
                name=self.display_name, size=format_bytes(size), folder=escape_text(str(cache_folder()))
            ),
            "largeDownloadQuestion",
            doc.download,
        )

    def close_tab(self) -> None:
        """Drop every pending result and question and cancel the engine job; the window deletes
        the widget."""
        if self._read_cancel is not None:
            self._read_cancel.cancel()
        self._doc.close()
        self._filter_timer.stop()
        self.detail.show_node("", None)
        self.stats_all.cancel()
        self._show_question(None)

    def ask_allow(self, names: list[str]) -> None:
        """The question that lists globals weights-only loading refused: allow exactly them, or trust."""
        self._focus_question = True
        self._doc.ask_allow(names)

    def ask_trust(self) -> None:
        """The warning that names what a trusted load runs; accepting loads with weights_only=False."""
        self._focus_question = True
        self._doc.ask_trust()

    def _perform(self, action: Action) -> None:
        """What an error panel button does."""
        doc = self._doc
        if action is Action.OPEN_AGAIN:
            self.open(doc.options)
        elif action is Action.DOWNLOAD:
            self.download_and_load()
        elif action is Action.LOAD_AGAIN:
            self.reload(doc.options)
        elif action is Action.LOAD_ON_SUGGESTED:
            suggest = doc.failure.suggest if doc.failure is not None else None
            if suggest:
                self.map_location_requested.emit(suggest)
        elif action is Action.ALLOW_OR_TRUST:
            self.ask_allow(doc.failure.globals if doc.failure is not None else [])
        elif action is Action.TRUST:
            self.ask_trust()

    def _on_question_answered(
        self, question: Question, panel: AllowGlobalsQuestion | TrustFileQuestion, choice: str
    ) -> None:
        if self._doc.question is not question:
            return  # a panel on its way out
        if choice == CANCEL:
            self._doc.dismiss()
        elif isinstance(panel, AllowGlobalsQuestion):
            if choice == ALLOW:
                self._doc.allow()
            elif choice == TRUST:
                self.ask_trust()
        elif choice == TRUST:
            self._doc.trust(panel.pickle_module())

    # -- the static read and the engine, on the document's behalf ----------------------------

    def _start_peek(self, ticket: int) -> None:
        """Run the document's static read on the task pool: it tells the busy bar how far it has
        come and stops when cancelled (a remote one also between its requests); its answer carries
        ``ticket``."""
        cancel = self._read_cancel = ReadCancel()
        path, peek_fn, relay = self._doc.path, self._peek_fn, self._relay
        told_at, told_stage = 0.0, ""  # when the busy bar was last told, and of which stage

        def watch(stage: str, done: int, total: int) -> None:
            """The read's progress, for the busy bar (a new stage at once, else ten times a second
            at most); a read the tab no longer wants (cancelled, closed) stops here."""
            nonlocal told_at, told_stage
            if cancel.cancelled:
                raise ReadStopped
            now = time.monotonic()
            if stage != told_stage or now - told_at >= READ_PROGRESS_S:
                told_at, told_stage = now, stage
                relay.read_moved.emit(ticket, stage, done, total)

        def read() -> CheckpointIndex:
            with reading(cancel), kept_frozen(), watched(watch):  # the tab frees its tree when it lets it go
                return peek_fn(path)

        self._runner.start(
            read,
            lambda index: self._on_peek_finished(ticket, index),
            lambda exc: self._on_peek_failed(ticket, exc),
        )

    def _start_download(self, ticket: int) -> None:
        """Download the remote file's whole copy on the task pool, from the version its tree was read
        from; progress and the answer carry ``ticket``."""
        from inspector.remote.download_cache import RemoteVersion, download  # (fsspec when first used)

        index = self._doc.index
        assert index is not None
        version = RemoteVersion(index.remote_read[2] if index.remote_read else 0, index.remote_version)
        cancel = self._read_cancel = ReadCancel()
        url, relay = self.path, self._relay

        def fetch() -> CachedCopy:
            with reading(cancel):
                return download(url, version, lambda done, total: relay.moved.emit(ticket, done, total))

        self._runner.start(
            fetch,
            lambda copy: self._on_download_finished(ticket, copy),
            lambda exc: self._on_download_failed(ticket, exc),
        )

    def _on_read_moved(self, ticket: int, stage: str, done: int, total: int) -> None:
        if shiboken6.isValid(self):
            self._doc.read_moved(ticket, stage, done, total)

    def _on_download_moved(self, ticket: int, done: int, total: int) -> None:
        if shiboken6.isValid(self):
            self._doc.download_moved(ticket, done, total)

    def _on_download_finished(self, ticket: int, copy: CachedCopy) -> None:
        if shiboken6.isValid(self) and not self._doc.closed:
            self._doc.download_finished(ticket, copy)

    def _on_download_failed(self, ticket: int, exc: Exception) -> None:
        if shiboken6.isValid(self) and not self._doc.closed:
            self._doc.download_failed(ticket, exc)

    def _is_current(self, ticket: int) -> bool:
        """False for a stale result, or once the tab is closed or deleted."""
        return self._doc.is_current(ticket) and shiboken6.isValid(self)

    def _on_peek_finished(self, ticket: int, index: CheckpointIndex) -> None:
        if not self._is_current(ticket) or not self._doc.peek_finished(ticket, index):
            _release_trees_later()  # a read cancelled or outrun by another: its tree is let go
            return
        self._after_tree_painted(lambda: self._index_keys(ticket, index))

    def _index_keys(self, ticket: int, index: CheckpointIndex) -> None:
        """The filter's key index and the optimizer rows' notes, off the GUI thread."""
        if not self._is_current(ticket):
            return
        self._runner.start(
            lambda: KeyIndex(index.root),
            lambda keys: self._on_key_index(ticket, keys),
            lambda _exc: None,  # the filter builds its own on first use
        )
        self._runner.start(
            lambda: map_optimizers(index),
            lambda maps: self._on_optimizer_maps(ticket, maps),
            lambda _exc: None,  # no notes in the tree; the breakdown computes its own
        )

    def _on_peek_failed(self, ticket: int, exc: Exception) -> None:
        _release_trees_later()  # what the failed read made is let go
        if self._is_current(ticket):
            self._doc.peek_failed(ticket, exc)

    def _on_key_index(self, ticket: int, keys: KeyIndex) -> None:
        if self._is_current(ticket):
            self.proxy.set_key_index(keys)

    def _submit_load(self, request: LoadRequest) -> EngineJob:
        """Start the document's load in the engine; its answer goes back to the document."""
        assert self._engine is not None
        doc = self._doc
        job = self._engine.submit(request, owner=self)
        job.finished.connect(lambda reply: doc.load_finished(job, reply))
        job.failed.connect(lambda failure: doc.load_failed(job, failure))
        job.cancelled.connect(lambda: doc.load_cancelled(job))
        return job

    # -- drawing the document ----------------------------------------------------------------

    def _render(self) -> None:
        """Draw what the document says; each part is touched only when what it shows changed."""
        doc = self._doc
        if doc.closed or not shiboken6.isValid(self):
            return
        if doc.index is not None and doc.index is not self._shown_index:
            self._show_tree(doc.index)
        self._render_scan()
        self._render_busy()
        self._render_status()
        self._render_error()
        self._render_devices()
        self._show_question(doc.question)
        failure = doc.failure if doc.state is DocumentState.FAILED else None
        if failure is not None and failure is not self._shown_failure:
            kind = failure.kind.value
            self._signals.append(lambda: self.load_failed.emit(kind))
        self._shown_failure = failure
        signals, self._signals = self._signals, []
        for emit in signals:
            emit()
        self.state_changed.emit()

    def _render_busy(self) -> None:
        doc = self._doc
        if doc.state is DocumentState.PEEKING:
            stage, done, total = doc.read_progress
            if doc.remote:
                host = escape_text(urlsplit(self.shown_path).hostname or self.shown_path)
                text = self.tr("Reading {name} from {host}…").format(name=self.display_name, host=host)
            elif stage == PICKLE:
                text = self.tr("Reading {name}: its pickle…").format(name=self.display_name)
            elif stage == TREE:
                text = self.tr("Reading {name}: laying out its tree…").format(name=self.display_name)
            else:
                text = self.tr("Reading {name}…").format(name=self.display_name)
            self.busy.show_busy(text, done, total if stage == PICKLE else 0)
        elif doc.state is DocumentState.DOWNLOADING:
            done, total = doc.download_progress
            self.busy.show_busy(
                self.tr("Downloading {name}: {done} of {total}…").format(
                    name=self.display_name, done=format_bytes(done), total=format_bytes(total)
                ),
                done,
                total,
            )
        elif doc.state is DocumentState.LOADING:
            where = map_location_label(format_map_location(doc.options.map_location))
            self.busy.show_busy(self.tr("Loading with torch (map location: {where})…").format(where=where))
        else:
            self.busy.hide_busy()

    def _render_status(self) -> None:
        """The line under the summary: what the last load did, or why there is none. Statistics
        of every tensor write there too, and stay until the load's state changes."""
        doc = self._doc
        key = (doc.state, doc.loaded, doc.trusted)
        if doc.state is DocumentState.LOADED:
            text = self._load_text()
        else:
            text = _tr(_STATE_LINES[doc.state]) if doc.state in _STATE_LINES else ""
            if doc.state is DocumentState.SHOWN and doc.remote:
                text = _tr(_REMOTE_SHOWN if doc.can_download else _REMOTE_SET_SHOWN)
                if self._engine is None:
                    text = _tr(_REMOTE_NO_ENGINE)
        offer = doc.state is DocumentState.SHOWN and Action.DOWNLOAD in doc.actions
        self.download_button.setVisible(offer)
        if key == self._shown_status and (
            text == self._status_text or self.load_label.text() != self._status_text
        ):
            return
        self._shown_status, self._status_text = key, text
        self.load_label.setText(text)
        self.load_label.setVisible(bool(text))

    def _load_text(self) -> str:
        """What the last load did: where, how long the user waited, what moved, what was allowed."""
        doc = self._doc
        assert doc.loaded is not None
        reply = doc.loaded
        where = map_location_label(format_map_location(doc.options.map_location))
        took = wait_text(doc.waited, reply.seconds, self.tr("torch.load itself:"))
        text = self.tr("Loaded with torch (map location: {where}) in {time}").format(where=where, time=took)
        moved = reply.moved
        if moved:
            for target in sorted(set(moved.values())):
                lacking = sorted(escape_text(s) for s, t in moved.items() if t == target)
                text += self.tr(
                    "; saved on {devices}, which this machine lacks, so loaded on {target}"
                ).format(devices=", ".join(lacking), target=target)
        options = doc.load_options
        if not options.weights_only:
            text += self.tr("; trusted: weights_only=False, pickle module {module}").format(
                module=options.pickle_module or "pickle"
            )
        elif options.allowed_globals:
            text += self.tr("; allowed for this tab: {names}").format(
                names=", ".join(escape_text(n) for n in options.allowed_globals)
            )
        copy = doc.local_copy
        if copy is not None:
            when = f"{copy.downloaded:%Y-%m-%d %H:%M}"
            text += (
                self.tr("; using the copy downloaded on {date}").format(date=when)
                if copy.reused
                else self.tr("; from the copy just downloaded into the cache folder")
            )
        return text + self.tr(".")

    def _render_error(self) -> None:
        """The error panel: a sentence about the file, details, and the actions the state offers."""
        doc = self._doc
        message, details = self._error_text()
        actions = [a for a in doc.actions if doc.question is None or a not in _QUESTION_ACTIONS]
        if (
            doc.state is DocumentState.REFUSED
            and doc.refusal is not None
            and doc.refusal.kind == ErrorKind.DANGEROUS
        ):
            message = None  # the red banner says it, with its own Trust button
        buttons = [(self._action_label(a), a) for a in actions]
        key = (doc.state, message, details, tuple(buttons))
        if key == self._shown_error:
            return
        self._shown_error = key
        if message is None:
            self.error_panel.clear()
            return
        self.error_panel.show_error(message, details, [(label, self._action_slot(a)) for label, a in buttons])

    def _action_slot(self, action: Action) -> Callable[[], None]:
        """A slot with no arguments (a button's ``clicked`` would hand a default argument ``checked``)."""
        return lambda: self._perform(action)

    def _error_text(self) -> tuple[str | None, str | None]:
        """The error panel's sentence and details for the document's state (``None``: no panel)."""
        doc = self._doc
        state = doc.state
        if state is DocumentState.UNREADABLE and doc.read_error is not None:
            exc = doc.read_error
            if isinstance(exc, CheckpointError):
                return exc.message, exc.details
            message = self.tr("{name} could not be read because of an unexpected error.").format(
                name=self.display_name
            )
            return message, _traceback_text(exc)
        if state is DocumentState.OPEN_CANCELLED:
            return self.tr("Opening {name} was cancelled.").format(name=self.display_name), None
        if state is DocumentState.DOWNLOAD_CANCELLED:
            return self.tr("Downloading {name} was cancelled; nothing was kept in the cache folder.").format(
                name=self.display_name
            ), None
        if state is DocumentState.DOWNLOAD_FAILED and isinstance(doc.download_error, CheckpointError):
            return doc.download_error.message, doc.download_error.details
        if state is DocumentState.DOWNLOAD_FAILED and doc.download_error is not None:
            message = self.tr("{name} could not be downloaded because of an unexpected error.").format(
                name=self.display_name
            )
            return message, _traceback_text(doc.download_error)
        if state is DocumentState.CANCELLED:
            return self.tr("Loading with torch was cancelled."), None
        if state is DocumentState.REFUSED and doc.refusal is not None:
            refusal = doc.refusal
            if refusal.kind == ErrorKind.TORCHSCRIPT:
                sentence = _tr(_KIND_SENTENCES[ErrorKind.TORCHSCRIPT]).format(name=f"“{self.display_name}”")
                return sentence, refusal.details
            return refusal.message, refusal.details
        if state is DocumentState.FAILED and doc.failure is not None:
            return self._failure_text(), doc.failure.details
        return None, None

    def _failure_text(self) -> str:
        """The engine's sentence (or the kind's own), and the globals a weights-only refusal names."""
        failure = self._doc.failure
        assert failure is not None
        message = failure.message
        if not message:
            template = _KIND_SENTENCES.get(failure.kind, _KIND_SENTENCES[ErrorKind.OTHER])
            message = _tr(template).format(name=self.display_name)
        names = [escape_text(n) for n in unique_names(failure.globals)]
        if failure.kind is ErrorKind.WEIGHTS_ONLY and names and not all(n in message for n in names):
            message += " " + self.tr("It references: {names}.").format(names=", ".join(names))
        return message

    def _action_label(self, action: Action) -> str:
        state = self._doc.state
        if action is Action.LOAD_ON_SUGGESTED:
            failure = self._doc.failure
            device = failure.suggest if failure is not None else None
            return _tr(_LOAD_ON).format(device=escape_text(device or ""))
        if (
            (action is Action.OPEN_AGAIN and state is DocumentState.UNREADABLE)
            or (action is Action.LOAD_AGAIN and state is DocumentState.FAILED)
            or (action is Action.DOWNLOAD and state is DocumentState.DOWNLOAD_FAILED)
        ):
            return _tr(_TRY_AGAIN)
        return _tr(_ACTION_LABELS[action])

    def _render_devices(self) -> None:
        """The "Loaded on" column: filled from the last load's answer, empty in any other state."""
        doc = self._doc
        reply = doc.loaded if doc.state is DocumentState.LOADED else None
        if reply is self._shown_devices or self.model is None:
            return
        self._shown_devices = reply
        self.model.set_loaded_devices(dict(reply.devices) if reply is not None else {})
        if reply is not None:
            self._signals.append(self.load_finished.emit)

    def _render_scan(self) -> None:
        """The verdict badge, and the red banner for a file with dangerous globals."""
        doc = self._doc
        judged = doc.verdict
        if judged is None or self.index is None:
            return
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
        elif doc.trusted:
            message = self.tr(
                "You trusted {name} in this tab, so it is loaded with weights_only=False "
                "and its pickle may call {globals}."
            ).format(name=self.display_name, globals=listed)
        else:
            message = self.tr(
                "{name} references {globals}, which can run code on this computer. "
                "It is shown from its static read only and is not handed to torch."
            ).format(name=self.display_name, globals=listed)
        asking = isinstance(doc.question, TrustQuestion)
        self.danger_banner.show_message(message, can_trust=not doc.trusted and not asking)

    def _show_question(self, question: Question | None) -> None:
        """The pending question's panel in this tab (built once per question), or none."""
        if question is self._shown_question and (question is None) == (self.safety_question is None):
            return
        old, self.safety_question = self.safety_question, None
        if old is not None:
            old.hide()
            old.deleteLater()
        self._shown_question = question
        focus, self._focus_question = self._focus_question, False
        if question is None:
            return
        panel: AllowGlobalsQuestion | TrustFileQuestion
        if isinstance(question, AllowQuestion):
            panel = AllowGlobalsQuestion(
                self.display_name, list(question.needed), list(question.never_allowed), self
            )
        else:
            modules = self._engine.pickle_modules if self._engine is not None else []
            panel = TrustFileQuestion(
                self.display_name, list(question.will_run), modules, self, holds_code=question.holds_code
            )
        panel.answered.connect(lambda choice: self._on_question_answered(question, panel, choice))
        if isinstance(panel, AllowGlobalsQuestion):
            panel.copy_code_button.clicked.connect(self.copy_loading_code)
        self._question_slot.addWidget(panel)
        self.safety_question = panel
        if focus:
            panel.focus_safe_choice()

    # -- the tree ----------------------------------------------------------------------------

    def _show_tree(self, index: CheckpointIndex) -> None:
        self._shown_index = index
        self._shown_devices = None
        self._all_open = False
        old, self.model = self.model, CheckpointTreeModel(index.root, self, index.saved_devices())
        self.proxy.setSourceModel(self.model)
        if old is not None:  # the file read again: the tree shown before goes with its model
            old.destroyed.connect(_release_trees_later)
            old.deleteLater()
        self.summary_label.setText(summary_text(index))
        self.summary_label.setToolTip(escape_text(index.path))
        self.summary_label.show()
        self.notes_label.setText("; ".join(index.warnings))
        self.notes_label.setVisible(bool(index.warnings))
        self._stretch.hide()
        self.tree_area.show()
        self._after_tree_painted(lambda: self._read_card(index))
        self._expand_initial()
        for column in (Column.NONFINITE, Column.NORM):  # shown once statistics are computed
            self.columns.set_hidden(column, True)
        self.columns.set_hidden(Column.SHARD, not index.format.several_files)
        self.columns.apply(self.model)
        self.code_files_button.setVisible(index.format.holds_code)
        self._signals.append(self.tree_shown.emit)

    def _after_tree_painted(self, work: Callable[[], None]) -> None:
        """``work`` once the tree just shown is on screen (at once when this tab is not), so what it
        starts costs the tree's first paint nothing."""
        if self.tree.isVisible():
            after_paint(self.tree.viewport(), work)
        else:
            work()

    def _read_card(self, index: CheckpointIndex) -> None:
        """The model card, off the GUI thread: it passes over every tensor row."""

        def read() -> ModelCard:
            from inspector.core.model_card import read_model_card

            return read_model_card(index)

        self._runner.start(read, lambda card: self._on_model_card(index, card), lambda _exc: None)

    def _on_model_card(self, index: CheckpointIndex, card: ModelCard) -> None:
        if shiboken6.isValid(self) and self._shown_index is index:
            self.model_card.show_card(index, card, self.load_options)

    # -- looking inside tensors ------------------------------------------------------------

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = current.siblingAtColumn(Column.NAME).data(ItemRole.NodeRole) if current.isValid() else None
        self.detail.show_node(self.path, node if node is not None and node.tensor is not None else None)

    def _on_stats_computed(self, path: tuple[PathPart, ...], stats: dict[str, Any]) -> None:
        if self.model is not None and not self._doc.closed:
            self.model.set_tensor_stats({path: stats})
            self._show_stats_columns()

    def _show_stats_columns(self) -> None:
        if self.model is not None:
            self.columns.show_columns([Column.NONFINITE, Column.NORM], self.model)

    def compute_all_stats(self) -> bool:
        """Statistics for every tensor in the engine (progress and Cancel above the tree)."""
        if self.index is None or self._doc.closed:
            return False
        return self.stats_all.start(self.path)

    def _on_stats_all_finished(self, reply: StatsAllReply) -> None:
        if self.model is None or self._doc.closed:
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

    def _on_optimizer_maps(self, ticket: int, maps: list[OptimizerMap]) -> None:
        if not self._is_current(ticket) or self.model is None:
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
        from inspector.gui.code_files_dialog import CodeFilesDialog  # when first opened

        self.code_files = CodeFilesDialog(self.path, self._runner, self)
        self.code_files.show()
        return self.code_files

    def expand_all(self) -> None:
        self.tree.expandAll()

    def collapse_all(self) -> None:
        self.tree.collapseAll()
        self._all_open = False

    def _row_closed(self, _index: QModelIndex) -> None:
        self._all_open = False

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
            changed = self.proxy.set_filter(text, mode)
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
            self.collapse_all()
            self._expand_initial()
        elif self.index.tensor_count <= _EXPAND_LIMIT:
            if changed or not self._all_open:  # (the same rows, all open: expanding costs a walk of them)
                self.tree.expandAll()
                self._all_open = True
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
        assert self.model is not None
        for row in range(self.proxy.rowCount()):
            top = self.proxy.index(row, 0)
            if self.model.rowCount(self.proxy.mapToSource(top)) <= _WIDE_LIMIT:  # (the proxy's count
                self.tree.expand(top)  # would map a closed row's children; no filter is on here)

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

    def loading_code_text(self) -> str:
        """The code that loads this file as the tab shows it (its options, weights-only, the globals
        the file needs allowed), or the sentence why no safe code exists."""
        if self.index is None:
            return ""
        written = loading_code(self.index, self.options)
        return written.code or escape_text(written.reason)

    def copy_loading_code(self) -> None:
        text = self.loading_code_text()
        if text:
            QGuiApplication.clipboard().setText(text)

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
        menu.addAction(self.tr("Copy loading code"), self.copy_loading_code)
        menu.addSeparator()
        menu.addAction(self.tr("Expand all"), self.expand_all)
        menu.addAction(self.tr("Collapse all"), self.collapse_all)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.tree.viewport().mapToGlobal(pos))
