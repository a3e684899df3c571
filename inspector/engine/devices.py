"""Which devices this machine has: the cpu, each CUDA device, mps; asked of torch, nothing else.

The worker lists them, with each accelerator's free memory, when it says it is ready; a load checks
its map location against them and an export the devices its plan names. Light on purpose: the
worker imports it at start-up.
"""

from __future__ import annotations

import torch

from inspector.core.host_memory import DeviceMemory


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


def device_memory() -> list[DeviceMemory]:
    """Free and total memory of each CUDA device (``torch.cuda.mem_get_info``), and of mps where
    torch reports its limit (the recommended working set less what the driver holds). A device
    torch cannot ask (busy, lost) is left out: the card then says nothing of it."""
    out: list[DeviceMemory] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            try:
                free, total = torch.cuda.mem_get_info(i)
                name = str(torch.cuda.get_device_name(i))
            except (RuntimeError, AssertionError, ValueError):
                continue
            out.append(DeviceMemory(f"cuda:{i}", int(free), int(total), name))
    mps = getattr(torch, "mps", None)
    backend = getattr(torch.backends, "mps", None)
    limit = getattr(mps, "recommended_max_memory", None)
    held = getattr(mps, "driver_allocated_memory", None)
    if backend is not None and backend.is_available() and callable(limit) and callable(held):
        try:
            total = int(limit())
            out.append(DeviceMemory("mps", max(total - int(held()), 0), total, "Apple GPU"))
        except (RuntimeError, ValueError):
            pass
    return out
