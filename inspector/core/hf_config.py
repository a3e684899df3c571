"""An HF ``config.json`` (and a PEFT ``adapter_config.json``) beside a checkpoint, read as JSON data.

Nothing in it is executed or imported (``auto_map`` and the like stay text); a file over
``MAX_CONFIG_BYTES``, not JSON, or not an object is reported in one sentence and not used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

MAX_CONFIG_BYTES = 1 << 20
CONFIG_NAMES = ("config.json", "adapter_config.json")

#: The entries a card shows (the rest of a config is about training or tokenizers).
SHOWN_ENTRIES = (
    "model_type", "architectures", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer",
    "num_layers", "num_decoder_layers", "num_attention_heads", "n_head", "num_heads", "num_key_value_heads",
    "head_dim", "d_kv", "intermediate_size", "n_inner", "d_ff", "vocab_size", "max_position_embeddings",
    "n_positions", "tie_word_embeddings", "torch_dtype", "peft_type", "base_model_name_or_path", "r",
    "lora_alpha", "target_modules",
)  # fmt: skip


@dataclass
class ModelConfig:
    """The JSON objects of the config files found beside a checkpoint, merged, and what went wrong."""

    paths: list[str] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one sentence per config file not used

    @property
    def shown(self) -> dict[str, object]:
        return {k: self.values[k] for k in SHOWN_ENTRIES if k in self.values}


def config_folder(path: str) -> str | None:
    """The folder a checkpoint's config would sit in: the folder itself for a shard set or DCP
    folder, else the file's folder; None for what is not a local path."""
    if os.path.isdir(path):
        return path
    if os.path.isfile(path):
        return os.path.dirname(os.path.abspath(path))
    return None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def read_config(path: str) -> ModelConfig:
    """The config files beside ``path`` (see the module docstring); empty when there are none."""
    found = ModelConfig()
    folder = config_folder(path)
    if folder is None:
        return found
    for name in CONFIG_NAMES:
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            continue
        try:
            with open(file, "rb") as f:
                raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            found.problems.append(f"{name} beside the checkpoint could not be read ({exc.strerror}).")
            continue
        if len(raw) > MAX_CONFIG_BYTES:
            found.problems.append(
                f"{name} beside the checkpoint is over {MAX_CONFIG_BYTES >> 20} MiB; not read."
            )
            continue
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            found.problems.append(f"{name} beside the checkpoint is not valid JSON ({exc}); not used.")
            continue
        if not isinstance(value, dict):
            found.problems.append(f"{name} beside the checkpoint is not a JSON object; not used.")
            continue
        found.paths.append(file)
        for k, v in value.items():
            found.values.setdefault(str(k), v)
    return found
