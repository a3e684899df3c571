"""``info`` shows the model card between the summary and the tree; ``info --json`` carries ``model_card``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inspector.cli import main
from inspector.core.formatting import escape_text
from tests import model_card_fixtures as fx
from tests.conftest import CliRunner


def test_info_text_and_json_carry_the_card_with_its_evidence(cli: CliRunner, tmp_path: Path) -> None:
    path = fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(layers=3))
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 4, "num_attention_heads": 4}))
    text, as_json = cli.run_many([("info", path), ("info", path, "--json")])
    assert text.returncode == 0 and as_json.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[2] == "model card: decoder-only transformer (LLaMA/Mistral/Qwen-style)"
    assert "  · layers: 3  ← 3 blocks: model.layers.0 … model.layers.2" in lines
    assert any(line.startswith("  · contradiction: config says num_hidden_layers 4") for line in lines)
    card = json.loads(as_json.stdout)["model_card"]
    assert card["family"] == "llama"
    assert card["dimensions"]["heads"]["value"] == 4  # config.json's head count, with q_proj [64, 64]
    assert card["dimensions"]["kv_heads"]["value"] == 1
    assert card["config"]["values"]["num_attention_heads"] == 4
    assert card["bytes_at"]["bf16"] == card["params"] * 2
    assert card["memory_note"].startswith("sizes and fits count only the weights")


def test_a_key_with_control_characters_reaches_the_card_escaped(cli: CliRunner, tmp_path: Path) -> None:
    key = "model.layers.0.self_attn.q_proj.weight"
    hostile = "\x1b[31mmodel.\u202e"
    state = {hostile + k: torch.zeros(s) for k, s in fx.llama(layers=1).items()}
    torch.save(state, tmp_path / "x.pt")
    text, as_json = cli.run_many([("info", tmp_path / "x.pt"), ("info", tmp_path / "x.pt", "--json")])
    assert "\x1b" not in text.stdout and "\u202e" not in text.stdout
    assert escape_text(hostile + key) in text.stdout
    card = json.loads(as_json.stdout)["model_card"]
    assert card["family"] == "llama" and any(e.startswith(hostile + key) for e in card["evidence"])


def test_info_load_fits_the_weights_to_each_cuda_device_torch_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No GPU: torch.cuda stands in for a machine with one, as ``mem_get_info`` would report it."""
    path = fx.write_safetensors(tmp_path / "model.safetensors", fx.llama(layers=2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (1000, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA A100-SXM4-80GB")
    assert main(["info", str(path), "--load", "--map-location", "cpu", "--json"]) == 0
    fits = json.loads(capsys.readouterr().out)["model_card"]["fits"]
    assert [f["device"] for f in fits] == ["cpu", "cuda:0"]
    assert fits[1] == {"device": "cuda:0", "name": "NVIDIA A100-SXM4-80GB", "free_bytes": 1000,
                       "total_bytes": 80 * 2**30, "fits": False}  # fmt: skip
    assert main(["info", str(path)]) == 0  # without --load the engine is not asked: cpu only
    assert "cuda:0" not in capsys.readouterr().out
