"""Which devices this machine has: the cpu, each CUDA device, mps; asked of torch, nothing else.

The worker lists them when it says it is ready, a load checks its map location against them and
an export the devices its plan names. Light on purpose: the worker imports it at start-up.
"""

from __future__ import annotations

import torch


def visible_devices() -> list[str]:
    """Devices tensors can be placed on here: cpu first, then each CUDA device, then mps."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.extend(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def loadable_devices() -> list[str]:
    """The devices a user may load onto here: cpu, meta (shapes without data), then the accelerators."""
    cpu, *accelerators = visible_devices()
    return [cpu, "meta", *accelerators]


def why_unavailable(device: str) -> str | None:
    """Why ``device`` does not exist on this machine, or ``None`` when it does."""
    kind, _, index = device.partition(":")
    if kind in {"cpu", "meta"}:
        return None
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "this machine has no CUDA device"
        count = torch.cuda.device_count()
        if index.isdigit() and int(index) >= count:
            plural = "device" if count == 1 else "devices"
            return f"this machine has {count} CUDA {plural} (cuda:0 to cuda:{count - 1})"
        return None
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return "this machine has no MPS (Apple GPU) device"
        return None
    module = getattr(torch, kind, None)
    is_available = getattr(module, "is_available", None)
    if callable(is_available) and is_available():
        return None
    return f"this machine has no {kind} device"
