"""Safety in the window: the scan badge, files with dangerous globals held back from torch, the
allow/trust dialogs (this tab only, never remembered), and a worker killed mid-load."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek
from inspector.engine.protocol import ErrorKind, Failure
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from inspector.gui.safety_questions import AllowGlobalsQuestion, TrustFileQuestion
from tests import checkpoints

WAIT_MS = 30_000
REAL_ENGINE_WAIT_MS = 120_000  # the real worker imports torch first
SYSTEM = f"{os.system.__module__}.system"  # posix.system here; how the pickle names os.system

MakeWindow = Callable[..., MainWindow]


class _RunsCommand:
    """Unpickling it with plain pickle would run ``touch MARKER``: never trusted in these tests."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class _CopiesFile:
    """A harmless payload: unpickling it copies a small file to MARKER (``shutil.copyfile``)."""

    def __init__(self, source: Path, marker: Path) -> None:
        self.source = source
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (shutil.copyfile, (str(self.source), str(self.marker)))


def _with_payload(folder: Path, name: str, payload: Any) -> Path:
    path = folder / name
    torch.save({"weight": torch.ones(2, 3), "payload": payload}, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "MARKER"
    yield path
    path.unlink(missing_ok=True)


def _submitted(engine: EngineBridge) -> list[dict[str, Any]]:
    """The options of every load the fake client was asked for, as JSON carries them."""
    return [request.options.to_json() for _, request in engine.client.submitted]  # type: ignore[attr-defined]


def _open(qtbot: Any, window: MainWindow, path: Path) -> CheckpointTab:
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    return tab


def _wait_failed(qtbot: Any, tab: CheckpointTab) -> str:
    with qtbot.waitSignal(tab.load_failed, timeout=WAIT_MS) as failed:
        pass
    return str(failed.args[0])


# -- the verdict badge --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "badge"),
    [("state_dict", "Safe"), ("namespace", "Unknown globals"), ("command", "Dangerous")],
)
def test_every_tab_shows_its_scan_verdict(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path, case: str, badge: str
) -> None:
    if case == "command":
        path = _with_payload(tmp_path, "command.pth", _RunsCommand(tmp_path / "MARKER"))
    else:
        path = checkpoints.BUILDERS[case][0](tmp_path, "zip").path
    window = make_window(engine)
    tab = _open(qtbot, window, path)
    assert tab.verdict_badge.isVisibleTo(tab)
    assert tab.verdict_badge.text() == badge
    assert window.tabs.tabToolTip(window.tabs.indexOf(tab)).endswith(f"Scan: {badge}")
    if case == "namespace":
        assert "argparse.Namespace" in tab.verdict_badge.toolTip()
    assert tab.danger_banner.isVisibleTo(tab) is (badge == "Dangerous")


# -- dangerous globals: the static read only, until the user trusts the file --------------------


