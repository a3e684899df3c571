"""How much memory this computer has free now, for the card's "fits in memory" line (weights only)."""

from __future__ import annotations

import os


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
