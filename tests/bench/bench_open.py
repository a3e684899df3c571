"""Benchmark: opening checkpoints in the app against a plain ``torch.load`` script, in one run.

    .venv/bin/python tests/bench/bench_open.py [--dir DIR] [--sizes 2] [--keys 100000] [--big-gib 20]

Generates the files once (kept in DIR, default ``bench-data/``), then measures, each in a fresh
process: the window (offscreen) from process start to a filled tree, to "Loaded on" filled, its
peak RSS and the filter keystrokes; ``checkpoint-inspector info --json``; and
``python -c "import torch; torch.load(f, map_location='cpu')"``. Prints a Markdown table.
The page cache is warm for every run (the files were just written or read).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.time()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"start": t, "end": time.time(), "rc": p.returncode,
                  "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "stdout": p.stdout[-4000:], "stderr": p.stderr[-2000:]}))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``cmd`` in a fresh process; wall time from its start, its peak RSS, its last output."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    result["seconds"] = float(result["end"]) - float(result["start"])  # type: ignore[arg-type]
    return result


def make_llm_bf16(path: Path, gib: float) -> None:
    """A LLaMA-shaped state_dict of bf16 tensors, about ``gib`` GiB, with random values."""
    import torch

    d, ff, vocab = 2048, 5632, 32000
    per_layer = 4 * d * d + 3 * d * ff + 2 * d
    layers = max(1, int((gib * 2**30 / 2 - 2 * vocab * d) / per_layer))
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float32).to(torch.bfloat16)

    sd = {"model.embed_tokens.weight": rand(vocab, d)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[p + f"self_attn.{name}.weight"] = rand(d, d)
        sd[p + "mlp.gate_proj.weight"] = rand(ff, d)
        sd[p + "mlp.up_proj.weight"] = rand(ff, d)
        sd[p + "mlp.down_proj.weight"] = rand(d, ff)
        sd[p + "input_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
        sd[p + "post_attention_layernorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    sd["model.norm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    sd["lm_head.weight"] = rand(vocab, d)
    torch.save(sd, path)


def make_many_keys(path: Path, count: int) -> None:
    """``count`` small float32 tensors under nested keys (the 100,000-key case of the README's benchmarks)."""
    import torch

    sd = {f"blocks.{i // 100}.experts.{i % 100}.weight": torch.zeros(4) for i in range(count)}
    torch.save(sd, path)


def make_sparse_big(path: Path, gib: int) -> None:
    """A ``gib`` GiB bf16 checkpoint written from a sparse mapped file (zeros; no RAM needed)."""
    import torch

    backing = path.with_suffix(".backing")
    per = 1 << 30  # elements per tensor: 2 GiB of bf16
    n = max(1, gib // 2)
    with open(backing, "wb") as f:
        f.truncate(n * per * 2)
    flat = torch.from_file(str(backing), shared=True, size=n * per, dtype=torch.bfloat16)
    sd = {f"model.layers.{i}.weight": flat[i * per : (i + 1) * per].view(32768, 32768) for i in range(n)}
    torch.save(sd, path)
    del flat, sd
    backing.unlink()


def bench_file(path: Path, filter_text: str, tmp: str, baseline_mmap: bool = False) -> dict[str, object]:
    env = dict(os.environ, BENCH_TMP=tmp, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    app = measure([sys.executable, str(ROOT / "tests/bench/gui_driver.py"), str(path), filter_text], env)
    stdout = str(app["stdout"]).strip().splitlines()
    if app["rc"] != 0 or not stdout:
        raise RuntimeError(f"the app run failed: {app['stderr']}")
    gui = json.loads(stdout[-1])
    info = measure([sys.executable, "-m", "inspector", "info", "--json", str(path)], env)
    # The sparse 20 GiB file would not fit in this machine's memory without mmap.
    load = "torch.load(sys.argv[1], map_location='cpu'" + (", mmap=True)" if baseline_mmap else ")")
    plain = measure([sys.executable, "-c", f"import sys, torch; {load}", str(path)])
    start = float(app["start"])  # type: ignore[arg-type]
    return {
        "file": path.name,
        "size_gib": path.stat().st_size / 2**30,
        "tree_s": gui["tree_shown_at"] - start,
        "loaded_s": gui.get("loaded_at", float("nan")) - start,
        "gui_rss_mb": gui["rss_peak_mb"],
        "filter_ms": gui.get("filter_ms_each"),
        "info_s": info["seconds"],
        "info_rss_mb": info["rss_mb"],
        "torch_s": plain["seconds"],
        "torch_rss_mb": plain["rss_mb"],
        "torch_rc": plain["rc"],
        "torch_mmap": baseline_mmap,
        "torch_in_gui": gui.get("torch_in_gui"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--sizes", default="2", help="GiB of the random bf16 checkpoints, comma-separated")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument(
        "--big-gib", type=int, default=0, help="also a sparse (zeros) checkpoint of this size"
    )
    args = parser.parse_args()
    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, str, bool]] = []
    for gib in (float(s) for s in args.sizes.split(",") if s):
        p = out_dir / f"llm_{gib:g}gib_bf16.pth"
        if not p.exists():
            make_llm_bf16(p, gib)
        files.append((p, "layers.1.mlp", False))
    if args.keys:
        p = out_dir / f"keys_{args.keys}.pth"
        if not p.exists():
            make_many_keys(p, args.keys)
        files.append((p, "blocks.57.experts", False))
    if args.big_gib:
        p = out_dir / f"sparse_{args.big_gib}gib_bf16.pth"
        if not p.exists():
            make_sparse_big(p, args.big_gib)
        files.append((p, "layers.1", True))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path, text, baseline_mmap in files:
            rows.append(bench_file(path, text, tmp, baseline_mmap))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; page cache warm.\n"
    )
    print(
        "| file | size | app: tree shown | app: Loaded on filled | app GUI peak RSS | filter keystrokes "
        "| `info --json` | plain `torch.load` | its peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        filt = " / ".join(f"{x} ms" for x in (r["filter_ms"] or [])[:3])  # type: ignore[union-attr]
        torch_s = f"{r['torch_s']:.2f} s" if r["torch_rc"] == 0 else f"failed after {r['torch_s']:.1f} s"
        if r["torch_mmap"]:
            torch_s += " (mmap=True)"
        print(
            f"| {r['file']} | {r['size_gib']:.2f} GiB | {r['tree_s']:.2f} s | {r['loaded_s']:.2f} s "
            f"| {r['gui_rss_mb']:.0f} MB | {filt} | {r['info_s']:.2f} s | {torch_s} "
            f"| {r['torch_rss_mb']:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
