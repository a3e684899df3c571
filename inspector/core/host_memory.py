"""How much memory a device has free, for the card's "fits in memory" lines (weights only): this
computer's now, and the shape in which the engine reports an accelerator's."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceMemory:
    """A device's memory as reported where the device is: the cpu's from this computer, a CUDA
    device's from ``torch.cuda.mem_get_info`` in the engine. ``total`` is None where not reported."""

    device: str  # cpu, cuda:0, mps
    free: int
    total: int | None = None
    name: str = ""  # the device's name (``NVIDIA H200``), where reported


def available_memory() -> int | None:
    """Bytes the system could give a process now (Linux ``MemAvailable``, else free pages), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
