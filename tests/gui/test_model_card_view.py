"""The model card above each tab's tree: shown with its evidence, folded and unfolded, escaped, and
its "export without the prefix" preset."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core import model_card
from inspector.core.formatting import escape_text
from inspector.core.host_memory import DeviceMemory
from inspector.core.model_card import ModelCard, read_model_card
from inspector.gui.checkpoint_tab import CheckpointTab
from inspector.gui.engine_bridge import EngineBridge
from inspector.gui.main_window import MainWindow
from tests import model_card_fixtures as fx

WAIT_MS = 30_000
MakeWindow = Callable[..., MainWindow]


def _open(qtbot: Any, make_window: MakeWindow, path: Path, window: MainWindow | None = None) -> CheckpointTab:
    window = window or make_window()
    tab = window.open_path(str(path))
    with qtbot.waitSignal(tab.tree_shown, timeout=WAIT_MS):
        pass
    qtbot.waitUntil(lambda: tab.model_card.card is not None, timeout=WAIT_MS)  # built off the GUI thread
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


def test_the_card_is_built_off_the_gui_thread(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []

    def recording(*args: Any) -> ModelCard:
        threads.append(threading.current_thread())
        return read_model_card(*args)

    # (the tab imports the card's module when it reads a card, once the tree is on screen)
    monkeypatch.setattr(model_card, "read_model_card", recording)
    tab = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()))
    assert threads and threads[0] is not threading.main_thread()
    assert tab.model_card.card is not None and tab.model_card.card.family == "llama"


def test_an_unrecognised_card_starts_folded_to_its_line_and_the_users_unfolding_is_remembered(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    window = make_window()
    odd = fx.write_safetensors(tmp_path / "odd.safetensors", {"alpha": (3,), "beta.gamma": (2, 2)})
    tab = _open(qtbot, make_window, odd, window)
    card = tab.model_card
    assert card.isVisibleTo(tab) and not card.expanded and not card.body.isVisibleTo(tab)
    assert "unrecognised" in card.header.text() and "params" in card.header.text()
    known = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()), window)
    assert known.model_card.expanded and known.model_card.body.isVisibleTo(known)
    card.header.click()  # the user unfolds the unrecognised card
    again = _open(
        qtbot, make_window, fx.write_safetensors(tmp_path / "odd2.safetensors", {"x": (2,)}), window
    )
    assert again.model_card.expanded
    later = make_window()  # another window, the same settings
    assert _open(qtbot, make_window, odd, later).model_card.expanded


def test_the_fit_lines_name_each_cuda_device_the_engine_reports(
    qtbot: Any, make_window: MakeWindow, engine: EngineBridge, fake_client: dict[str, Any], tmp_path: Path
) -> None:
    """No GPU: the engine's Ready carries the memory ``torch.cuda.mem_get_info`` would give."""
    fake_client["memory"] = [DeviceMemory("cuda:0", 3 * 2**30, 24 * 2**30, "NVIDIA GeForce RTX 4090"),
                             DeviceMemory("cuda:1", 100, 200)]  # fmt: skip
    window = make_window(engine)
    engine.start()  # as the app does at start-up
    tab = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()), window)
    qtbot.waitUntil(lambda: "cuda:1" in _rows(tab), timeout=WAIT_MS)
    rows = _rows(tab)
    assert rows["cuda:0 (NVIDIA GeForce RTX 4090)"] == "the weights fit in 3.0 GiB free of 24.0 GiB"
    assert rows["cuda:1"] == "the weights do not fit in 100 B free of 200 B"
    assert "cpu" in rows
    engine.device_memory = (DeviceMemory("cuda:0", 2**40, 2**41, "NVIDIA H200"),)  # a restarted worker's
    engine.engine_ready.emit(["cpu", "meta", "cuda:0"], "fake")
    assert [r for r in _rows(tab) if r.startswith("cuda")] == ["cuda:0 (NVIDIA H200)"]


def test_a_folded_card_still_says_the_file_is_a_training_checkpoint(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path
) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    torch.save({"net_weights": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7},
               tmp_path / "run.pt")  # fmt: skip
    tab = _open(qtbot, make_window, tmp_path / "run.pt")
    card = tab.model_card
    assert not card.expanded  # no family: folded to its line
    assert "training checkpoint: optimizer, epoch" in card.header.text()


@pytest.mark.parametrize("height", [360, 420, 470])
def test_a_card_squeezed_by_a_small_window_shows_only_whole_rows(
    qtbot: Any, make_window: MakeWindow, tmp_path: Path, height: int
) -> None:
    """A long card in a small window scrolls; the strip where its last row would be cut in half
    stays blank, so every row shown is whole, with or without a horizontal scroll bar."""
    (tmp_path / "config.json").write_text('{"num_attention_heads": 5, "hidden_size": 99}')
    window = make_window()
    window.resize(520, height)
    window.show()
    tab = _open(qtbot, make_window, fx.write_safetensors(tmp_path / "m.safetensors", fx.llama()), window)
    body = tab.model_card.body
    body.expandAll()  # the evidence below each claim: more rows than the card has room for
    row = body.sizeHintForRow(0)
    qtbot.waitUntil(lambda: body.verticalScrollBar().maximum() > 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: body.viewport().height() % row == 0, timeout=WAIT_MS)
    assert body.viewport().height() >= row
    body.verticalScrollBar().setValue(body.verticalScrollBar().maximum())  # scrolled to the end
    qtbot.waitUntil(lambda: body.viewport().height() % row == 0, timeout=WAIT_MS)


def test_every_size_and_topic_a_family_card_names_has_a_translated_label(tmp_path: Path) -> None:
    """The card's rows are labelled from the view's own names (translated); a size a rule gives
    without one would show as its raw identifier."""
    from inspector.core.model_card import build_model_card
    from inspector.core.peek import peek
    from inspector.gui.model_card_view import _NAMES

    families = {
        "llama": fx.llama(), "gpt2": fx.gpt2(), "bert": fx.bert(), "t5": fx.t5(), "resnet": fx.resnet18(),
        "vit": fx.vit(), "vit_hf": fx.vit_hf(), "vit_tv": fx.vit_torchvision(), "unet": fx.unet(),
        "vae": fx.vae(), "lora": fx.peft_lora(), "mixtral": fx.mixtral(), "qwen2_moe": fx.qwen2_moe(),
        "opt": fx.opt(), "falcon": fx.falcon(new=True), "phi": fx.phi(), "phi3": fx.phi3(),
        "bloom": fx.bloom(),
    }  # fmt: skip
    unnamed: dict[str, set[str]] = {}
    for name, shapes in families.items():
        card = build_model_card(peek(fx.write_safetensors(tmp_path / f"{name}.safetensors", shapes)))
        assert card.family != "unrecognised", name
        said = {d.name for d in card.dimensions} | {f.topic for f in card.facts}
        if said - set(_NAMES):
            unnamed[name] = said - set(_NAMES)
    assert not unnamed
