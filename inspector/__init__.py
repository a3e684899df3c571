"""Checkpoint Inspector: see, check and convert PyTorch checkpoints safely."""

__version__ = "0.1.0"
