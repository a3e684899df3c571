"""Benchmark: how the static read scales with the number of tensors, against torch in the same run.

    .venv/bin/python tests/bench/bench_scale.py [--dir DIR] [--counts 1000,10000,100000,1000000]
                                                [--repeat 3] [--gui]

For each count it generates (once, kept in DIR, default ``bench-data/``) a zip ``.pth`` written by
``torch.save`` and a ``.safetensors`` file of that many small float32 tensors under nested keys,
then measures in fresh processes (bytecode caching on: the ``.pyc`` files are written by the first
run): ``checkpoint-inspector info --json`` (process start to the whole tree printed) and its peak
RSS, and the baseline — ``torch.load(mmap=True)`` for the ``.pth`` up to 10^5 tensors (beyond, it
takes minutes), ``safetensors.safe_open(...).keys()`` for the ``.safetensors``. With ``--gui`` the
window (offscreen) is measured too: the tree shown and painted once, its peak RSS and the filter
keystrokes. Each figure
is the median of ``--repeat`` runs (1 run for 10^6 tensors, said in the table), with the machine's
load average (1 minute) when the row was done: the machine may be shared. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_open import measure  # noqa: E402

_TORCH_BASELINE_MAX = 100_000  # torch.load of 10^6 tensors takes many minutes on 2 cores


def key_of(i: int) -> str:
    """The i-th key: 100 experts per block, as in a mixture-of-experts checkpoint."""
    return f"blocks.{i // 100}.experts.{i % 100}.weight"


def make_pth(path: Path, count: int) -> None:
    """``count`` float32 tensors of 4 elements each, saved by ``torch.save``."""
    import torch

    torch.save({key_of(i): torch.zeros(4) for i in range(count)}, path)


def make_safetensors(path: Path, count: int) -> None:
    """``count`` float32 tensors of 4 elements each, in a safetensors file written directly."""
    header = {key_of(i): {"dtype": "F32", "shape": [4], "data_offsets": [16 * i, 16 * i + 16]}
              for i in range(count)}  # fmt: skip
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.truncate(8 + len(text) + 16 * count)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def run(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """(median seconds, median peak RSS in MB) of ``repeat`` fresh runs of ``cmd``."""
    times: list[float] = []
    rss: list[float] = []
    for _ in range(repeat):
        result = measure(cmd, env)
        if result["rc"] != 0:
            raise RuntimeError(f"{cmd} failed: {result['stderr']}")
        times.append(float(result["seconds"]))  # type: ignore[arg-type]
        rss.append(float(result["rss_mb"]))  # type: ignore[arg-type]
    return _median(times), _median(rss)


def window(path: str, filter_text: str, settings_dir: str) -> int:
    """Run the real window offscreen on ``path``: one JSON line with the moment the tree is shown,
    peak RSS, and the time of each filter keystroke once the filter's key index is ready (the load
    into torch is not waited for: at 10^6 tensors it takes many minutes)."""
    import resource

    from PySide6.QtCore import QEvent, QObject, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from inspector.engine.client import EngineClient
    from inspector.gui.engine_bridge import EngineBridge
    from inspector.gui.main_window import MainWindow

    app = QApplication([sys.argv[0]])
    settings = QSettings(os.path.join(settings_dir, "settings.ini"), QSettings.Format.IniFormat)
    engine = EngineBridge(EngineClient)
    win = MainWindow(settings, engine)
    win.resize(1280, 800)
    win.show()
    QTimer.singleShot(0, engine.start)
    tab = win.open_path(path)
    out: dict[str, object] = {}

    def keystrokes() -> None:
        if tab.proxy._keys is None:  # the key index is still being built off the GUI thread
            QTimer.singleShot(50, keystrokes)
            return
        times = []
        for text in (filter_text[:1], filter_text[:3], filter_text, ""):
            t = time.perf_counter()
            tab.filter_edit.setText(text)
            tab.apply_filter()
            app.processEvents()  # the repaint a keystroke costs
            times.append(round((time.perf_counter() - t) * 1000))
        out["filter_ms_each"] = times
        out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        app.quit()

    class FirstPaint(QObject):
        """The tree shown counts once it is painted: a 0-timer after its first paint event."""

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and "tree_shown_at" in out and "painted" not in out:
                out["painted"] = True
                QTimer.singleShot(0, on_tree_painted)
            return False

    def on_tree_painted() -> None:
        out["tree_painted_at"] = time.time()
        out["rss_tree_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        QTimer.singleShot(0, keystrokes)

    def on_tree_shown() -> None:
        out["tree_shown_at"] = time.time()
        tab.tree.viewport().update()

    painted = FirstPaint()
    tab.tree.viewport().installEventFilter(painted)
    tab.tree_shown.connect(on_tree_shown)
    QTimer.singleShot(600_000, app.quit)
    app.exec()
    engine.close()
    print(json.dumps(out))
    return 0


def gui_run(path: Path, env: dict[str, str], repeat: int) -> dict[str, float]:
    """The window: tree painted (s from process start), peak RSS (MB), the slowest filter keystroke (ms)."""
    shown: list[float] = []
    rss: list[float] = []
    keys: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            result = measure(
                [sys.executable, __file__, "--window", str(path), "blocks.57.experts", tmp],
                dict(env, QT_QPA_PLATFORM="offscreen"),
            )
        lines = str(result["stdout"]).strip().splitlines()
        if result["rc"] != 0 or not lines:
            raise RuntimeError(f"the window failed on {path.name}: {result['stderr']}")
        gui = json.loads(lines[-1])
        shown.append(gui["tree_painted_at"] - float(result["start"]))  # type: ignore[arg-type]
        rss.append(gui["rss_peak_mb"])
        keys.append(max(gui["filter_ms_each"][:3]))
    return {"tree_s": _median(shown), "rss_mb": _median(rss), "filter_ms": _median(keys)}


def main() -> int:
    if sys.argv[1:2] == ["--window"]:
        return window(*sys.argv[2:5])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    parser.add_argument("--counts", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=".pth,.safetensors", help="which files of each count")
    parser.add_argument("--gui", action="store_true", help="also measure the window")
    args = parser.parse_args()
    out_dir = Path(args.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    rows: list[dict[str, object]] = []
    for count in (int(c) for c in args.counts.split(",") if c):
        repeat = 1 if count >= 1_000_000 else args.repeat
        for suffix, make in ((".pth", make_pth), (".safetensors", make_safetensors)):
            if suffix not in args.formats.split(","):
                continue
            path = out_dir / f"scale_{count}{suffix}"
            if not path.exists():
                make(path, count)
            info_s, info_rss = run(
                [sys.executable, "-m", "inspector", "info", "--json", str(path)], env, repeat
            )
            if suffix == ".pth" and count <= _TORCH_BASELINE_MAX:
                base = "import sys, torch; torch.load(sys.argv[1], map_location='cpu', mmap=True)"
                label = "torch.load(mmap=True)"
            elif suffix == ".safetensors":
                base = (
                    "import sys; from safetensors import safe_open; list(safe_open(sys.argv[1], 'np').keys())"
                )
                label = "safe_open keys"
            else:
                base, label = "", ""
            base_s, base_rss = (
                run([sys.executable, "-c", base, str(path)], env, repeat) if base else (0.0, 0.0)
            )
            row: dict[str, object] = {
                "count": count, "format": suffix, "runs": repeat, "size_mb": path.stat().st_size / 1e6,
                "info_s": info_s, "info_rss_mb": info_rss, "base": label, "base_s": base_s,
                "base_rss_mb": base_rss,
            }  # fmt: skip
            if args.gui:
                row.update({f"gui_{k}": v for k, v in gui_run(path, env, repeat).items()})
            row["load"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; page cache warm, bytecode "
        "caching on; median of the runs shown.\n"
    )
    head = "| tensors | file | size | runs | `info --json` | its peak RSS | µs per tensor | baseline "
    head += "| baseline time |"
    sep = "|---:|---|---:|---:|---:|---:|---:|---|---:|"
    if args.gui:
        head += " window: tree painted | window peak RSS | slowest filter keystroke |"
        sep += "---:|---:|---:|"
    head += " load |"
    sep += "---:|"
    print(head)
    print(sep)
    for r in rows:
        count = int(r["count"])  # type: ignore[call-overload]
        base = f"{r['base_s']:.2f} s" if r["base"] else "—"
        line = (
            f"| {count:,} | {r['format']} | {r['size_mb']:.1f} MB | {r['runs']} | {r['info_s']:.2f} s "
            f"| {r['info_rss_mb']:.0f} MB | {float(r['info_s']) / count * 1e6:.0f} "  # type: ignore[arg-type]
            f"| {r['base'] or '—'} | {base} |"
        )
        if args.gui:
            line += f" {r['gui_tree_s']:.2f} s | {r['gui_rss_mb']:.0f} MB | {r['gui_filter_ms']:.0f} ms |"
        line += f" {r['load']:.1f} |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
