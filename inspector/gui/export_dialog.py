"""File ▸ Export…: choose format, device, dtype and key rules; preview before → after; run it.

The preview comes from ``inspector.core.export_plan.map_keys`` on the tab's static tree (no
torch); the export itself runs in the engine through the ``EngineBridge``. An export that
``torch.load``s its source carries the tab's answers (globals allowed, or the file trusted) and is
judged by the safety policy as a load in the tab is; one that reads the file directly needs neither.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import (
    FILE_SUFFIXES,
    FORMATS,
    TARGET_DTYPES,
    TARGET_SUFFIXES,
    ExportPlan,
    ExportPlanError,
    KeyMapping,
    KeyRule,
    SourceRead,
    format_for_path,
    map_keys,
    parse_size,
    source_read,
    values_summary,
)
from inspector.core.formatting import escape_text, format_bytes
from inspector.core.load_options import LoadOptions, parse_map_location
from inspector.core.model import CheckpointIndex
from inspector.core.safety import load_refusal, verdict_of
from inspector.engine.protocol import ExportReply, ExportRequest, Failure, Progress
from inspector.gui.durations import Clock, wait_text
from inspector.gui.engine_bridge import EngineBridge, EngineJob
from inspector.remote.locations import is_url

PREVIEW_ROWS = 2000  # rows shown in the preview table; the count says how many there are in all
_PREFERRED_SIZE = QSize(960, 720)
_TITLE_BAR = 30  # a window manager's frame above the dialog (pixels)


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


#: The fields' names, in the order they are laid out (their labels are set in ``_retranslate``).
_FIELD_LABELS = ("target", "format", "shard_size", "device", "dtype", "subtree", "existing", "include",
                 "exclude", "strip", "metadata", "rename")  # fmt: skip


class ExportDialog(QDialog):
    """One export of one open checkpoint; stays open while the engine writes, then reports.

    ``load_options`` are the tab's answers for the file when the dialog opened (its allowed globals,
    or ``weights_only=False`` once trusted); without them nothing is allowed or trusted.
    """

    def __init__(
        self,
        index: CheckpointIndex,
        engine: EngineBridge | None,
        parent: QWidget | None = None,
        clock: Clock = time.monotonic,
        load_options: LoadOptions | None = None,
    ) -> None:
        super().__init__(parent)
        self._allowances = load_options if load_options is not None else LoadOptions()
        self._verdict = verdict_of(index)
        self._clock = clock
        self._asked_at = 0.0
        self._source_name = os.path.basename(index.path.rstrip("/"))  # a folder URL ends with /
        self.setWindowTitle(self.tr("Export “{name}”").format(name=escape_text(self._source_name)))
        self._index = index
        self._engine = engine
        self._job: EngineJob | None = None
        self.mapping: KeyMapping | None = None
        self.report: ExportReply | None = None  # what the last export wrote

        stem = os.path.splitext(index.path.rstrip("/"))[0]
        if is_url(index.path):  # a checkpoint read where it lives is exported to this machine
            stem = os.path.join(os.path.expanduser("~"), stem.rpartition("/")[2])
        self.target_edit = QLineEdit(stem + "_export.pth")
        self.browse_button = QPushButton()
        self.browse_button.clicked.connect(self._browse)
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_edit)
        target_row.addWidget(self.browse_button)
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(FORMATS))
        self.device_edit = QLineEdit()
        self.dtype_combo = QComboBox()
        self.dtype_combo.addItem("", None)  # "keep"; item data: the dtype, None keeps it
        for dtype in TARGET_DTYPES:
            self.dtype_combo.addItem(dtype, dtype)
        self.subtree_edit = QLineEdit()
        self.include_edit = QLineEdit()
        self.exclude_edit = QLineEdit()
        self.strip_edit = QLineEdit()
        self.rename_edit = QPlainTextEdit()
        self.rename_edit.setFixedHeight(48)
        self.metadata_edit = QPlainTextEdit("format=pt")
        self.metadata_edit.setFixedHeight(48)
        self.shard_size_edit = QLineEdit()
        self.shard_size_edit.setEnabled(False)
        self.force_box = QComboBox()
        self.force_box.addItems(["", ""])  # refuse / replace, named in _retranslate

        # Two fields a row: the preview below gets the height (a form of twelve rows left it three).
        form = QGridLayout()
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        form.setHorizontalSpacing(10)
        self._field_labels: dict[str, QLabel] = {name: QLabel() for name in _FIELD_LABELS}
        form.addWidget(self._field_labels["target"], 0, 0)
        form.addLayout(target_row, 0, 1, 1, 3)
        pairs = (
            (("format", self.format_combo), ("shard_size", self.shard_size_edit)),
            (("device", self.device_edit), ("dtype", self.dtype_combo)),
            (("subtree", self.subtree_edit), ("existing", self.force_box)),
            (("include", self.include_edit), ("exclude", self.exclude_edit)),
            (("strip", self.strip_edit), ("metadata", self.metadata_edit)),
        )
        for row, pair in enumerate(pairs, start=1):
            for half, (name, field) in enumerate(pair):
                tall = isinstance(field, QPlainTextEdit)  # a label beside a box of lines sits at its top
                align = Qt.AlignmentFlag.AlignTop if tall else Qt.AlignmentFlag.AlignVCenter
                form.addWidget(self._field_labels[name], row, 2 * half, align)
                form.addWidget(field, row, 2 * half + 1)
        form.addWidget(self._field_labels["rename"], len(pairs) + 1, 0, Qt.AlignmentFlag.AlignTop)
        form.addWidget(self.rename_edit, len(pairs) + 1, 1, 1, 3)

        self.preview = QTableWidget(0, 3)
        header = self.preview.horizontalHeader()
        # the keys are what the preview is for: they share the width, the note keeps a column
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 220)
        self.preview.verticalHeader().setDefaultSectionSize(self.preview.fontMetrics().height() + 6)
        self.preview.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary_label = QLabel()
        self.summary_label.setTextFormat(Qt.TextFormat.PlainText)
        self.summary_label.setWordWrap(True)
        self.values_label = QLabel()
        self.values_label.setTextFormat(Qt.TextFormat.PlainText)
        self.values_label.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.note_label = QLabel()  # what is not a problem but keeps Export off (the file just written)
        self.note_label.setTextFormat(Qt.TextFormat.PlainText)
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: palette(placeholder-text);")
        self._written: str | None = None  # the target the last export wrote
        self._target_asked: str | None = None
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.report_label = QLabel()
        self.report_label.setTextFormat(Qt.TextFormat.PlainText)
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        for widget in (self.summary_label, self.values_label, self.problem_label, self.progress,
                       self.report_label, self.note_label, self.buttons):  # fmt: skip
            layout.addWidget(widget)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self.update_preview)
        for edit in (self.target_edit, self.device_edit, self.subtree_edit, self.include_edit,
                     self.exclude_edit, self.strip_edit):  # fmt: skip
            edit.textChanged.connect(self._debounce.start)
        for text_edit in (self.rename_edit, self.metadata_edit):
            text_edit.textChanged.connect(self._debounce.start)
        for combo in (self.dtype_combo, self.force_box):
            combo.currentIndexChanged.connect(self._debounce.start)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self._retranslate()
        self._on_format_changed()
        self.update_preview()
        self.fit_to(self.screen().availableGeometry())

    def fit_to(self, room: QRect) -> None:
        """Open at 960 × 720, or smaller where the screen's free area ``room`` is: the preview gives
        up its height first, so the buttons stay on screen (room is left for the title bar)."""
        width = min(_PREFERRED_SIZE.width(), room.width())
        height = min(_PREFERRED_SIZE.height(), room.height() - _TITLE_BAR)
        self.resize(max(width, self.minimumSizeHint().width()), max(height, self.minimumSizeHint().height()))

    def _retranslate(self) -> None:
        """Every fixed text in the interface language (the preview's lines follow on the next update)."""
        self.setWindowTitle(self.tr("Export “{name}”").format(name=escape_text(self._source_name)))
        labels = {
            "target": self.tr("Target"), "format": self.tr("Format"), "shard_size": self.tr("Shard size"),
            "device": self.tr("Device"), "dtype": self.tr("Dtype (floating tensors)"),
            "subtree": self.tr("Subtree"), "existing": self.tr("Existing target"),
            "include": self.tr("Include"), "exclude": self.tr("Exclude"), "strip": self.tr("Strip prefixes"),
            "metadata": self.tr("Metadata"), "rename": self.tr("Rename rules"),
        }  # fmt: skip
        for name, text in labels.items():
            self._field_labels[name].setText(text)
        self.browse_button.setText(self.tr("Browse…"))
        self.device_edit.setPlaceholderText(self.tr("as saved — or cpu, cuda:0, or cuda:1→cuda:0"))
        self.dtype_combo.setItemText(0, self.tr("keep"))
        self.subtree_edit.setPlaceholderText(self.tr("e.g. model (written in place of the whole file)"))
        self.include_edit.setPlaceholderText(self.tr("globs, comma-separated (empty: everything)"))
        self.strip_edit.setPlaceholderText(self.tr("e.g. module., _orig_mod."))
        self.rename_edit.setPlaceholderText(self.tr("one rule a line, applied in order:  REGEX=>REPLACEMENT"))
        self.metadata_edit.setToolTip(self.tr("safetensors __metadata__: one KEY=VALUE a line"))
        self.shard_size_edit.setPlaceholderText(self.tr("5GB (the most tensor data one shard holds)"))
        self.force_box.setItemText(0, self.tr("refuse to replace an existing file"))
        self.force_box.setItemText(1, self.tr("replace an existing file"))
        self.preview.setHorizontalHeaderLabels([self.tr("before"), self.tr("after"), self.tr("note")])
        self.export_button.setText(self.tr("Export"))
        if self.report is not None:
            self.cancel_button.setText(self.tr("Close"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
            if self._job is None:
                self.update_preview()
        super().changeEvent(event)

    # -- the plan and its preview ------------------------------------------------------------

    def plan(self) -> ExportPlan:
        """The plan the fields describe; ``CheckpointError`` with a sentence for a malformed field."""
        try:
            device = parse_map_location(self.device_edit.text())
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
        renames = tuple(
            KeyRule.parse_rename(line.strip())
            for line in self.rename_edit.toPlainText().splitlines()
            if line.strip()
        )
        metadata: dict[str, str] = {}
        fmt = self.format_combo.currentText()
        max_shard_size = 0
        if fmt == "hf-sharded" and self.shard_size_edit.text().strip():
            try:
                max_shard_size = parse_size(self.shard_size_edit.text())
            except ExportPlanError as exc:
                raise CheckpointError(exc.message) from None
        if fmt in ("safetensors", "hf-sharded"):
            for line in self.metadata_edit.toPlainText().splitlines():
                if not line.strip():
                    continue
                key, sep, value = line.partition("=")
                if not sep or not key.strip():
                    raise CheckpointError(f"“{line}” is not a metadata entry like KEY=VALUE.")
                metadata[key.strip()] = value.strip()
        dtype = self.dtype_combo.currentData()
        loads = source_read(self._index.format, fmt) is SourceRead.TORCH_LOAD  # else no pickle runs
        return ExportPlan(
            source=self._index.path,
            target=self.target_edit.text().strip(),
            format=fmt,
            device=device,
            dtype=dtype,
            subtree=self.subtree_edit.text().strip() or None,
            include=_split(self.include_edit.text()),
            exclude=_split(self.exclude_edit.text()),
            strip_prefixes=_split(self.strip_edit.text()),
            renames=renames,
            metadata=metadata,
            force=self.force_box.currentIndex() == 1,
            max_shard_size=max_shard_size,
            allowed_globals=self._allowances.allowed_globals if loads else (),
            trusted=loads and not self._allowances.weights_only,
        )

    def _refusal(self, plan: ExportPlan) -> str | None:
        """Why the source may not be handed to torch for this plan (the safety policy's answer for a
        load in the tab with the same answers); None when it may, or when it is read directly."""
        if source_read(self._index.format, plan.format) is not SourceRead.TORCH_LOAD:
            return None
        options = LoadOptions(weights_only=not plan.trusted, allowed_globals=plan.allowed_globals)
        refusal = load_refusal(self._source_name, self._verdict, options)
        if refusal is None:
            return None
        return (
            refusal.message
            + " "
            + self.tr(
                "Trust the file in its tab and open Export again, or export to safetensors: its tensors are "
                "read straight from the file, whose pickle is not run, so it needs no trust."
            )
        )

    def update_preview(self) -> None:
        """Recompute before → after from the static tree; the Export button follows the verdict."""
        problems: list[str] = []
        notes: list[str] = []
        self.mapping = None
        try:
            plan = self.plan()
            self.mapping = map_keys(self._index, plan)
            problems = list(self.mapping.problems)
            refusal = self._refusal(plan)
            if refusal is not None:
                problems.append(refusal)
            name = escape_text(os.path.basename(plan.target))
            if not plan.target:
                problems.append(self.tr("Choose a target file."))
            elif os.path.exists(plan.target) and not plan.force and plan.target == self._written:
                notes.append(
                    self.tr("“{name}” is the file just written; to export again, choose another target "
                            "or to replace it.").format(name=name)
                )  # fmt: skip
            elif os.path.exists(plan.target) and not plan.force:
                problems.append(self.tr("“{name}” exists; choose to replace it or rename.").format(name=name))
        except CheckpointError as exc:
            problems.append(exc.message)
        self._fill_preview()
        self.problem_label.setText(" ".join(problems))
        self.problem_label.setVisible(bool(problems))
        self.note_label.setText(" ".join(notes))
        self.note_label.setVisible(bool(notes))
        self.export_button.setEnabled(not problems and not notes and self._job is None)

    def _fill_preview(self) -> None:
        mapping = self.mapping
        rows = mapping.tensors[:PREVIEW_ROWS] if mapping is not None else []
        collided = {s for sources in (mapping.collisions.values() if mapping else []) for s in sources}
        self.preview.setRowCount(len(rows))
        for row, t in enumerate(rows):
            note = []
            if t.converted:
                note.append(f"{t.dtype} → {t.output_dtype}")
            if t.output_device != t.saved_device:
                note.append(f"{escape_text(t.saved_device)} → {escape_text(t.output_device)}")
            if t.alias_of:
                note.append(self.tr("alias of {key} (stored once)").format(key=escape_text(t.alias_of)))
            if t.cloned_from:
                note.append(self.tr("copied apart from {key}").format(key=escape_text(t.cloned_from)))
            if t.source_key in collided:
                note.append(self.tr("COLLISION"))
            unnamed = self.tr("(tensor)")
            before = escape_text(t.source_key) if t.source_key else unnamed
            after = escape_text(t.output_key) if t.output_key else unnamed
            for col, text in enumerate((before, after, ", ".join(note))):
                self.preview.setItem(row, col, QTableWidgetItem(text))
        if mapping is None:
            self.summary_label.setText("")
            self.values_label.setText("")
            return
        summary = self.tr("{written} tensors written, {left} left out; about {size}.").format(
            written=f"{len(mapping.tensors):,}",
            left=f"{len(mapping.excluded):,}",
            size=format_bytes(mapping.estimated_bytes),
        )
        self.summary_label.setText(" ".join([summary, *mapping.notes]))  # how the source is read
        values = [escape_text(line) for line in values_summary(mapping)]
        self.values_label.setText(
            self.tr("Other values — {values}").format(
                values="; ".join(values[:12]) + (" …" if len(values) > 12 else "")
            )
            if values
            else ""
        )

    def _on_format_changed(self) -> None:
        fmt = self.format_combo.currentText()
        safetensors = fmt in ("safetensors", "hf-sharded")  # an HF set is written as safetensors shards
        self.metadata_edit.setEnabled(safetensors)
        self.device_edit.setEnabled(not safetensors)
        self.shard_size_edit.setEnabled(fmt == "hf-sharded")
        if safetensors:
            self.device_edit.clear()
        stem, ext = os.path.splitext(self.target_edit.text())
        if ext.lower() in FILE_SUFFIXES and ext != TARGET_SUFFIXES[fmt]:
            self.target_edit.setText(stem + TARGET_SUFFIXES[fmt])  # an HF set's target is a folder
        self.update_preview()

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export to"), self.target_edit.text())
        if path:
            self.target_edit.setText(path)
            self.format_combo.setCurrentText(format_for_path(path))

    # -- running -----------------------------------------------------------------------------

    def start_export(self) -> None:
        self.update_preview()
        if not self.export_button.isEnabled() or self._engine is None:
            if self._engine is None:
                self.problem_label.setText(self.tr("The engine is not running, so nothing can be exported."))
            return
        plan = self.plan()
        self._target_asked = plan.target
        self._asked_at = self._clock()
        self._job = self._engine.submit(ExportRequest(plan), owner=self)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self._job.cancelled.connect(self._on_cancelled)
        self.export_button.setEnabled(False)
        self.report_label.setText(self.tr("Exporting…"))
        self.progress.setValue(0)
        self.progress.show()

    def cancel(self) -> None:
        """Stop a running export (the engine stops between tensors and removes its partial file);
        with none running, close the dialog."""
        if self._job is not None:
            self._job.cancel()
            self.report_label.setText(self.tr("Cancelling…"))
            return
        self.reject()

    @property
    def running(self) -> bool:
        return self._job is not None

    @property
    def job(self) -> EngineJob | None:
        """The export running now, if any."""
        return self._job

    def _on_progress(self, step: Progress) -> None:
        self.progress.setValue(int(1000 * step.fraction))

    def _on_finished(self, reply: ExportReply) -> None:
        self._job = None
        self.report = reply
        self._written = self._target_asked
        self.progress.setValue(1000)
        wrote = {
            "tensors": f"{reply.tensors:,}",
            "size": format_bytes(reply.bytes),
            "time": wait_text(self._clock() - self._asked_at, reply.seconds, self.tr("writing:")),
        }
        report = self.tr("Wrote {tensors} tensors, {size} in {time}; verified.").format(**wrote)
        if reply.values_dropped:
            report += " " + self.tr("Not written: {values}.").format(
                values=", ".join(escape_text(v) for v in reply.values_dropped)
            )
        self.report_label.setText(report)
        self.cancel_button.setText(self.tr("Close"))
        self.update_preview()

    def _on_failed(self, failure: Failure) -> None:
        self._end(failure.message or self.tr("The export failed."))

    def _on_cancelled(self) -> None:
        self._end(self.tr("The export was cancelled; nothing was written."))

    def _end(self, sentence: str) -> None:
        self._job = None
        self.progress.hide()
        self.report_label.setText(sentence)
        self.update_preview()
