"""Optimizer state mapped back to parameter names, from the static read of real checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inspector.core.optimizer_map import find_model_part, find_optimizers, map_optimizers
from inspector.core.peek import peek
from tests import checkpoints


class _Net(nn.Module):
    """Parameters with distinct shapes, and BatchNorm buffers between them in the state_dict."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.norm = nn.BatchNorm1d(6)
        self.proj = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(self.norm(self.embed(ids))))


def _train(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    ids = torch.tensor([0, 1, 2, 3, 4, 5])
    for _ in range(2):
        optimizer.zero_grad()
        model(ids).sum().backward()
        optimizer.step()


def _save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> Path:
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, path)
    return path


def _expected(model: nn.Module, params: list[nn.Parameter]) -> dict[int, str]:
    """param id (position in param_groups) → "model." + the parameter's state_dict name."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {i: "model." + names[id(p)] for i, p in enumerate(params)}


def test_adam_state_maps_to_parameter_names(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    _train(model, optimizer)
    path = _save(tmp_path / "adam.pth", model, optimizer)

    index = peek(str(path))
    [mapping] = map_optimizers(index)
    assert mapping.optimizer_key == "optimizer"
    assert mapping.model_key == "model"
    assert mapping.method == "order"
    assert mapping.notes == []
    expected = _expected(model, list(model.parameters()))
    got = {p.param_id: p.param_key for p in mapping.params}
    assert got == expected
    # running_mean / running_var / num_batches_tracked are buffers: never matched.
    assert not any("running" in (k or "") or "batches" in (k or "") for k in got.values())
    state = torch.load(path, weights_only=True)
    for p in mapping.params:
        assert p.slot_key == f"optimizer.state.{p.param_id}"
        assert sorted(k.rsplit(".", 1)[1] for k in p.state_keys) == ["exp_avg", "exp_avg_sq", "step"]
        name = p.param_key.removeprefix("model.")  # type: ignore[union-attr]
        assert state["optimizer"]["state"][p.param_id]["exp_avg"].shape == state["model"][name].shape
    owner = {key: p.param_key for p in mapping.params for key in p.state_keys}
    assert owner["optimizer.state.0.exp_avg"] == "model.embed.weight"
    assert {p.slot_key: p.param_key for p in mapping.params}["optimizer.state.3"] == expected[3]


def test_training_fixture_and_example_map_completely(tmp_path: Path) -> None:
    for path in (
        checkpoints.build_training(tmp_path).path,
        Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth",
    ):
        index = peek(str(path))
        [mapping] = map_optimizers(index)
        loaded = torch.load(path, weights_only=True)
        buffers = ("running_mean", "running_var")
        params = [k for k, v in loaded["model"].items() if v.is_floating_point() and not k.endswith(buffers)]
        assert [p.param_key for p in mapping.params] == ["model." + k for k in params]
        assert not any(p.shape_mismatch for p in mapping.params)


def test_frozen_parameters_are_skipped_by_shape(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = _Net()
    model.embed.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1, momentum=0.9)
    _train(model, optimizer)
    path = _save(tmp_path / "frozen.pth", model, optimizer)

    [mapping] = map_optimizers(peek(str(path)))
    assert mapping.method == "shape"
    assert mapping.notes  # says the counts differ
    assert {p.param_id: p.param_key for p in mapping.params} == _expected(model, trainable)
    assert all(k.endswith("momentum_buffer") for p in mapping.params for k in p.state_keys)


def test_saved_param_names_are_used_as_they_are(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = _Net()
    named = list(model.named_parameters())
    optimizer = torch.optim.Adam(named[::-1], lr=1e-3)  # any order: the names say which is which
    _train(model, optimizer)
    saved = optimizer.state_dict()
    assert "param_names" in saved["param_groups"][0]
    path = _save(tmp_path / "named.pth", model, optimizer)

    [mapping] = map_optimizers(peek(str(path)))
    assert mapping.method == "param_names"
    assert [p.param_key for p in mapping.params] == ["model." + name for name, _ in named[::-1]]


def test_lightning_layout_and_plain_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = _Net()
    optimizer = torch.optim.Adam(model.parameters())
    _train(model, optimizer)
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()]}, path)
    index = peek(str(path))
    assert [n.key for n in find_optimizers(index)] == ["optimizer_states.0"]
    assert find_model_part(index) is not None
    [mapping] = map_optimizers(index)
    assert mapping.model_key == "state_dict"
    assert mapping.params[0].param_key == "state_dict.embed.weight"

    plain = tmp_path / "plain.pth"
    torch.save(model.state_dict(), plain)
    assert map_optimizers(peek(str(plain))) == []
