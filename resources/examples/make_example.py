"""Writes the example checkpoint shipped in resources/examples/ (run: python make_example.py).

A small decoder-only transformer saved the way training scripts save: the model's state_dict,
real Adam optimizer state after two steps, a StepLR scheduler, the epoch and the run's arguments.
Deterministic, and well under 1 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

OUT = Path(__file__).with_name("tiny_transformer_training.pth")


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.attn = nn.ModuleDict(
            {name: nn.Linear(d, d, bias=False) for name in ("q_proj", "k_proj", "v_proj", "o_proj")}
        )
        self.norm1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norm2 = nn.LayerNorm(d)


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 96, d: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(Block(d) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        for block in self.layers:
            a = block.norm1(x)
            q, k, v = block.attn["q_proj"](a), block.attn["k_proj"](a), block.attn["v_proj"](a)
            w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
            x = x + block.attn["o_proj"](w @ v)
            x = x + block.mlp(block.norm2(x))
        return self.lm_head(self.norm(x))


def build() -> dict[str, object]:
    torch.manual_seed(0)
    model = TinyTransformer()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    ids = torch.randint(0, 96, (4, 16))
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        final_loss = loss.item()
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 7,
        "global_step": 2,
        "best_loss": round(final_loss, 4),
        "args": {"lr": 3e-4, "batch_size": 4, "d_model": 32, "layers": 2, "run_name": "tiny-demo"},
    }


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    torch.save(build(), out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
