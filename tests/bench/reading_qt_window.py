"""A second start-up baseline: the bare window plus the least any window that shows a file's tree
has to do — the static read (imported before Qt, as the app does) and the file's top-level rows in
a ``QStandardItemModel``, their numbers right-aligned (which touches PySide's ``Qt`` namespace).

Started by ``bench_startup.py`` like the bare window; prints, as one JSON line, when its tree's
first paint happened. Between it and the app lies everything the app adds (its own tree model, the
tab, menus, the load options, the detail panel, the worker); between it and the bare window, the
read and the rows.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    from inspector.remote.static_read import peek_location

    index = peek_location(sys.argv[1])[0]

    from PySide6.QtCore import QEvent, QObject, Qt, QTimer
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QApplication, QMainWindow, QTreeView

    app = QApplication([sys.argv[0]])
    window = QMainWindow()
    window.setWindowTitle(f"{os.path.basename(sys.argv[1])} — reading window")
    model = QStandardItemModel()
    model.setHorizontalHeaderLabels(["Name", "Shape", "DType"])
    for node in index.root.children:
        info = node.tensor
        shape = QStandardItem(str(list(info.shape)) if info is not None else f"{node.entries} items")
        shape.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        dtype = QStandardItem(info.dtype if info is not None else "")
        model.appendRow([QStandardItem(node.name), shape, dtype])
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
