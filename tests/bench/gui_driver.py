"""Runs the real window on one file and reports timings as one JSON line.

Started as a fresh process (by ``bench_open.py``: the window offscreen; by ``bench_startup.py`` with
``--startup``: the app's own start-up, ``inspector.app.run_gui``, under the display it is given), so
"tree shown" includes the interpreter's start, every import and the static read, exactly as a
user's double-click pays them.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any


def startup(path: str) -> int:
    """The app as the ``checkpoint-inspector FILE`` command starts it; times of the first paint of
    the tree with the window titled after the file, and of "Loaded on" filled."""
    import inspector.cli  # noqa: F401  (what the command imports before it starts the window)
    from inspector.app import run_gui

    out: dict[str, object] = {}

    def on_window(window: Any) -> None:
        from PySide6.QtCore import QEvent, QObject
        from PySide6.QtWidgets import QApplication

        class FirstPaint(QObject):
            def eventFilter(self, watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint and "tree_painted_at" not in out:
                    out["tree_painted_at"] = time.time()
                    out["cpu_at_paint"] = time.process_time()
                    out["cpu_at_paint"] = time.process_time()
                    out["title"] = window.windowTitle()
                    out["rows"] = tab.proxy.rowCount()
                return False

        painted = FirstPaint(window)

        def on_tree_shown() -> None:
            tab.tree.viewport().installEventFilter(painted)
            tab.tree.viewport().update()

        def on_loaded() -> None:
            out["loaded_at"] = time.time()
            assert tab.model is not None
            out["loaded_on"] = [tab.model.loaded_device(n) for n in tab.model.root.tensors()][:1]
            out["torch_in_gui"] = "torch" in sys.modules
            QApplication.instance().quit()  # type: ignore[union-attr]

        def on_failed(kind: str) -> None:
            out["load_failed"] = kind
            on_loaded()

        def on_tab() -> None:
            nonlocal tab
            if tab is None and window.current_tab() is not None:
                tab = window.current_tab()
                tab.tree_shown.connect(on_tree_shown)
                tab.load_finished.connect(on_loaded)
                tab.load_failed.connect(on_failed)

        tab: Any = None
        window.tabs.currentChanged.connect(on_tab)

    status = run_gui([os.path.abspath(path)], [sys.argv[0]], on_window=on_window)
    out["status"] = status
    print(json.dumps(out))
    return 0


def main() -> int:
    if sys.argv[1] == "--startup":
        return startup(sys.argv[2])
    path, filter_text = sys.argv[1], sys.argv[2]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.engine.client import EngineClient
    from inspector.gui.engine_bridge import EngineBridge
    from inspector.gui.main_window import MainWindow

    app = QApplication([sys.argv[0]])
    settings = QSettings(os.path.join(os.environ["BENCH_TMP"], "settings.ini"), QSettings.Format.IniFormat)
    engine = EngineBridge(EngineClient)
    window = MainWindow(settings, engine)
    window.resize(1400, 900)
    window.show()
    QTimer.singleShot(0, engine.start)
    tab = window.open_path(path)
    out: dict[str, float | int | str] = {}

    def on_tree_shown() -> None:
        out["tree_shown_at"] = time.time()
        out["rss_tree_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def measure_filter() -> None:
        """Keystrokes as a user types them once the tree is up: the text grows, then is cleared."""
        times = []
        for text in (filter_text[:1], filter_text[:3], filter_text, ""):
            t = time.perf_counter()
            tab.filter_edit.setText(text)
            tab.apply_filter()
            app.processEvents()  # the repaint a keystroke costs
            times.append(time.perf_counter() - t)
        out["filter_ms_max"] = max(times[:3]) * 1000
        out["filter_ms_each"] = [round(x * 1000) for x in times]
        out["filter_clear_ms"] = times[3] * 1000

    def on_loaded() -> None:
        out["loaded_at"] = time.time()
        measure_filter()
        out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["torch_in_gui"] = "torch" in sys.modules
        app.quit()

    def on_failed(kind: str) -> None:
        out["load_failed"] = kind
        on_loaded()

    tab.tree_shown.connect(on_tree_shown)
    tab.load_finished.connect(on_loaded)
    tab.load_failed.connect(on_failed)
    QTimer.singleShot(600_000, app.quit)
    app.exec()
    engine.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
