"""The "Compute statistics for all" row: one ``stats-all`` engine job with progress and Cancel."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from inspector.core.formatting import format_bytes
from inspector.engine.protocol import Failure, Progress, StatsAllReply, StatsAllRequest
from inspector.gui.engine_bridge import EngineBridge, EngineJob


class StatsAllRow(QWidget):
    """Runs statistics over every tensor of one file in the engine; hidden while idle."""

    finished = Signal(object)  # the StatsAllReply
    failed = Signal(str)

    def __init__(self, engine: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsAllRow")
        self._engine = engine
        self._job: EngineJob | None = None
        self.label = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(260)
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton()
        self.cancel_button.setObjectName("statsAllCancel")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        layout.addStretch(1)
        self._retranslate()
        self.hide()

    def _retranslate(self) -> None:
        self.cancel_button.setText(self.tr("Cancel"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self._retranslate()
        super().changeEvent(event)

    @property
    def running(self) -> bool:
        return self._job is not None

    def start(self, path: str) -> bool:
        """Start the job for ``path``; False when there is no engine or one already runs."""
        if self._engine is None or self._job is not None:
            return False
        self._job = self._engine.submit(StatsAllRequest(path), owner=self)
        self._job.progress.connect(self._on_progress)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self.progress.setValue(0)
        self.label.setText(self.tr("Computing statistics for every tensor…"))
        self.show()
        return True

    def cancel(self) -> None:
        """Stop the job; the engine stops it between tensors, and the row forgets it now."""
        job, self._job = self._job, None
        if job is not None:
            job.discard()
        self.hide()

    def _on_progress(self, step: Progress) -> None:
        self.progress.setValue(int(1000 * step.fraction))
        self.label.setText(
            self.tr("Computing statistics: {0} of {1}…").format(
                format_bytes(step.done), format_bytes(step.total)
            )
        )

    def _on_finished(self, reply: StatsAllReply) -> None:
        self._job = None
        self.hide()
        self.finished.emit(reply)

    def _on_failed(self, failure: Failure) -> None:
        self._job = None
        self.hide()
        self.failed.emit(failure.message or self.tr("Statistics could not be computed."))
