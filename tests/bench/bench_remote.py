"""Benchmark: the tree of a checkpoint where it lives, against downloading the whole file, in one run.

    .venv/bin/python tests/bench/bench_remote.py [--dir DIR] [--gib 2] [--shards 20] [--latency 0.05]

Serves a LLaMA-shaped zip checkpoint (``bench_open.make_llm_bf16``, kept in DIR, default
``bench-data/``) and an HF set of ``--shards`` safetensors shards from a loopback HTTP server that
adds ``--latency`` seconds to every answer. Measures, median of 3, the static read by ranges
(requests, bytes fetched, seconds to the tree) and, as the baseline, the whole file fetched by
fsspec and by ``curl``; the set's tree with its shards read ``PARALLEL_READS`` at a time, beside
them read one after another. Run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` unset).
"""

from __future__ import annotations

import argparse
import json
import mmap
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inspector.core.formatting import format_bytes  # noqa: E402
from inspector.remote import concurrent_reads  # noqa: E402
from inspector.remote.static_read import peek_url  # noqa: E402
from tests.bench.bench_open import make_llm_bf16  # noqa: E402
from tests.remote.servers import range_server  # noqa: E402


def make_shard_set(folder: Path, shards: int) -> Path:
    """``shards`` safetensors files of 8 bf16 tensors (16 MiB each) and their index."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        return index
    weight_map: dict[str, str] = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {f"model.layers.{s}.w{i}": torch.zeros(1024, 1024, dtype=torch.bfloat16) for i in range(8)}
        save_file(tensors, folder / name)
        weight_map.update(dict.fromkeys(tensors, name))
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def median_of_3(run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(3):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    data = Path(args.dir)
    data.mkdir(exist_ok=True)
    big = data / f"llm_{args.gib:g}gib_bf16.pth"
    if not big.exists():
        make_llm_bf16(big, args.gib)
    index = make_shard_set(data / f"hf_set_{args.shards}", args.shards)

    import fsspec

    rows = []
    with range_server(args.latency) as server, open(big, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        server.add(big.name, mapped)  # type: ignore[arg-type]
        for shard in index.parent.iterdir():
            server.add(f"set/{shard.name}", shard.read_bytes())
        for label, url, size in (
            (f"zip .pth, {format_bytes(big.stat().st_size)}", server.url(big.name), big.stat().st_size),
            (f"HF set, {args.shards} shards", server.url(f"set/{index.name}"),
             sum(p.stat().st_size for p in index.parent.iterdir())),
        ):  # fmt: skip
            if "set" in url:
                at_once = concurrent_reads.PARALLEL_READS
                for parallel, how in (
                    (1, "tree, shards one by one"),
                    (at_once, f"tree, {at_once} shards at once"),
                ):
                    concurrent_reads.PARALLEL_READS = parallel
                    seconds, (_, transfer) = median_of_3(partial(peek_url, url))  # type: ignore[misc]
                    rows.append((label, how, seconds, transfer.requests, transfer.fetched, size))
                concurrent_reads.PARALLEL_READS = at_once
                continue
            seconds, (_, transfer) = median_of_3(partial(peek_url, url))  # type: ignore[misc]
            rows.append((label, "tree by ranges", seconds, transfer.requests, transfer.fetched, size))
            fs = fsspec.filesystem("http", skip_instance_cache=True)
            seconds, _ = median_of_3(partial(fs.cat_file, url))
            rows.append((label, "fsspec download", seconds, 1, size, size))
            if shutil.which("curl"):
                curl = ["curl", "-sf", "-o", "/dev/null", url]
                seconds, _ = median_of_3(partial(subprocess.run, curl, check=True))
                rows.append((label, "curl download", seconds, 1, size, size))
        mapped.close()
    print(f"latency {args.latency * 1000:g} ms per request; median of 3\n")
    print("| file | read | seconds | requests | bytes fetched | share of the file |")
    print("|---|---|---|---|---|---|")
    for label, how, seconds, requests, fetched, size in rows:
        print(f"| {label} | {how} | {seconds:.3f} | {requests} | {format_bytes(fetched)} | "
              f"{fetched / size:.4%} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
