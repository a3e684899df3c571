"""Benchmark: exporting a ~2 GB bf16 checkpoint against copying the same file, in one run.

    .venv/bin/python tests/bench/bench_export.py [--dir DIR] [--gib 2] [--repeat 1]

Uses ``bench_open.make_llm_bf16`` (the file is kept in DIR, default ``bench-data/``) and
``bench_open.measure`` (a fresh process each; wall time and peak RSS). Each export runs the whole
path: stream, fsync, verify (re-read with the project's reader and with torch / safetensors,
values compared) and rename. ``shutil.copyfile`` is measured twice: alone, and followed by an
fsync (which the export always does). The page cache is warm for every run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_open import make_llm_bf16, measure  # noqa: E402

_COPY = (
    "import os, shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])\n"
    "if sys.argv[3] == '1':\n"
    "    fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)\n"
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best time is shown")
    args = parser.parse_args()
    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f"llm_{args.gib:g}gib_bf16.pth"
    if not source.exists():
        make_llm_bf16(source, args.gib)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    source.read_bytes() if source.stat().st_size < (8 << 30) else None  # warm the page cache
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        runs = [
            ("shutil.copyfile", [sys.executable, "-c", _COPY, str(source), f"{tmp}/copy.pth", "0"]),
            ("shutil.copyfile + fsync", [sys.executable, "-c", _COPY, str(source), f"{tmp}/copy2.pth", "1"]),
            ("export → safetensors", [sys.executable, "-m", "inspector", "export", str(source),
                                      "-o", f"{tmp}/out.safetensors", "--force"]),
            ("export → pth", [sys.executable, "-m", "inspector", "export", str(source),
                              "-o", f"{tmp}/out.pth", "--force"]),
            ("export → pth --dtype bfloat16 (already bf16)", [sys.executable, "-m", "inspector",
                                                                      "export", str(source), "-o",
                                                                      f"{tmp}/out_bf16.pth", "--force",
                                                                      "--dtype", "bfloat16"]),
        ]  # fmt: skip
        measure(runs[0][1], env)  # warm-up: the first write into a fresh folder pays for the page cache
        for label, cmd in runs:
            best_s, best_rss = float("inf"), 0.0
            for _ in range(args.repeat):
                result = measure(cmd, env)
                if result["rc"] != 0:
                    raise RuntimeError(f"{label} failed: {result['stderr']}")
                if float(result["seconds"]) < best_s:  # type: ignore[arg-type]
                    best_s, best_rss = float(result["seconds"]), float(result["rss_mb"])  # type: ignore[arg-type]
            rows.append((label, best_s, best_rss))
            for f in Path(tmp).iterdir():
                f.unlink()
    copy_s = rows[0][1]
    size = source.stat().st_size
    print(f"\n{source.name}: {size / 2**30:.2f} GiB, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n")  # fmt: skip
    print("| run | seconds | × copyfile | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for label, seconds, rss in rows:
        print(f"| {label} | {seconds:.2f} | {seconds / copy_s:.2f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
