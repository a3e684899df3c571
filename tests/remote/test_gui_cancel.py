"""A slow remote read in the window: the tab says it is reading from the host, and Cancel stops the
read at once (the server's timeout is never waited for), then offers to open it again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QPushButton

from inspector.gui.checkpoint_document import DocumentState
from inspector.remote.opening import TIMEOUT_VARIABLE
from tests.remote import test_download_gui
from tests.remote.servers import RangeServer
from tests.remote.test_http import _build

WAIT_MS = test_download_gui.WAIT_MS
gui = test_download_gui.gui  # the window, with an engine that loads as the worker does


def test_cancel_stops_a_read_from_a_silent_server_long_before_its_timeout(
    qtbot: Any,
    http: RangeServer,
    tmp_path: Path,
    gui: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "120")
    main, _, runner = gui
    served = http.add("m.pth", _build(tmp_path, "zip").read_bytes(), silent=True)
    tab = main.open_path(http.url("m.pth"))
    qtbot.waitUntil(lambda: tab.is_busy and len(http.log.requests) == 1, timeout=WAIT_MS)
    assert tab.busy.label.text() == "Reading m.pth from 127.0.0.1…"
    assert runner.active_count() == 1  # the read waits on the server
    tab.busy.cancel_button.click()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=5_000)  # the reading thread is free
    assert tab.document.state is DocumentState.OPEN_CANCELLED and not tab.is_busy
    assert tab.error_panel.message_label.text() == "Opening m.pth was cancelled."
    again = next(b for b in tab.error_panel.findChildren(QPushButton) if b.text() == "Open again")
    served.silent = False
    again.click()
    qtbot.waitUntil(lambda: tab.is_tree_shown, timeout=WAIT_MS)
    assert tab.model is not None and tab.model.rowCount() == 8


def test_closing_a_tab_stops_its_remote_read(
    qtbot: Any,
    http: RangeServer,
    tmp_path: Path,
    gui: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "120")
    main, _, runner = gui
    http.add("m.pth", _build(tmp_path, "zip").read_bytes(), silent=True)
    tab = main.open_path(http.url("m.pth"))
    qtbot.waitUntil(lambda: tab.is_busy and len(http.log.requests) == 1, timeout=WAIT_MS)
    main.close_tab(0)
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=5_000)


def test_cancel_stops_the_shard_reads_of_a_set_read_several_at_a_time(
    qtbot: Any, http: RangeServer, tmp_path: Path, gui: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "120")
    main, _, runner = gui
    data = _build(tmp_path, "safetensors").read_bytes()
    index = {"metadata": {}, "weight_map": {f"layer{i}.weight": f"s{i % 2}.safetensors" for i in range(8)}}
    http.add("set/model.safetensors.index.json", json.dumps(index).encode())
    for shard in ("s0.safetensors", "s1.safetensors"):
        http.add(f"set/{shard}", data, silent=True)
    tab = main.open_path(http.url("set/model.safetensors.index.json"))
    qtbot.waitUntil(lambda: sum("/set/s" in p for _, p, _ in http.log.requests) == 2, timeout=WAIT_MS)
    tab.busy.cancel_button.click()
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=5_000)
    assert tab.document.state is DocumentState.OPEN_CANCELLED
