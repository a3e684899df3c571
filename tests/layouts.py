"""Checkpoints in several files, built with the real libraries for the layout tests."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file


def sample_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {
        "model.layers.0.attn.weight": torch.randn(4, 6, generator=g),
        "model.layers.1.attn.weight": torch.randn(4, 6, generator=g),
        "model.embed.weight": torch.randn(10, 3, generator=g).to(torch.bfloat16),
        "lm_head.bias": torch.arange(5, dtype=torch.int64),
    }


def write_hf_set(folder: Path, state: dict[str, torch.Tensor], total_size: int | None = None) -> Path:
    """A two-shard set: the first half of the keys in safetensors, the rest in a torch .bin file."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = list(state)
    first, second = keys[: len(keys) // 2], keys[len(keys) // 2 :]
    save_file({k: state[k] for k in first}, str(folder / "model-00001-of-00002.safetensors"))
    torch.save({k: state[k] for k in second}, folder / "model-00002-of-00002.bin")
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first}
    weight_map.update({k: "model-00002-of-00002.bin" for k in second})
    size = sum(t.nbytes for t in state.values()) if total_size is None else total_size
    index = folder / "model.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": size}, "weight_map": weight_map}))
    return index


def write_dcp(folder: Path, state: dict[str, object]) -> Path:
    """A torch.distributed.checkpoint folder written by torch itself, in this one process."""
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save(state, checkpoint_id=str(folder))
    return folder
