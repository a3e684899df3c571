"""The "Compute statistics for all" row: one ``stats-all`` engine job with progress and Cancel."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from inspector.core.formatting import format_bytes
from inspector.gui.engine_bridge import EngineBridge


class StatsAllRow(QWidget):
    """Runs statistics over every tensor of one file in the engine; hidden while idle."""

    finished = Signal(object)  # the stats-all result: {"tensors": [{key, path, stats}], "flagged": […]}
    failed = Signal(str)

    def __init__(self, engine: EngineBridge | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsAllRow")
        self._engine = engine
        self._job: int | None = None
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
        if engine is not None:
            engine.job_finished.connect(self._on_job_finished)
            engine.job_failed.connect(self._on_job_failed)
            engine.job_progress.connect(self._on_job_progress)
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
        self._job = self._engine.submit_job("stats-all", {"path": path})
        self.progress.setValue(0)
        self.label.setText(self.tr("Computing statistics for every tensor…"))
        self.show()
        return True

    def cancel(self) -> None:
        job, self._job = self._job, None
        if job is not None and self._engine is not None:
            self._engine.cancel(job)
        self.hide()

    def _on_job_progress(self, job: int, done: object, total: object) -> None:
        if job == self._job and isinstance(done, int) and isinstance(total, int) and total > 0:
            self.progress.setValue(int(1000 * done / total))
            self.label.setText(
                self.tr("Computing statistics: {0} of {1}…").format(format_bytes(done), format_bytes(total))
            )

    def _on_job_finished(self, job: int, result: object) -> None:
        if job != self._job or not isinstance(result, dict):
            return
        self._job = None
        self.hide()
        self.finished.emit(result)

    def _on_job_failed(self, job: int, event: object) -> None:
        if job != self._job:
            return
        self._job = None
        self.hide()
        if isinstance(event, dict) and event.get("kind") != "cancelled":
            self.failed.emit(str(event.get("message") or self.tr("Statistics could not be computed.")))


def stats_by_path(result: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A stats-all result as {tensor path: stats}, for ``CheckpointTreeModel.set_tensor_stats``."""
    return {
        tuple(row.get("path") or ()): row["stats"]
        for row in result.get("tensors") or []
        if isinstance(row.get("stats"), dict)
    }
