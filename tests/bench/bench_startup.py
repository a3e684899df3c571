"""Benchmark: the app's start-up against a bare Qt window and ``import torch``, in one run.

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python tests/bench/bench_startup.py [--repeat 5]

Each run is a fresh process started the way a double-click starts it, timed from just before it is
spawned: the app (``tests/bench/gui_driver.py --startup``: ``inspector.app.run_gui``) until the
first paint of its tree with the window titled after the file, and until "Loaded on" is filled; the
bare window (``tests/bench/bare_qt_window.py``: a ``QMainWindow`` and one ``QTreeView``) until its
first paint, and the same window reading the file and showing its top-level rows (``--read``: the
least any window showing the file's tree must do);
``python -c "import torch"``. The CPU time each window process spent until that paint
is shown too: unlike wall time, it hardly moves with the machine's load. The runs are interleaved
and each figure is the median of ``--repeat``; bytecode caching is on (``PYTHONDONTWRITEBYTECODE``
is removed from the children's environment). Files: the example checkpoint and a 2 GiB bf16 file
(generated into ``bench-data/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_open import make_llm_bf16, measure

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "tiny_transformer_training.pth"
#: The goals: the window within this factor of the bare one; "Loaded on" within this of torch's import.
WINDOW_FACTOR = 1.3
LOADED_MARGIN_S = 0.3


def child_env(tmp: str, name: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=os.path.join(tmp, "config"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's installed app has its .pyc files
    env["CHECKPOINT_INSPECTOR_INSTANCE"] = f"bench-startup-{os.getpid()}-{name}"
    return env


def run_json(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    """Start ``cmd`` fresh; the wall time of its start and the JSON line it printed last."""
    result = measure(cmd, env)
    lines = str(result["stdout"]).strip().splitlines()
    if result["rc"] != 0 or not lines:
        raise RuntimeError(f"{cmd[1]} failed: {result['stderr']}")
    return float(result["start"]), json.loads(lines[-1])  # type: ignore[arg-type]


def one_round(path: Path, tmp: str, index: int) -> dict[str, float]:
    env = child_env(tmp, str(index))
    start, bare = run_json([sys.executable, str(ROOT / "tests/bench/bare_qt_window.py"), str(path)], env)
    row = {"bare_s": float(bare["tree_painted_at"]) - start}  # type: ignore[arg-type]
    row["bare_cpu_s"] = float(bare["cpu_at_paint"])  # type: ignore[arg-type]
    reading = [sys.executable, str(ROOT / "tests/bench/bare_qt_window.py"), str(path), "--read"]
    start, least = run_json(reading, env)
    row["reading_s"] = float(least["tree_painted_at"]) - start  # type: ignore[arg-type]
    row["reading_cpu_s"] = float(least["cpu_at_paint"])  # type: ignore[arg-type]
    start, app = run_json(
        [sys.executable, str(ROOT / "tests/bench/gui_driver.py"), "--startup", str(path)], env
    )
    if path.name not in str(app.get("title")) or app.get("load_failed") or app.get("torch_in_gui"):
        raise RuntimeError(f"the app did not show {path.name} loaded: {app}")
    row["app_tree_s"] = float(app["tree_painted_at"]) - start  # type: ignore[arg-type]
    row["app_cpu_s"] = float(app["cpu_at_paint"])  # type: ignore[arg-type]
    row["app_loaded_s"] = float(app["loaded_at"]) - start  # type: ignore[arg-type]
    torch_run = measure([sys.executable, "-c", "import torch"], env)
    row["torch_s"] = float(torch_run["seconds"])  # type: ignore[arg-type]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the bf16 file (0: none)")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        parser.error("run it under a display: xvfb-run -s '-screen 0 1280x800x24' …")
    files = [EXAMPLE]
    if args.big_gib:
        big = Path(args.dir) / f"llm_{args.big_gib:g}gib_bf16.pth"
        if not big.exists():
            big.parent.mkdir(parents=True, exist_ok=True)
            make_llm_bf16(big, args.big_gib)
        files.append(big)
    results: dict[Path, list[dict[str, float]]] = {f: [] for f in files}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for f in files:  # interleaved, so a busy moment of the machine hits every figure alike
                results[f].append(one_round(f, tmp, i))
                print(json.dumps({"file": f.name, **results[f][-1]}), file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}, Xvfb; bytecode caching on; "
        f"median of {args.repeat} interleaved runs.\n"
    )
    print(
        "| file | size | bare `QMainWindow` + `QTreeView` | the same, reading the file's top rows | × bare "
        "| app: window titled, tree shown | × bare "
        '| CPU to that paint: bare / reading / app | `python -c "import torch"` | app: Loaded on filled '
        "| − torch's import |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    window_met = loaded_met = True
    for f, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        ratio = med["app_tree_s"] / med["bare_s"]
        extra = med["app_loaded_s"] - med["torch_s"]
        window_met = window_met and ratio <= WINDOW_FACTOR
        loaded_met = loaded_met and extra <= LOADED_MARGIN_S
        size = f.stat().st_size
        shown = f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**10:.0f} KiB"
        print(
            f"| {f.name} | {shown} | {med['bare_s']:.2f} s | {med['reading_s']:.2f} s "
            f"| {med['reading_s'] / med['bare_s']:.2f}× | {med['app_tree_s']:.2f} s | {ratio:.2f}× "
            f"| {med['bare_cpu_s']:.2f} s / {med['reading_cpu_s']:.2f} s / {med['app_cpu_s']:.2f} s "
            f"| {med['torch_s']:.2f} s | {med['app_loaded_s']:.2f} s | {extra:+.2f} s |"
        )
    print(
        f"\nGoals: the window ≤ {WINDOW_FACTOR}× the bare one: {'met' if window_met else 'NOT met'}; "
        f"'Loaded on' ≤ torch's import + {LOADED_MARGIN_S} s: {'met' if loaded_met else 'NOT met'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
