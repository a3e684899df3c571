"""Benchmark: exporting a ~2 GB bf16 checkpoint against copying the same file, in one run.

    .venv/bin/python tests/bench/bench_export.py [--dir DIR] [--gib 2] [--repeat 3]

Uses ``bench_open.make_llm_bf16`` (the file is kept in DIR, default ``bench-data/``) and
``bench_open.measure`` (a fresh process each; wall time and peak RSS). Each export runs the whole
path in the CLI: write, fsync, verify (re-read with the project's reader and with torch or
safetensors, every value compared) and rename. The baselines run in the same session, interleaved
with the exports: ``shutil.copyfile`` alone, and followed by an fsync (which the export always does).
Before each run the page cache's dirty pages are written out (``os.sync``, not timed), so no run
waits on the disk for what the run before it wrote.
Every row is the median of ``--repeat`` runs (at least 3); the page cache is warm for every run and
bytecode caching is on (``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment, as
an installed app has its ``.pyc`` files). Prints a Markdown table with each row's ratio to copy + fsync.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_open import make_llm_bf16, measure  # noqa: E402

_COPY = (
    "import os, shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])\n"
    "if sys.argv[3] == '1':\n"
    "    fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd); os.close(fd)\n"
)

COPY = "shutil.copyfile"
COPY_FSYNC = "shutil.copyfile + fsync"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each (at least 3); the median is shown"
    )
    parser.add_argument("--no-pth", action="store_true", help="skip the torch-format exports")
    args = parser.parse_args()
    repeat = max(3, args.repeat)
    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f"llm_{args.gib:g}gib_bf16.pth"
    if not source.exists():
        make_llm_bf16(source, args.gib)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    with open(source, "rb") as f:  # warm the page cache
        while f.read(64 << 20):
            pass
    cli = [sys.executable, "-m", "inspector", "export", str(source)]
    seconds: dict[str, list[float]] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        runs = [
            (COPY, [sys.executable, "-c", _COPY, str(source), f"{tmp}/copy.pth", "0"]),
            (COPY_FSYNC, [sys.executable, "-c", _COPY, str(source), f"{tmp}/copy2.pth", "1"]),
            ("export → safetensors", [*cli, "-o", f"{tmp}/out.safetensors", "--force"]),
            (  # the same without the source's sha256 in the record of where it came from
                "export → safetensors, --no-provenance",
                [*cli, "-o", f"{tmp}/out2.safetensors", "--force", "--no-provenance"],
            ),
        ]
        if not args.no_pth:
            runs.append(("export → pth", [*cli, "-o", f"{tmp}/out.pth", "--force"]))
        measure(runs[0][1], env)  # warm-up: the first write into a fresh folder pays for the page cache
        measure(runs[2][1], env)  # and the first CLI run compiles the bytecode
        for _ in range(repeat):  # interleaved, so a noisy moment hits every row alike
            for label, cmd in runs:
                os.sync()  # no run pays for writing back what the one before it left dirty
                result = measure(cmd, env)
                if result["rc"] != 0:
                    raise RuntimeError(f"{label} failed: {result['stderr']}")
                seconds.setdefault(label, []).append(float(result["seconds"]))  # type: ignore[arg-type]
                rss[label] = max(rss.get(label, 0.0), float(result["rss_mb"]))  # type: ignore[arg-type]
                for f in Path(tmp).iterdir():
                    f.unlink()
    median = {label: statistics.median(values) for label, values in seconds.items()}
    size = source.stat().st_size
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; page cache warm; bytecode caching on.\n"
        f"File: {source.name}, {size / 2**30:.2f} GiB; median of {repeat} runs each, interleaved.\n"
    )
    print("| run | seconds (median) | runs | × copyfile | × copy + fsync | peak RSS (MB) |")
    print("|---|---:|---|---:|---:|---:|")
    for label, value in median.items():
        runs_text = ", ".join(f"{s:.2f}" for s in seconds[label])
        print(
            f"| {label} | {value:.2f} | {runs_text} | {value / median[COPY]:.2f} | "
            f"{value / median[COPY_FSYNC]:.2f} | {rss[label]:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
