"""The start-up baselines: a bare PySide6 ``QMainWindow`` with one ``QTreeView``, titled after a file;
with ``--read``, the same window reading the file and showing its top-level rows.

Started by ``bench_startup.py`` as a fresh process under the same display as the app; prints, as
one JSON line, when the tree's first paint happened (what the app's "tree shown" is compared with).
``--read`` adds the least any window that shows a file's tree must do: the static read (imported
before Qt, as the app does) and the file's top-level rows in a ``QStandardItemModel``, their numbers
right-aligned (which touches PySide's ``Qt`` namespace). Between it and the app lies everything the
app adds (its own tree model, the tab, menus, the load options, the detail panel, the worker).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def main() -> int:
    path, read = sys.argv[1], "--read" in sys.argv[2:]
    rows: list[Any] = []
    if read:
        from inspector.remote.static_read import peek_location

        rows = peek_location(path)[0].root.children

    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QApplication, QMainWindow, QTreeView

    app = QApplication([sys.argv[0]])
    window = QMainWindow()
    window.setWindowTitle(f"{os.path.basename(path)} — {'reading' if read else 'bare'} window")
    model = QStandardItemModel()
    model.setHorizontalHeaderLabels(["Name", "Shape", "DType"])
    if not read:
        model.appendRow([QStandardItem(os.path.basename(path)), QStandardItem(""), QStandardItem("")])
    else:
        from PySide6.QtCore import Qt  # (the bare window never touches the namespace)

        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for node in rows:
            info = node.tensor
            shape = QStandardItem(str(list(info.shape)) if info is not None else f"{node.entries} items")
            shape.setTextAlignment(right)
            model.appendRow([QStandardItem(node.name), shape, QStandardItem(info.dtype if info else "")])
    tree = QTreeView()
    tree.setModel(model)
    window.setCentralWidget(tree)
    out: dict[str, object] = {}

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "tree_painted_at" not in out:
                out["tree_painted_at"] = time.time()
                out["cpu_at_paint"] = time.process_time()
                out["title"] = window.windowTitle()
                QTimer.singleShot(0, app.quit)
            return False

    painted = FirstPaint(window)
    tree.viewport().installEventFilter(painted)
    window.resize(1000, 700)
    window.show()
    app.exec()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
