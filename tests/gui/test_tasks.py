"""Work run off the GUI thread lets go of what it captured once its result is delivered."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from inspector.gui.tasks import TaskRunner


class _Tree:
    """Stands for what a task's work captures (a file's tree)."""


def _start_two(runner: TaskRunner, results: list[object], errors: list[object]) -> weakref.ref[_Tree]:
    """A task that returns the tree it captured, and one that fails after capturing it."""
    tree = _Tree()
    runner.start(lambda: tree, lambda r: results.append(type(r)), errors.append)
    runner.start(lambda: [tree][1], results.append, lambda exc: errors.append(type(exc)))
    return weakref.ref(tree)


def test_what_a_task_captured_is_freed_once_its_result_is_delivered(qtbot: Any, runner: TaskRunner) -> None:
    """Qt's pool keeps every task object it ran: a task still holding its work would keep each tree
    ever read alive, after its tab was closed."""
    results: list[object] = []
    errors: list[object] = []
    alive = _start_two(runner, results, errors)
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=10_000)
    assert results == [_Tree] and errors == [IndexError]
    gc.collect()
    assert alive() is None
