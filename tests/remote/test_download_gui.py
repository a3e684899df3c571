"""Download and load in the window: a remote tab fetches its file's whole copy into the cache folder,
with progress and Cancel, then loads that copy as a local file is loaded ("Loaded on" filled)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QPushButton

import inspector.remote.download_cache
from inspector.engine.protocol import LoadRequest
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.tasks import TaskRunner
from inspector.gui.tree_model import Column, ItemRole
from tests.gui.conftest import FakeEngineClient
from tests.remote.servers import RangeServer
from tests.remote.test_http import _build

WAIT_MS = 30_000
TOKEN = "s3cr3t-t0ken"


@pytest.fixture
def gui(qtbot: Any, tmp_path: Path) -> Iterator[tuple[MainWindow, FakeEngineClient, TaskRunner]]:
    """The window with an in-process engine that loads with torch as the worker does."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    runner = TaskRunner()
    clients: list[FakeEngineClient] = []

    def client(on_event: Any) -> FakeEngineClient:
        clients.append(FakeEngineClient(on_event, {"devices": ("cpu", "meta")}))
        return clients[0]

    engine = EngineBridge(client)
    main = MainWindow(settings, engine, runner)
    qtbot.addWidget(main)
    yield main, clients[0], runner
    runner.shutdown()
    engine.close()


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def _opened(qtbot: Any, main: MainWindow, path: str) -> CheckpointTab:
    tab = main.open_path(path)
    qtbot.waitUntil(lambda: tab.is_tree_shown and not tab.is_busy, timeout=WAIT_MS)
    return tab


def _loaded_on(tab: CheckpointTab) -> dict[str, tuple[str, str]]:
    """Each top-level tensor's dtype and "Loaded on" cell."""
    model = tab.model
    assert model is not None
    rows = {}
    for r in range(model.rowCount()):
        key = model.index(r, 0).data(ItemRole.NodeRole).key
        rows[key] = (model.index(r, Column.DTYPE).data(), model.index(r, Column.LOADED_ON).data())
    return rows


def _error_button(tab: CheckpointTab, text: str) -> QPushButton:
    return next(b for b in tab.error_panel.findChildren(QPushButton) if b.text() == text and not b.isHidden())


def test_download_and_load_fills_loaded_on_as_opening_the_local_file_does(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any
) -> None:
    main, client, _ = gui
    path = _build(tmp_path, "zip")
    http.add("m.pth", path.read_bytes())
    tab = _opened(qtbot, main, http.url("m.pth") + f"?token={TOKEN}")
    assert "needs the whole file" in tab.load_label.text()
    assert tab.download_button.isVisibleTo(tab) and not any(
        isinstance(r, LoadRequest) for _, r in client.submitted
    )
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        tab.download_button.click()
    (copy,) = _files(cache)
    assert TOKEN not in copy and (cache / copy).read_bytes() == path.read_bytes()
    local = main.open_path(str(path))
    with qtbot.waitSignal(local.load_finished, timeout=WAIT_MS):
        pass
    assert _loaded_on(tab) == _loaded_on(local) and {d for _, d in _loaded_on(tab).values()} == {"cpu"}
    loads = [r.path for _, r in client.submitted if isinstance(r, LoadRequest)]
    assert loads == [str(cache / copy), str(path)]  # torch never saw the URL
    assert "from the copy just downloaded into the cache folder" in tab.load_label.text()
    assert not tab.download_button.isVisibleTo(tab)


def test_a_second_tab_uses_the_downloaded_copy_without_fetching_it_again(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any
) -> None:
    main, _, _ = gui
    http.add("m.pth", _build(tmp_path, "zip").read_bytes())
    first = _opened(qtbot, main, http.url("m.pth"))
    with qtbot.waitSignal(first.load_finished, timeout=WAIT_MS):
        first.download_button.click()
    main.close_tab(0)
    second = _opened(qtbot, main, http.url("m.pth"))
    before = http.log.body_bytes
    with qtbot.waitSignal(second.load_finished, timeout=WAIT_MS):
        second.download_button.click()
    assert http.log.body_bytes == before  # not one byte of the file again
    assert "using the copy downloaded on" in second.load_label.text()
    assert len(_files(cache)) == 1


