"""File ▸ Export…: live before → after preview from core, collisions block, engine run, cancel."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QDialogButtonBox

from inspector.core.export_plan import TARGET_SUFFIXES
from inspector.core.load_options import LoadOptions
from inspector.core.peek import peek
from inspector.engine.protocol import ExportRequest
from inspector.gui.export_dialog import ExportDialog
from inspector.gui.safety_questions import AllowGlobalsQuestion
from tests import checkpoints

WAIT_MS = 20_000


def _dialog(qtbot: Any, path: Path, engine: Any, target: Path) -> ExportDialog:
    dialog = ExportDialog(peek(path), engine)
    qtbot.addWidget(dialog)
    dialog.target_edit.setText(str(target))
    dialog.update_preview()
    return dialog


def _column(dialog: ExportDialog, col: int) -> list[str]:
    return [dialog.preview.item(r, col).text() for r in range(dialog.preview.rowCount())]


def test_preview_follows_the_rules_as_they_are_typed(qtbot, engine, built_checkpoints, tmp_path) -> None:
    dialog = _dialog(qtbot, built_checkpoints["data_parallel-zip"].path, engine, tmp_path / "o.pth")
    assert _column(dialog, 1)[0] == "module.embed.weight"
    with qtbot.waitSignal(dialog._debounce.timeout, timeout=WAIT_MS):
        dialog.strip_edit.setText("module.")
    assert _column(dialog, 0)[0] == "module.embed.weight" and _column(dialog, 1)[0] == "embed.weight"
    with qtbot.waitSignal(dialog._debounce.timeout, timeout=WAIT_MS):
        dialog.dtype_combo.setCurrentText("bfloat16")
    assert "float32 → bfloat16" in _column(dialog, 2)[0]
    assert dialog.export_button.isEnabled()
    assert "tensors written" in dialog.summary_label.text()


def test_collisions_block_the_export(qtbot, engine, built_checkpoints, tmp_path) -> None:
    dialog = _dialog(qtbot, built_checkpoints["data_parallel-zip"].path, engine, tmp_path / "o.pth")
    dialog.rename_edit.setPlainText(r"^module\.layers\.\d+=>x")
    dialog.update_preview()
    assert not dialog.export_button.isEnabled()
    assert "Keys would become one" in dialog.problem_label.text()
    assert "COLLISION" in _column(dialog, 2)[1]
    dialog.start_export()
    assert engine.client.submitted == [] and not (tmp_path / "o.pth").exists()


def test_safetensors_says_what_happens_to_values(qtbot, engine, built_checkpoints, tmp_path) -> None:
    dialog = _dialog(qtbot, built_checkpoints["training-zip"].path, engine, tmp_path / "o.pth")
    dialog.format_combo.setCurrentText("safetensors")
    assert dialog.target_edit.text().endswith("o.safetensors")
    assert not dialog.device_edit.isEnabled() and dialog.metadata_edit.isEnabled()
    assert "epoch: stored as JSON in the metadata" in dialog.values_label.text()


def test_export_runs_in_the_engine_and_reports(
    qtbot, engine, fake_client, built_checkpoints, tmp_path
) -> None:
    target = tmp_path / "model.pth"
    dialog = _dialog(qtbot, built_checkpoints["training-zip"].path, engine, target)
    dialog.subtree_edit.setText("model")
    dialog.update_preview()
    dialog.export_button.click()
    assert dialog.job is not None
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS):
        pass
    assert "Wrote 16 tensors" in dialog.report_label.text() and "verified." in dialog.report_label.text()
    assert target.exists() and not dialog.running
    assert dialog.cancel_button.text() == "Close"


def test_cancel_before_the_engine_runs_it_writes_nothing(
    qtbot, engine, fake_client, built_checkpoints, tmp_path
) -> None:
    fake_client["hold"] = True
    target = tmp_path / "model.pth"
    dialog = _dialog(qtbot, built_checkpoints["state_dict-zip"].path, engine, target)
    dialog.start_export()
    assert dialog.running and dialog.job is not None
    with qtbot.waitSignal(dialog.job.cancelled, timeout=WAIT_MS):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert "cancelled; nothing was written" in dialog.report_label.text() and not dialog.running
    assert list(tmp_path.iterdir()) == []


def test_cancel_while_the_engine_writes_stops_it_between_tensors(
    qtbot, engine, fake_client, built_checkpoints, tmp_path
) -> None:
    """The dialog's Cancel reaches the export's own check: it stops, removes its partial file,
    and only then does the dialog say nothing was written."""
    from inspector.engine.worker import answer

    def cancel_at_the_first_step(request, control):
        control.progress(0, 1)  # the export began ...
        control.cancelled.wait(WAIT_MS / 1000)  # ... and goes on once Cancel was pressed
        return answer(request, control)

    fake_client["responder"] = cancel_at_the_first_step
    target = tmp_path / "model.pth"
    dialog = _dialog(qtbot, built_checkpoints["state_dict-zip"].path, engine, target)
    dialog.start_export()
    job = dialog.job
    assert job is not None
    with qtbot.waitSignal(job.progress, timeout=WAIT_MS):
        pass
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS):
        dialog.cancel()
        assert dialog.running and dialog.report_label.text() == "Cancelling…"
    assert "cancelled; nothing was written" in dialog.report_label.text() and not dialog.running
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def test_file_menu_opens_the_dialog_on_the_current_tab(qtbot, make_window, engine, built_checkpoints) -> None:
    window = make_window(engine)
    window.export_current()
    assert "Open a checkpoint first" in window.statusBar().currentMessage()
    tab = window.open_path(str(built_checkpoints["state_dict-zip"].path))
    qtbot.waitUntil(lambda: tab.index is not None, timeout=WAIT_MS)
    window.export_action.trigger()
    assert window.export_dialog.isVisible()
    assert window.export_dialog.preview.rowCount() == len(tab.index.tensor_nodes())
    window.export_dialog.close()


def test_hf_shard_set_from_the_dialog(qtbot, engine, built_checkpoints, tmp_path) -> None:
    """The dialog offers an HF shard set with its shard size; the plan carries both."""
    dialog = _dialog(qtbot, built_checkpoints["data_parallel-zip"].path, engine, tmp_path / "o.pth")
    assert not dialog.shard_size_edit.isEnabled()
    dialog.format_combo.setCurrentText("hf-sharded")
    assert dialog.target_edit.text() == str(tmp_path / "o")  # a folder
    assert dialog.shard_size_edit.isEnabled() and not dialog.device_edit.isEnabled()
    dialog.shard_size_edit.setText("2MB")
    plan = dialog.plan()
    assert plan.format == "hf-sharded" and plan.max_shard_size == 2_000_000
    dialog.shard_size_edit.setText("lots")
    dialog.update_preview()
    assert "not a size" in dialog.problem_label.text() and not dialog.export_button.isEnabled()


class _RunsCommand:
    """Unpickling it with plain pickle would run ``touch MARKER``: never trusted in these tests."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_the_tabs_allowances_reach_the_engine_with_the_export(
    qtbot, make_window, engine, settings, tmp_path
) -> None:
    settings.setValue("load/map_location", "cpu")
    path = checkpoints.build_namespace(tmp_path).path
    window = make_window(engine)
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: isinstance(tab.safety_question, AllowGlobalsQuestion), timeout=WAIT_MS)
    with qtbot.waitSignal(tab.load_finished, timeout=WAIT_MS):
        tab.safety_question.allow_button.click()
    window.export_current()
    dialog = window.export_dialog
    target = tmp_path / "copy.pth"
    dialog.target_edit.setText(str(target))
    dialog.update_preview()
    assert dialog.export_button.isEnabled(), dialog.problem_label.text()
    dialog.start_export()
    request = engine.client.submitted[-1][1]
    assert isinstance(request, ExportRequest)
    assert request.plan.allowed_globals == ("argparse.Namespace",) and not request.plan.trusted
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert dialog.report is not None, dialog.report_label.text()  # torch.load allowed it, as in the tab
    assert target.exists()
    dialog.close()


