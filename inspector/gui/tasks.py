"""The one way the window runs work off the GUI thread (after git-cola's ``qtutils.Task``).

A ``Task`` is a ``QRunnable`` whose signals live on a ``QObject`` created in the GUI thread, so
results arrive there by queued connection. ``TaskRunner`` keeps a strong reference to every task
until its result is delivered; callers drop stale results with a generation token of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class TaskSignals(QObject):
    """Carries a task's outcome back to the thread that created the task."""

    finished = Signal(object, object)  # task, result
    failed = Signal(object, object)  # task, exception


class Task(QRunnable):
    """Calls ``fn()`` on a pool thread and emits its result or the exception it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the runner owns it until the result is delivered
        self.fn: Callable[[], Any] | None = fn
        self.signals = TaskSignals()

    def run(self) -> None:
        fn = self.fn
        assert fn is not None  # (dropped only once its result is delivered)
        try:
            result = fn()
        except Exception as exc:  # delivered to the caller, which turns it into a sentence
            self.signals.failed.emit(self, exc)
        else:
            self.signals.finished.emit(self, result)


class TaskRunner(QObject):
    """Starts tasks on its own thread pool and holds them until their result is delivered."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._tasks: dict[Task, tuple[Callable[[Any], None], Callable[[Exception], None]]] = {}

    def start(
        self,
        fn: Callable[[], Any],
        on_finished: Callable[[Any], None],
        on_failed: Callable[[Exception], None],
    ) -> Task:
        task = Task(fn)
        self._tasks[task] = (on_finished, on_failed)
        task.signals.finished.connect(self._on_task_finished)
        task.signals.failed.connect(self._on_task_failed)
        self._pool.start(task)
        return task

    def active_count(self) -> int:
        """Tasks started whose result has not been delivered yet."""
        return len(self._tasks)

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until every pool thread is idle (for shutdown and tests)."""
        return bool(self._pool.waitForDone(msecs))

    def shutdown(self) -> None:
        """Drop queued tasks, wait for running ones, forget every pending result."""
        self._pool.clear()
        self._pool.waitForDone()
        self._tasks.clear()

    def _on_task_finished(self, task: Task, result: Any) -> None:
        task.fn = None  # Qt's pool keeps the task object: what its work captured (a tree) is let go
        callbacks = self._tasks.pop(task, None)
        if callbacks is not None:
            callbacks[0](result)

    def _on_task_failed(self, task: Task, exc: Exception) -> None:
        task.fn = None
        callbacks = self._tasks.pop(task, None)
        if callbacks is not None:
            callbacks[1](exc)
