"""Each CUDA device's free memory, as ``torch.cuda.mem_get_info`` reports it, reaches the window in
the worker's ``Ready`` and the card's fit lines. No GPU is needed: torch.cuda is stood in for."""

from __future__ import annotations

import json

import pytest
import torch

from inspector.core.host_memory import DeviceMemory
from inspector.engine.devices import device_memory
from inspector.engine.protocol import decode, encode
from inspector.engine.worker import ready

GIB = 2**30
#: (free, total, name) of each stand-in CUDA device.
CARDS = [(70 * GIB, 80 * GIB, "NVIDIA A100-SXM4-80GB"), (3 * GIB, 24 * GIB, "NVIDIA GeForce RTX 4090")]


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda as a machine with two CUDA devices would answer."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(CARDS))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: CARDS[i][:2])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: CARDS[i][2])


def test_each_cuda_device_reports_its_free_and_total_memory(two_gpus: None) -> None:
    assert device_memory() == [
        DeviceMemory("cuda:0", 70 * GIB, 80 * GIB, "NVIDIA A100-SXM4-80GB"),
        DeviceMemory("cuda:1", 3 * GIB, 24 * GIB, "NVIDIA GeForce RTX 4090"),
    ]


def test_a_device_torch_cannot_ask_is_left_out(two_gpus: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(i: int) -> tuple[int, int]:
        if i == 0:
            raise RuntimeError("CUDA error: out of memory")
        return CARDS[i][:2]

    monkeypatch.setattr(torch.cuda, "mem_get_info", busy)
    assert [m.device for m in device_memory()] == ["cuda:1"]


def test_without_cuda_no_accelerator_memory_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert [m for m in device_memory() if m.device.startswith("cuda")] == []


def test_ready_carries_the_devices_memory_over_the_protocol(two_gpus: None) -> None:
    said = ready()
    assert said.devices[-2:] == ("cuda:0", "cuda:1")
    heard = decode(json.loads(encode(said)[4:]))
    assert heard == said and heard.memory[0] == DeviceMemory(
        "cuda:0", 70 * GIB, 80 * GIB, "NVIDIA A100-SXM4-80GB"
    )


def test_a_malformed_memory_entry_is_left_out_and_the_rest_is_read() -> None:
    frame = {
        "type": "ready", "version": 3, "devices": ["cpu"], "pid": 1,
        "memory": [
            {"device": "cuda:0", "free": -1, "total": 8}, {"device": "cuda:1", "free": True},
            "cuda:2", {"device": 3, "free": 1}, {"device": "cuda:4", "free": 5, "total": None, "name": 7},
        ],
    }  # fmt: skip
    heard = decode(frame)
    assert heard.memory == (DeviceMemory("cuda:4", 5, None, ""),)  # type: ignore[union-attr]
