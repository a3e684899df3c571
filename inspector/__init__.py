"""Checkpoint Inspector: see, check and convert PyTorch checkpoints safely.

``inspector.open(path)`` reads a checkpoint statically for notebooks and scripts (``inspector.api``);
importing the package imports nothing else until that is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Checkpoint", "ExportPlan", "Tensor", "__version__", "open"]

if TYPE_CHECKING:
    from inspector.api import Checkpoint, ExportPlan, Tensor, open


def __getattr__(name: str) -> Any:
    if name in ("Checkpoint", "ExportPlan", "Tensor", "open"):
        from inspector import api

        return getattr(api, name)
    raise AttributeError(f"module 'inspector' has no attribute {name!r}")