def test_a_command_payload_is_never_handed_to_torch(
    qtbot: Any,
    make_window: MakeWindow,
    engine: EngineBridge,
    marker: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = _with_payload(tmp_path, "command.pth", _RunsCommand(marker))
    window = make_window(engine)
    tab = _open(qtbot, window, path)
    banner = tab.danger_banner
    assert banner.isVisibleTo(tab)
    assert SYSTEM in banner.message_label.text()
    assert "not handed to torch" in banner.message_label.text()
    assert "weight" in {node.key for node in tab.index.root.walk()}  # type: ignore[union-attr]
    assert tab.held_back and not tab.is_loading
    assert "Not loaded with torch" in tab.load_label.text()
    assert _submitted(engine) == []

    # The trust dialog names what would run; cancelling it changes nothing.
    qtbot.mouseClick(banner.trust_button, Qt.MouseButton.LeftButton)
    dialog = tab.safety_question
    assert isinstance(dialog, TrustFileQuestion)
    assert dialog.will_run == [SYSTEM]
    assert SYSTEM in dialog.message.text() and "weights_only=False" in dialog.message.text()
    dialog.reject()
    assert tab.safety_question is None and not tab.is_trusted

    # Neither a new map location nor turning weights_only off in the bar gets past the scan.
    window.options_bar.set_map_location("meta")
    window.options_bar.confirm_unsafe = lambda: True  # type: ignore[method-assign]
    window.options_bar.weights_only_check.setChecked(False)
    assert tab.options.weights_only is False
    assert _submitted(engine) == []
    assert tab.held_back and banner.trust_button.isVisibleTo(tab)
    assert not marker.exists()


def test_only_trusting_the_file_lets_its_payload_run(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, marker: Path, tmp_path: Path
) -> None:
    source = tmp_path / "source.txt"
    source.write_text("copied only by a trusted load\n")
    path = _with_payload(tmp_path, "copier.pth", _CopiesFile(source, marker))
    window = make_window(engine)
    tab = _open(qtbot, window, path)
    assert tab.verdict_badge.text() == "Dangerous"
    assert "shutil.copyfile" in tab.danger_banner.message_label.text()
    assert _submitted(engine) == [] and not marker.exists()

    tab.danger_banner.trust_button.click()
    dialog = tab.safety_question
    assert isinstance(dialog, TrustFileQuestion)
    assert dialog.will_run == ["shutil.copyfile"]
    assert [dialog.pickle_combo.itemText(i) for i in range(dialog.pickle_combo.count())] == ["pickle"]
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        dialog.trust_button.click()
    assert marker.read_text() == source.read_text()  # the gate, and only it, kept this from running
    [options] = _submitted(engine)
    assert options["weights_only"] is False and options["pickle_module"] == "pickle"
    assert tab.is_trusted and not tab.danger_banner.trust_button.isVisibleTo(tab)
    assert "You trusted" in tab.danger_banner.message_label.text()
    assert "trusted: weights_only=False" in tab.load_label.text()


# -- globals weights-only loading refuses: allow exactly these, or trust ---------------------------


def test_allow_exactly_the_refused_globals_for_this_tab_only(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_namespace(tmp_path).path
    window = make_window(engine)
    tab = window.open_path(str(path))
    assert _wait_failed(qtbot, tab) == "weights-only"
    dialog = tab.safety_question
    assert isinstance(dialog, AllowGlobalsQuestion)
    assert dialog.names == ["argparse.Namespace"]
    assert "argparse.Namespace" in dialog.message.text()
    assert dialog.allow_button.isEnabled() and dialog.allow_button.isDefault()
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.allow_button, Qt.MouseButton.LeftButton)
    last = _submitted(engine)[-1]
    assert last["weights_only"] is True and last["allowed_globals"] == ["argparse.Namespace"]
    assert "allowed for this tab: argparse.Namespace" in tab.load_label.text()

    # Another map location keeps this tab's answer.
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        window.options_bar.set_map_location("meta")
    assert _submitted(engine)[-1]["allowed_globals"] == ["argparse.Namespace"]

    # A new tab on the same file starts from nothing: the answer was not remembered.
    window.close_current_tab()
    again = window.open_path(str(path))
    assert _wait_failed(qtbot, again) == "weights-only"
    assert _submitted(engine)[-1]["allowed_globals"] == []
    assert isinstance(again.safety_question, AllowGlobalsQuestion)
    again.safety_question.reject()
    assert again.safety_question is None
    # The error panel asks again; closing the tab closes the question with it.
    again.error_panel.button("Allow or trust…").click()  # type: ignore[union-attr]
    reopened = again.safety_question
    assert isinstance(reopened, AllowGlobalsQuestion)
    window.close_current_tab()
    assert again.safety_question is None and not again.is_loading
    assert len(_submitted(engine)) == 4  # open, allowed, meta, the new tab: nothing more


def test_trust_the_whole_file_after_a_warning_with_a_pickle_module(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_namespace(tmp_path).path
    window = make_window(engine)
    tab = window.open_path(str(path))
    assert _wait_failed(qtbot, tab) == "weights-only"
    engine.client.pickle_modules = ["pickle", "dill"]
    allow = tab.safety_question
    assert isinstance(allow, AllowGlobalsQuestion)
    allow.trust_button.click()
    trust = tab.safety_question
    assert isinstance(trust, TrustFileQuestion)
    assert trust.will_run == ["argparse.Namespace"]
    combo = trust.pickle_combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["pickle", "dill"]
    combo.setCurrentText("dill")
    trust.trust_button.click()
    qtbot.waitUntil(lambda: not tab.is_loading, timeout=WAIT_MS)
    last = _submitted(engine)[-1]
    assert last["weights_only"] is False and last["pickle_module"] == "dill"
    assert last["allowed_globals"] == []
    assert tab.is_trusted


def test_globals_that_can_never_be_allowed_leave_only_trust(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    # As if the static read had missed them: the engine names a blocked and a dangerous global.
    names = ["argparse.Namespace", SYSTEM, "builtins.exec"]
    extra = {"globals": names, "blocked": [SYSTEM]}
    fake_client["responder"] = lambda _request, control: Failure(
        control.job, ErrorKind.WEIGHTS_ONLY, "", "Weights only load failed", extra
    )
    window = make_window(engine)
    tab = window.open_path(str(checkpoints.build_state_dict(tmp_path).path))
    assert _wait_failed(qtbot, tab) == "weights-only"
    dialog = tab.safety_question
    assert isinstance(dialog, AllowGlobalsQuestion)
    assert not dialog.allow_button.isEnabled()
    assert dialog.cancel_button.isDefault() and not dialog.trust_button.isDefault()
    assert f"{SYSTEM}, builtins.exec can never be allowed" in dialog.message.text()
    dialog.trust_button.click()
    trust = tab.safety_question
    assert isinstance(trust, TrustFileQuestion)
    assert trust.will_run[:2] == [SYSTEM, "builtins.exec"]  # dangerous first
    trust.reject()
    assert not tab.is_trusted
    assert all(options["weights_only"] for options in _submitted(engine))


# -- the question is asked in the tab it is about, and blocks nothing else ---------------------------


def _click_tab(qtbot: Any, window: MainWindow, tab: CheckpointTab) -> None:
    """Click the tab's title in the tab bar, as a user switches files."""
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(window.tabs.indexOf(tab)).center())


def test_a_question_about_one_file_stays_in_its_tab_and_never_blocks_the_others(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    fake_client["hold"] = True  # every load answers at once, after all tabs are open
    namespace = checkpoints.build_namespace(tmp_path).path
    others = [
        checkpoints.BUILDERS[case][0](tmp_path, "zip").path for case in ("state_dict", "training", "shared")
    ]
    window = make_window(engine)
    window.show()
    qtbot.waitExposed(window)
    asking = window.open_path(str(namespace))
    tabs = [window.open_path(str(path)) for path in others]
    with qtbot.waitSignal(asking.load_failed, timeout=WAIT_MS):
        engine.client.release()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: all(not tab.is_loading for tab in tabs), timeout=WAIT_MS)
    question = asking.safety_question
    assert isinstance(question, AllowGlobalsQuestion)
    assert question.names == ["argparse.Namespace"]
    assert window.current_tab() is tabs[-1]
    assert not question.isVisible()  # it is part of its own tab, which is not shown

    _click_tab(qtbot, window, asking)
    assert window.current_tab() is asking
    qtbot.waitUntil(question.isVisible, timeout=WAIT_MS)
    # Nothing is modal while the file waits for the answer: the user goes on to another file.
    assert QApplication.activeModalWidget() is None
    _click_tab(qtbot, window, tabs[0])
    assert window.current_tab() is tabs[0]
    assert not question.isVisible() and asking.safety_question is question
    tabs[0].filter_edit.setFocus()
    qtbot.keyClicks(tabs[0].filter_edit, "fc")  # the other tab answers the keyboard as well
    assert tabs[0].filter_edit.text() == "fc"

    _click_tab(qtbot, window, asking)
    with qtbot.waitSignal(asking.load_finished, timeout=WAIT_MS):
        qtbot.mouseClick(question.allow_button, Qt.MouseButton.LeftButton)
    assert _submitted(engine)[-1]["allowed_globals"] == ["argparse.Namespace"]
    assert asking.safety_question is None


def test_escape_in_a_question_cancels_it_and_changes_nothing(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, marker: Path, tmp_path: Path
) -> None:
    window = make_window(engine)
    window.show()
    tab = _open(qtbot, window, _with_payload(tmp_path, "command.pth", _RunsCommand(marker)))
    qtbot.mouseClick(tab.danger_banner.trust_button, Qt.MouseButton.LeftButton)
    question = tab.safety_question
    assert isinstance(question, TrustFileQuestion)
    qtbot.waitUntil(question.cancel_button.hasFocus, timeout=WAIT_MS)  # the keyboard starts on Cancel
    assert question.cancel_button.isDefault() and not question.trust_button.isDefault()  # and so does the eye
    assert not tab.danger_banner.trust_button.isVisibleTo(tab)  # asked once, not twice
    qtbot.keyClick(question.cancel_button, Qt.Key.Key_Escape)
    assert tab.safety_question is None and not tab.is_trusted
    assert _submitted(engine) == [] and not marker.exists()


# -- TorchScript code, aliases and strings from the file ----------------------------------------------


def _scripted(path: Path) -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3))), str(path))
    return path


