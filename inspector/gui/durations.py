"""How long something took, as the window says it: the time the user waited, from the request to the
answer, and the engine's own measure beside it when that is much shorter (the rest was the loader
starting, or busy with another job)."""

from __future__ import annotations

from collections.abc import Callable

#: Seconds from an arbitrary start (``time.monotonic``); tests pass a clock they move by hand.
Clock = Callable[[], float]


def format_seconds(seconds: float) -> str:
    """0.0153 → "15 ms", 3.94 → "3.9 s"."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def wait_text(waited: float, measured: object, measured_label: str) -> str:
    """``waited`` as text, then "(label measured)" when the part the engine measured is under half of it."""
    text = format_seconds(max(waited, 0.0))
    if isinstance(measured, (int, float)) and 0 <= measured < waited / 2 and waited - measured >= 0.05:
        text += f" ({measured_label} {format_seconds(float(measured))})"
    return text
