"""Benchmark: the model card of 10^5 tensors against one bare walk of the same tree, in one run.

    .venv/bin/python tests/bench/bench_model_card.py [--dir bench-data] [--repeat 5]

Three checkpoints of about 100,000 tensors are generated once (kept in ``--dir``): a LLaMA-style
safetensors file of 11,111 decoder layers, a Mixtral-style one of 32 layers × 1,040 experts, and the
LLaMA state_dict saved by ``torch.save`` (a pickle: the card also searches it for optimizers). Each
is read once; then, interleaved, ``--repeat`` times each: one bare walk of the tree
(``tuple(index.root.tensors())``), the card as ``info`` and the window build it (the index as the
read leaves it: its tensor rows listed, counted by dtype and mapped by key in the read's one pass
over them), and the card of an index whose rows are not listed yet (the card then lists and maps
them: a walk plus the card). Medians in milliseconds, and the card's
ratio to the walk; run with bytecode caching on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inspector.core.model import CheckpointIndex  # noqa: E402
from inspector.core.model_card import build_model_card  # noqa: E402
from inspector.core.peek import peek  # noqa: E402
from tests import model_card_fixtures as fx  # noqa: E402

LLAMA_LAYERS = 100_000 // 9
MOE_LAYERS, MOE_EXPERTS = 32, 1_040


def moe(layers: int, experts: int) -> fx.Shapes:
    """MixtralForCausalLM's names: ``block_sparse_moe.experts.E.w1/w2/w3`` and a router ``gate``."""
    shapes: fx.Shapes = {"model.embed_tokens.weight": (2, 2)}
    for i in range(layers):
        b = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[b + f"self_attn.{n}.weight"] = (2, 2)
        shapes[b + "block_sparse_moe.gate.weight"] = (experts, 2)
        for e in range(experts):
            for w in ("w1", "w2", "w3"):
                shapes[b + f"block_sparse_moe.experts.{e}.{w}.weight"] = (2, 2)
        shapes[b + "input_layernorm.weight"] = (2,)
        shapes[b + "post_attention_layernorm.weight"] = (2,)
    return shapes | {"model.norm.weight": (2,), "lm_head.weight": (2, 2)}


def files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "LLaMA-style safetensors": folder / "card_llama_100k.safetensors",
        "Mixtral-style safetensors": folder / "card_moe_100k.safetensors",
        "LLaMA-style torch.save": folder / "card_llama_100k.pth",
    }
    llama = fx.llama(layers=LLAMA_LAYERS, hidden=2, inter=2, kv=1, vocab=2)
    if not made["LLaMA-style safetensors"].exists():
        fx.write_safetensors(made["LLaMA-style safetensors"], llama)
    if not made["Mixtral-style safetensors"].exists():
        fx.write_safetensors(made["Mixtral-style safetensors"], moe(MOE_LAYERS, MOE_EXPERTS))
    if not made["LLaMA-style torch.save"].exists():
        import torch

        storage = torch.zeros(4)  # views of one storage (every shape here has at most 4 elements)
        state = {k: storage[: torch.Size(s).numel()].view(s) for k, s in llama.items()}
        torch.save(state, made["LLaMA-style torch.save"])
    return made


def unlisted(index: CheckpointIndex) -> CheckpointIndex:
    """The index as if its reader had not listed, counted and mapped its tensor rows."""
    index.listed_rows = index.only_tensors = index.keyed_rows = index.counted_dtypes = None
    return index


def measure(index: CheckpointIndex, repeat: int) -> dict[str, float]:
    read = (index.listed_rows, index.only_tensors, index.keyed_rows, index.counted_dtypes)

    def as_read() -> CheckpointIndex:
        index.listed_rows, index.only_tensors, index.keyed_rows, index.counted_dtypes = read
        return index

    works: dict[str, Callable[[], object]] = {
        "walk": lambda: tuple(index.root.tensors()),
        "card": lambda: build_model_card(as_read()),
        "card, rows unlisted": lambda: build_model_card(unlisted(index)),
    }
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeat):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, load {os.getloadavg()[0]:.2f}, "
          f"bytecode caching {'off' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'on'}, "
          f"median of {args.repeat}\n")  # fmt: skip
    print("| checkpoint | tensors | family | walk ms | card ms | card / walk | card, rows unlisted ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for name, path in files(args.dir).items():
        index = peek(path)
        card = build_model_card(index)
        ms = measure(index, args.repeat)
        print(f"| {name} | {index.tensor_count:,} | {card.family} | {ms['walk']:.0f} | {ms['card']:.0f} "
              f"| {ms['card'] / ms['walk']:.2f} | {ms['card, rows unlisted']:.0f} |")  # fmt: skip
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