def test_a_torchscript_archive_is_safe_data_that_holds_code_and_loads_only_when_trusted(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    window = make_window(engine)
    tab = _open(qtbot, window, _scripted(tmp_path / "scripted.pt"))
    assert tab.verdict_badge.text() == "Safe" and not tab.danger_banner.isVisibleTo(tab)
    assert "holds TorchScript code" in tab.verdict_badge.toolTip()
    message = tab.error_panel.message_label.text()
    assert message == (
        "“scripted.pt” holds TorchScript code, which runs if loaded with torch.jit.load; the tensors "
        "are shown from the static read."
    )
    assert tab.held_back and _submitted(engine) == []
    tab.error_panel.button("Trust this file…").click()  # type: ignore[union-attr]
    trust = tab.safety_question
    assert isinstance(trust, TrustFileQuestion)
    assert "It holds TorchScript code" in trust.message.text()
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        trust.trust_button.click()
    [options] = _submitted(engine)
    assert options["weights_only"] is False


def test_allowing_an_innocent_name_that_is_a_dangerous_callable_is_refused_by_the_loader(
    qtbot: Any,
    make_window: MakeWindow,
    engine: EngineBridge,
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import hostile_globals

    settings.setValue("load/map_location", "cpu")
    monkeypatch.setitem(
        sys.modules, "tidy_helpers", hostile_globals.alias_module("tidy_helpers", "tidy", os.system)
    )
    path = hostile_globals.payload_checkpoint(
        tmp_path, "tidy.pth", "tidy_helpers", "tidy", hostile_globals.touch_command(tmp_path)
    )
    window = make_window(engine)
    tab = window.open_path(str(path))
    assert _wait_failed(qtbot, tab) == "weights-only"
    assert tab.verdict_badge.text() == "Unknown globals"  # no name rule can know what tidy is
    dialog = tab.safety_question
    assert isinstance(dialog, AllowGlobalsQuestion) and dialog.allow_button.isEnabled()
    with qtbot.waitSignal(tab.load_failed, timeout=WAIT_MS) as failed:
        dialog.allow_button.click()
    assert failed.args == ["refused-global"]
    assert f"it is {SYSTEM}, reached through another module" in tab.error_panel.message_label.text()
    assert tab.error_panel.button("Trust this file…") is not None
    assert not hostile_globals.marker(tmp_path).exists()


def test_names_from_the_file_are_shown_escaped_in_the_banner_and_tooltip(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, tmp_path: Path
) -> None:
    from tests import hostile_globals

    path = hostile_globals.payload_checkpoint(tmp_path, "spoof.pth", "os\x1b[8m", "system", "true")
    window = make_window(engine)
    tab = _open(qtbot, window, path)
    assert tab.verdict_badge.text() == "Dangerous"
    for text in (tab.danger_banner.message_label.text(), tab.verdict_badge.toolTip()):
        assert "os\\x1b[8m.system" in text and "\x1b" not in text
    assert _submitted(engine) == []


def test_globals_the_engine_names_are_shown_escaped_in_the_error_and_the_question(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    spoofed = "tidy\x1b[8m.Helper\u202e"
    extra = {"globals": [spoofed], "suggest": None}
    fake_client["responder"] = lambda _request, control: Failure(
        control.job, ErrorKind.WEIGHTS_ONLY, "", None, extra
    )
    window = make_window(engine)
    tab = window.open_path(str(checkpoints.build_state_dict(tmp_path).path))
    assert _wait_failed(qtbot, tab) == "weights-only"
    message = tab.error_panel.message_label.text()
    assert "It references: tidy\\x1b[8m.Helper\\u202e." in message
    question = tab.safety_question
    assert isinstance(question, AllowGlobalsQuestion)
    for text in (message, question.message.text()):
        assert "\x1b" not in text and "\u202e" not in text


# -- the worker dies mid-load ---------------------------------------------------------------------


def _reader_is_waiting(fifo: Path, opened: list[int]) -> bool:
    """True once some process has the FIFO open for reading (then it stays blocked in read())."""
    if opened:
        return True
    try:
        opened.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
            raise
        return False
    return True


@pytest.mark.slow
def test_killing_the_worker_mid_load_leaves_the_window_usable(
    qtbot: Any, make_window: MakeWindow, real_engine: EngineBridge, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("load/map_location", "cpu")
    first = checkpoints.build_state_dict(tmp_path).path
    stand_in = checkpoints.build_training(tmp_path).path
    fifo = tmp_path / "stuck.pth"
    os.mkfifo(fifo)  # the worker's open() of it waits for a writer: a load that cannot finish

    def peek_fn(path: str) -> CheckpointIndex:
        # The static reader refuses a FIFO; the engine is handed the FIFO itself.
        return peek(str(stand_in) if path == str(fifo) else path)

    window = make_window(real_engine, peek_fn=peek_fn)
    loaded = window.open_path(str(first))
    with qtbot.waitSignal(loaded.load_finished, timeout=REAL_ENGINE_WAIT_MS):
        pass
    stuck = _open(qtbot, window, fifo)
    assert stuck.is_loading
    opened: list[int] = []
    try:
        qtbot.waitUntil(lambda: _reader_is_waiting(fifo, opened), timeout=WAIT_MS)
        old_pid = real_engine.client.pid
        assert old_pid is not None
        with qtbot.waitSignal(stuck.load_failed, timeout=WAIT_MS) as failed:
            os.kill(old_pid, signal.SIGKILL)
    finally:
        for fd in opened:
            os.close(fd)
    assert failed.args == ["crashed"]
    message = stuck.error_panel.message_label.text()
    assert "stopped (killed by SIGKILL" in message and "“stuck.pth”" in message
    assert "the loader was restarted" in message
    assert stuck.error_panel.button("Try again") is not None
    assert stuck.is_tree_shown and not stuck.is_busy

    # The first tab is untouched, and a new tab loads in the restarted worker.
    assert loaded.load_label.text().startswith("Loaded with torch")
    namespace = checkpoints.build_namespace(tmp_path).path
    later = window.open_path(str(namespace))
    assert _wait_failed(qtbot, later) == "weights-only"
    dialog = later.safety_question
    assert isinstance(dialog, AllowGlobalsQuestion)
    with qtbot.waitSignal(later.load_finished, timeout=REAL_ENGINE_WAIT_MS):
        dialog.allow_button.click()
    assert real_engine.client.pid not in {None, old_pid}
    assert later.model is not None
    node = next(n for n in later.model.root.walk() if n.key == "model.embed.weight")
    assert later.model.loaded_device(node) == "cpu"
    assert window.windowTitle().startswith(namespace.name)
