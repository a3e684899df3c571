""" "As saved where possible, else cpu": storages stay on devices this machine has, the rest go to cpu,
and the load result says which saved devices moved."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inspector.core.load_options import AS_SAVED_ELSE_CPU, LoadOptions
from inspector.engine.loader import load_checkpoint
from tests.checkpoints import build_cuda_tagged

FALLBACK = LoadOptions(map_location=AS_SAVED_ELSE_CPU)


def _has(device: str) -> bool:
    return torch.cuda.is_available() and int(device.split(":")[1]) < torch.cuda.device_count()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_devices_this_machine_lacks_move_to_cpu_and_are_reported(tmp_path: Path, fmt: str) -> None:
    built = build_cuda_tagged(tmp_path, fmt)
    result = load_checkpoint(str(built.path), FALLBACK)
    loaded = {".".join(map(str, path)): device for path, device in result.devices}
    for key, saved in built.devices.items():
        assert loaded[key] == (saved if _has(saved) else "cpu"), key
    assert loaded["cpu_buffer"] == "cpu"
    expected = {saved: "cpu" for saved in sorted(set(built.devices.values())) if not _has(saved)}
    assert result.moved == expected
    assert result.to_json()["moved"] == expected


def test_a_file_saved_on_cpu_moves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cpu.pth"
    torch.save({"w": torch.ones(3)}, path)
    result = load_checkpoint(str(path), FALLBACK)
    assert result.devices == [(("w",), "cpu")] and result.moved == {}


def test_safetensors_loads_on_cpu(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(3)}, str(path))
    result = load_checkpoint(str(path), FALLBACK)
    assert result.devices == [(("w",), "cpu")] and result.moved == {}


def test_a_dcp_folder_loads_its_chunks_as_saved_where_possible(tmp_path: Path) -> None:
    from tests.layouts import write_dcp

    folder = write_dcp(tmp_path / "ckpt", {"w": torch.ones(2, 3), "b": torch.zeros(4)})
    result = load_checkpoint(str(folder), FALLBACK)
    assert sorted(result.devices) == [(("b",), "cpu"), (("w",), "cpu")] and result.moved == {}
