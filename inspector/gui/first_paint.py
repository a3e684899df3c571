"""Work that waits for a widget's paint: what the window does once its tree is on screen, so that it
costs the first paint of the tree nothing."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

#: Work waiting for a paint that does not come (a window that is never exposed) runs this late at most.
AT_THE_LATEST_MS = 1000


class _AfterPaint(QObject):
    """Runs its work once, just after the first paint of ``widget`` that ``ready`` accepts."""

    def __init__(
        self, widget: QWidget, work: Callable[[], None], ready: Callable[[], bool], latest_ms: int
    ) -> None:
        super().__init__(widget)
        self._widget = widget
        self._work: Callable[[], None] | None = work
        self._ready = ready
        self._timer = QTimer(self)  # goes with this object, and so with the widget
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.run)
        self._timer.start(latest_ms)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._work is not None and self._ready():
            self._timer.start(0)  # once this paint is done
        return False

    def run(self) -> None:
        work, self._work = self._work, None
        if work is not None:
            self._widget.removeEventFilter(self)
            self.deleteLater()
            work()


def after_paint(
    widget: QWidget,
    work: Callable[[], None],
    ready: Callable[[], bool] = lambda: True,
    latest_ms: int = AT_THE_LATEST_MS,
) -> None:
    """Run ``work`` once: just after ``widget``'s next paint for which ``ready()`` holds, or after
    ``latest_ms`` if no such paint came (a window never exposed)."""
    _AfterPaint(widget, work, ready, latest_ms)