def test_cancel_in_the_middle_of_a_download_leaves_nothing_in_the_cache(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any
) -> None:
    main, client, runner = gui
    served = http.add("m.pth", _build(tmp_path, "zip").read_bytes())
    tab = _opened(qtbot, main, http.url("m.pth"))
    qtbot.waitUntil(lambda: runner.active_count() == 0, timeout=WAIT_MS)
    served.stall_after = served.ranged + 1  # the first chunk comes, then the server goes silent
    tab.download_button.click()
    qtbot.waitUntil(lambda: tab.busy.progress.value() > 0, timeout=WAIT_MS)
    assert "Downloading m.pth: 8.0 MiB of 16.0 MiB" in tab.busy.label.text()
    assert len(_files(cache)) == 1  # the partial copy, under its temporary name
    tab.busy.cancel_button.click()
    qtbot.waitUntil(lambda: runner.active_count() == 0 and _files(cache) == [], timeout=5_000)
    assert "cancelled; nothing was kept" in tab.error_panel.message_label.text()
    assert _error_button(tab, "Download and load")
    assert not any(isinstance(r, LoadRequest) for _, r in client.submitted)


def test_content_changed_during_the_download_is_a_sentence_and_nothing_is_kept(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any
) -> None:
    main, client, _ = gui
    path = _build(tmp_path, "zip")
    served = http.add("m.pth", path.read_bytes())
    tab = _opened(qtbot, main, http.url("m.pth"))
    served.replacement, served.replace_after = path.read_bytes()[::-1], served.ranged + 1
    tab.download_button.click()
    qtbot.waitUntil(lambda: tab.has_error, timeout=WAIT_MS)
    assert "changed while it was being read" in tab.error_panel.message_label.text()
    assert _error_button(tab, "Try again") and _files(cache) == []
    assert not any(isinstance(r, LoadRequest) for _, r in client.submitted)


def test_a_large_file_is_asked_about_before_it_is_downloaded(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    main, _, _ = gui
    monkeypatch.setattr(inspector.remote.download_cache, "LARGE_DOWNLOAD", 1 << 20)
    http.add("m.pth", _build(tmp_path, "zip").read_bytes())
    tab = _opened(qtbot, main, http.url("m.pth"))
    tab.download_button.click()
    box = tab.findChild(QMessageBox, "largeDownloadQuestion")
    assert box is not None and "16.0 MiB" in box.text() and str(cache) in box.text()
    assert http.log.body_bytes < 1 << 20 and _files(cache) == []  # nothing before the answer
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        box.button(QMessageBox.StandardButton.Yes).click()
    assert len(_files(cache)) == 1


def test_a_shard_set_says_how_to_get_its_files_instead_of_offering_a_download(
    qtbot: Any, http: RangeServer, cache: Path, gui: Any
) -> None:
    main, _, _ = gui
    tab = main.open_path(http.url("model.safetensors.index.json"))
    assert not tab.document.can_download


def test_the_cache_dialog_shows_the_folder_and_clears_it(
    qtbot: Any, http: RangeServer, tmp_path: Path, cache: Path, gui: Any
) -> None:
    main, _, _ = gui
    http.add("m.pth", _build(tmp_path, "zip").read_bytes())
    tab = _opened(qtbot, main, http.url("m.pth"))
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        tab.download_button.click()
    dialog = main.show_download_cache()
    assert dialog.folder_label.text() == str(cache)
    assert dialog.contents_label.text() == "1 downloaded copy, 16.0 MiB"
    dialog.clear_button.click()
    box = dialog.findChild(QMessageBox, "clearCacheQuestion")
    assert box is not None and _files(cache) != []  # nothing is removed before the answer
    box.button(QMessageBox.StandardButton.Yes).click()
    assert _files(cache) == [] and dialog.contents_label.text() == "No downloaded copies."
    assert not dialog.clear_button.isEnabled()
