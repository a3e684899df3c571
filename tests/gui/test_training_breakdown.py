"""The training-checkpoint breakdown: bytes by part, optimizer state by parameter, "model only"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from inspector.core.optimizer_map import map_optimizers
from inspector.core.peek import peek
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.training_breakdown import TrainingBreakdown, top_level_parts, tree_notes
from inspector.gui.tree_model import CheckpointTreeModel
from tests import checkpoints


def test_breakdown_of_a_training_checkpoint(qtbot: Any, engine: EngineBridge, tmp_path: Path) -> None:
    index = peek(str(checkpoints.build_training(tmp_path).path))
    dialog = TrainingBreakdown(index, engine)
    qtbot.addWidget(dialog)
    parts = dict(top_level_parts(index))
    assert set(parts) == {"model", "optimizer"}
    assert parts["optimizer"] > parts["model"]  # Adam keeps two moments per parameter
    assert dialog.chart.labels == [name for name, _ in top_level_parts(index)]
    png = tmp_path / "bars.png"
    dialog.chart.save_png(str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"

    table = dialog.table
    [mapping] = dialog.maps
    assert table.rowCount() == len(mapping.params)
    first = {table.item(0, c).text() for c in range(table.columnCount())}
    assert "model.embed.weight" in first and "optimizer.state.0" in first
    assert "exp_avg" in table.item(0, 4).text()

    dialog.export_button.click()
    export = dialog.export_dialog
    assert export is not None
    assert export.subtree_edit.text() == "model"  # type: ignore[attr-defined]
    before = [export.preview.item(r, 0).text() for r in range(export.preview.rowCount())]  # type: ignore[attr-defined]
    assert before and all(k.startswith("model.") for k in before)


def test_tree_rows_name_their_parameter(tmp_path: Path) -> None:
    index = peek(str(checkpoints.build_training(tmp_path).path))
    names, tooltips = tree_notes(map_optimizers(index))
    model = CheckpointTreeModel(index.root)
    model.set_notes(names, tooltips)
    slot = next(n for n in index.root.walk() if n.key == "optimizer.state.0")
    assert model.index_of(slot).data() == "0  (model.embed.weight)"
    param = next(n for n in index.root.walk() if n.key == "model.embed.weight")
    assert "optimizer.state.0" in model.index_of(param).data(Qt.ItemDataRole.ToolTipRole)
