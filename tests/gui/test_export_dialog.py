"""File ▸ Export…: live before → after preview from core, collisions block, engine run, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QDialogButtonBox

from inspector.core.peek import peek
from inspector.gui.export_dialog import ExportDialog

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
