"""The start-up baseline: a bare PySide6 ``QMainWindow`` with one ``QTreeView``, titled after a file.

Started by ``bench_startup.py`` as a fresh process under the same display as the app; prints, as
one JSON line, when the tree's first paint happened (what the app's "tree shown" is compared with).
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QApplication, QMainWindow, QTreeView

    app = QApplication([sys.argv[0]])
    window = QMainWindow()
    window.setWindowTitle(f"{os.path.basename(sys.argv[1])} — bare window")
    model = QStandardItemModel()
    model.setHorizontalHeaderLabels(["Name", "Shape", "DType"])
    model.appendRow([QStandardItem(os.path.basename(sys.argv[1])), QStandardItem(""), QStandardItem("")])
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
