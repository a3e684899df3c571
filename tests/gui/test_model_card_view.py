"""The model card above each tab's tree: shown with its evidence, folded and unfolded, escaped, and
its "export without the prefix" preset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from inspector.core.formatting import escape_text
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.main_window import MainWindow
from tests import model_card_fixtures as fx

WAIT_MS = 30_000
MakeWindow = Callable[..., MainWindow]


def _open(qtbot: Any, make_window: MakeWindow, path: Path) -> CheckpointTab:
    window = make_window()
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    return tab


def _rows(tab: CheckpointTab) -> dict[str, str]:
    body = tab.model_card.body
    return {
        body.topLevelItem(r).text(0): body.topLevelItem(r).text(1) for r in range(body.topLevelItemCount())
    }


def test_card_shows_above_the_tree_with_evidence_and_folds(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    tab = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(layers=3)))
    card = tab.model_card
    assert card.isVisibleTo(tab) and card.body.isVisibleTo(tab)
    assert "LLaMA/Mistral/Qwen-style" in card.header.text() and "3 layers" in card.header.text()
    rows = _rows(tab)
    assert rows["Layers"] == "3" and rows["Hidden size"] == "64"
    assert rows["Attention heads"].startswith("not determined")
    layers = next(card.body.topLevelItem(r) for r in range(card.body.topLevelItemCount())
                  if card.body.topLevelItem(r).text(0) == "Layers")  # fmt: skip
    assert layers.child(0).text(1) == "3 blocks: model.layers.0 … model.layers.2"
    assert "model.layers.0 … model.layers.2" in layers.toolTip(0)
    with qtbot.waitSignal(card.toggled, timeout=WAIT_MS) as folded:
        card.header.click()
    assert folded.args == [False] and not card.body.isVisibleTo(tab) and card.isVisibleTo(tab)
    card.header.click()
    assert card.body.isVisibleTo(tab)


def test_card_strings_from_the_file_are_escaped(qtbot: Any, make_window: MakeWindow, tmp_path: Path) -> None:
    hostile = "\x1b[2J\u202e."
    torch.save({hostile + k: torch.zeros(s) for k, s in fx.llama(layers=1).items()}, tmp_path / "x.pt")
    tab = _open(qtbot, make_window, tmp_path / "x.pt")
    body = tab.model_card.body
    shown = [body.topLevelItem(r).child(c).text(1) for r in range(body.topLevelItemCount())
             for c in range(body.topLevelItem(r).childCount())]  # fmt: skip
    assert shown and all("\x1b" not in s and "\u202e" not in s for s in shown)
    assert escape_text(hostile + "model.layers.0.self_attn.q_proj.weight [64, 64]") in shown


def test_dataparallel_prefix_opens_the_export_with_it_stripped(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    torch.save({f"module.{k}": torch.zeros(s) for k, s in fx.resnet18().items()}, tmp_path / "ddp.pth")
    tab = _open(qtbot, make_window, tmp_path / "ddp.pth")
    card = tab.model_card
    assert card.strip_button.isVisibleTo(tab) and "module." in card.strip_button.text()
    card.strip_button.click()
    dialog = card.export_dialog
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.strip_edit.text() == "module."  # type: ignore[attr-defined]
    preview = dialog.preview  # type: ignore[attr-defined]
    after = [preview.item(r, 1).text() for r in range(preview.rowCount())]
    assert "conv1.weight" in after and not any(k.startswith("module.") for k in after)


def test_a_plain_state_dict_offers_no_prefix_export(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    tab = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "bert.safetensors", fx.bert()))
    assert not tab.model_card.strip_button.isVisibleTo(tab)
    assert _rows(tab)["Family"] == "encoder-only transformer (BERT-style)"
