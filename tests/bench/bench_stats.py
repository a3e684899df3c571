"""Benchmark: statistics of every tensor of a checkpoint, against a plain ``torch`` loop, in one run.

    .venv/bin/python tests/bench/bench_stats.py [--file bench-data/llm_2gib_bf16.pth] [--gib 2]

Each contender runs in a fresh process (wall time from process start, peak RSS):

- the inspector: ``MappedCheckpoint`` + ``stats_all`` (what the "stats-all" job and
  ``checkpoint-inspector stats`` run): min, max, mean, std, mean |x|, L2 norm, zeros, NaN, ±Inf;
- plain torch: ``torch.load(mmap=True, weights_only=True)``, then per tensor ``min``, ``max``,
  ``mean``, ``std``, ``abs().mean()``, ``norm()``, ``(t == 0).sum()``, ``isnan().sum()``,
  ``isinf().sum()`` in the tensor's own dtype, and once more upcast to float32 first.

The file is generated once by ``bench_open.make_llm_bf16`` when missing; the page cache is warm.
A second table times ``checkpoint-inspector stats`` of the 300 KB example (NumPy only, no torch)
against ``python -c "import torch"``, interleaved, median of ``--repeat`` (≥ 3) each. Bytecode
caching is on (``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_open import ROOT, make_llm_bf16, measure

_INSPECTOR = r"""
import json, sys, time
t0 = time.perf_counter()
from inspector.engine.direct_read import MappedCheckpoint
from inspector.engine.inspect_jobs import stats_all
with MappedCheckpoint(sys.argv[1]) as mapped:
    result = stats_all(mapped)
print(json.dumps({"tensors": len(result["tensors"]), "flagged": len(result["flagged"]),
                  "inner_s": time.perf_counter() - t0, "bytes": result["bytes"]}))
"""

_TORCH = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
upcast = sys.argv[2] == "float32"
sd = torch.load(sys.argv[1], map_location="cpu", mmap=True, weights_only=True)
flagged = 0
for t in sd.values():
    x = t.float() if upcast else t
    r = (x.min(), x.max(), x.mean(), x.std(), x.abs().mean(), x.norm(),
         (x == 0).sum(), torch.isnan(x).sum(), torch.isinf(x).sum())
    flagged += int(r[7]) + int(r[8]) > 0
print(json.dumps({"tensors": len(sd), "flagged": flagged, "inner_s": time.perf_counter() - t0}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", default=str(ROOT / "bench-data" / "llm_2gib_bf16.pth"))
    parser.add_argument("--gib", type=float, default=2.0, help="size of the file to generate when missing")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each start-up row (at least 3)")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up table")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    if args.startup_only:
        _startup_rows(env, max(3, args.repeat))
        return 0
    path = Path(args.file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_llm_bf16(path, args.gib)
    with open(path, "rb") as f:  # warm the page cache once for every contender
        while f.read(64 << 20):
            pass
    runs = [
        ("inspector `stats-all` (mapped, chunked)", [sys.executable, "-c", _INSPECTOR, str(path)]),
        ("plain torch loop, native dtype", [sys.executable, "-c", _TORCH, str(path), "native"]),
        ("plain torch loop, upcast to float32", [sys.executable, "-c", _TORCH, str(path), "float32"]),
    ]
    rows = []
    for label, cmd in runs:
        result = measure(cmd, env)
        if result["rc"] != 0:
            raise RuntimeError(f"{label} failed: {result['stderr']}")
        inner = json.loads(str(result["stdout"]).strip().splitlines()[-1])
        rows.append((label, result["seconds"], result["rss_mb"], inner))
        print(json.dumps({"run": label, "seconds": result["seconds"], **inner}), file=sys.stderr)
    size = path.stat().st_size
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; page cache warm.\n"
        f"File: {path.name}, {size / 2**30:.2f} GiB, {rows[0][3]['tensors']} tensors.\n"
    )
    print("| run | wall time (process) | peak RSS | GB/s |")
    print("|---|---|---|---|")
    for label, seconds, rss, _ in rows:
        print(f"| {label} | {seconds:.2f} s | {rss:.0f} MB | {size / 1e9 / seconds:.2f} |")  # type: ignore[operator]
    _startup_rows(env, max(3, args.repeat))
    return 0


def _startup_rows(env: dict[str, str], repeat: int) -> None:
    """``checkpoint-inspector stats`` of the example against importing torch, interleaved."""
    example = ROOT / "resources" / "examples" / "tiny_transformer_training.pth"
    runs = [
        ("`checkpoint-inspector stats` of the 300 KB example", [sys.executable, "-m", "inspector", "stats",
                                                               str(example)]),
        ('`python -c "import torch"`', [sys.executable, "-c", "import torch"]),
    ]  # fmt: skip
    for _, cmd in runs:  # compile the bytecode once
        measure(cmd, env)
    seconds: dict[str, list[float]] = {label: [] for label, _ in runs}
    rss: dict[str, float] = {}
    for _ in range(repeat):
        for label, cmd in runs:
            result = measure(cmd, env)
            if result["rc"] != 0:
                raise RuntimeError(f"{label} failed: {result['stderr']}")
            seconds[label].append(float(result["seconds"]))  # type: ignore[arg-type]
            rss[label] = max(rss.get(label, 0.0), float(result["rss_mb"]))  # type: ignore[arg-type]
    print(f"\nStart-up (median of {repeat}, interleaved; bytecode caching on):\n")
    print("| run | wall time (median) | runs | peak RSS |")
    print("|---|---:|---|---:|")
    for label, values in seconds.items():
        runs_text = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {statistics.median(values):.2f} s | {runs_text} | {rss[label]:.0f} MB |")


if __name__ == "__main__":
    sys.exit(main())