def test_a_trusted_tab_exports_trusted_to_torch_formats_only(qtbot, engine, built_checkpoints) -> None:
    index = peek(built_checkpoints["state_dict-zip"].path)
    dialog = ExportDialog(index, engine, load_options=LoadOptions(weights_only=False))
    qtbot.addWidget(dialog)
    assert dialog.plan().trusted
    dialog.format_combo.setCurrentText("safetensors")  # read straight from the file: no pickle runs
    assert not dialog.plan().trusted and dialog.plan().allowed_globals == ()


def test_a_dangerous_file_is_refused_as_pth_and_exported_to_safetensors_without_trust(
    qtbot, engine, tmp_path
) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "command.pth"
    torch.save({"weight": torch.ones(2, 3), "payload": _RunsCommand(marker)}, path)
    dialog = _dialog(qtbot, path, engine, tmp_path / "copy.pth")
    assert not dialog.export_button.isEnabled()
    refusal = dialog.problem_label.text()
    assert "os.system" in refusal or "posix.system" in refusal, refusal
    assert "safetensors" in refusal  # says what works instead
    dialog.format_combo.setCurrentText("safetensors")
    assert dialog.target_edit.text().endswith("copy.safetensors")
    assert dialog.export_button.isEnabled(), dialog.problem_label.text()
    assert dialog.problem_label.isHidden()
    assert "pickle is not run" in dialog.summary_label.text()
    dialog.start_export()
    qtbot.waitUntil(lambda: not dialog.running, timeout=WAIT_MS)
    assert dialog.report is not None, dialog.report_label.text()
    assert (tmp_path / "copy.safetensors").exists() and not marker.exists()


def test_target_endings_follow_the_export_plans_suffixes(qtbot, engine, built_checkpoints, tmp_path) -> None:
    dialog = _dialog(qtbot, built_checkpoints["state_dict-zip"].path, engine, tmp_path / "o.tar")
    assert dialog.format_combo.currentText() == "pth"
    for fmt in ("safetensors", "pth", "pth-legacy", "hf-sharded"):  # each one a change of format
        dialog.format_combo.setCurrentText(fmt)
        assert dialog.target_edit.text() == str(tmp_path / "o") + TARGET_SUFFIXES[fmt]


def test_the_dialog_fits_the_screen_it_opens_on(qtbot, engine, built_checkpoints, tmp_path) -> None:
    """On a 1024×700 screen the Export and Cancel buttons stay on it: the preview gives up the height."""
    dialog = _dialog(qtbot, built_checkpoints["training-zip"].path, engine, tmp_path / "o.pth")
    room = dialog.screen().availableGeometry()
    assert dialog.height() <= room.height() - 30 and dialog.width() <= room.width()  # its title bar too
    small = QRect(0, 0, 1024, 700 - 24)  # what a 1024×700 screen leaves below a panel
    dialog.fit_to(small)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.height() <= small.height() - 30 and dialog.width() <= small.width()
    assert dialog.buttons.geometry().bottom() <= dialog.height()
    assert dialog.preview.height() >= 5 * dialog.preview.verticalHeader().defaultSectionSize()
