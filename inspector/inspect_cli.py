"""``checkpoint-inspector diff A B`` and ``checkpoint-inspector stats FILE [KEY ...]``.

Both read tensors straight from the mapped files (no ``torch.load``, nothing executed).
``diff`` exits 0 when the checkpoints are identical, 1 when they differ, 2 when one is unreadable.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from typing import Any

from inspector.core.stats_options import MAX_BINS
from inspector.terminal import print_json, print_text

#: ``--sort`` choices of ``diff``: how the rows are ordered (largest change first).
DIFF_SORTS = ("change", "max-diff", "cosine", "key")
#: Histogram bins of a named tensor in ``stats`` when ``--bins`` is not given (a terminal's height).
TERMINAL_BINS = 32


def _bins(text: str) -> int:
    """``--bins``: a whole number of histogram bins the statistics can compute."""
    try:
        bins = int(text)
    except ValueError:
        bins = 0
    if not 1 <= bins <= MAX_BINS:
        raise argparse.ArgumentTypeError(f"a histogram has 1 to {MAX_BINS} bins, not “{text}”")
    return bins


def add_inspect_parsers(sub: Any) -> None:
    """Add the ``diff`` and ``stats`` subcommands to the CLI's subparsers."""
    diff = sub.add_parser(
        "diff",
        help="compare two checkpoints tensor by tensor (keys, shapes, dtypes, values); "
        "exit 0 identical, 1 different, 2 unreadable",
    )
    diff.add_argument("a", metavar="A", help="the first checkpoint (rows say “only in A” for its extra keys)")
    diff.add_argument("b", metavar="B", help="the checkpoint to compare it with")
    diff.add_argument("--json", action="store_true", help="one JSON object with every field of every row")
    diff.add_argument(
        "--sort",
        choices=DIFF_SORTS,
        default="change",
        help="row order: relative L2 change (default), max |a−b|, lowest cosine, or key",
    )
    diff.add_argument("--all", action="store_true", help="also list the tensors that are equal")
    stats = sub.add_parser("stats", help="statistics of every tensor, or of the named ones (with histograms)")
    stats.add_argument("file", help="a checkpoint file, an HF shard set's index or folder")
    stats.add_argument(
        "keys",
        nargs="*",
        metavar="KEY",
        help="tensors to describe with a histogram, by key (default: every tensor)",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object: path, tensors, flagged")
    stats.add_argument(
        "--bins",
        type=_bins,
        default=TERMINAL_BINS,
        help=f"histogram bins for named tensors, 1 to {MAX_BINS} (default {TERMINAL_BINS})",
    )


def run_inspect(args: argparse.Namespace) -> int:
    """Run ``diff`` or ``stats``; ``CheckpointError`` propagates to the CLI's one-line report."""
    from inspector.core.errors import CheckpointError

    try:
        return _diff(args) if args.command == "diff" else _stats(args)
    except (CheckpointError, KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # one line for the user, never a traceback
        files = f"{args.a} and {args.b}" if args.command == "diff" else args.file
        raise CheckpointError(f"Unexpected error while reading {files}: {type(exc).__name__}: {exc}") from exc


# -- diff ---------------------------------------------------------------------------------------


def _sort_key(sort: str) -> Any:
    def change(row: dict[str, Any]) -> tuple[Any, ...]:
        rank = {"shape": 0, "only_a": 1, "only_b": 1, "unreadable": 1, "dtype": 2, "changed": 2}
        return (rank.get(row["status"], 3), -_num(row["rel_l2"]), -_num(row["max_abs_diff"]), row["key"])

    if sort == "key":
        return lambda row: row["key"]
    if sort == "max-diff":
        return lambda row: (-_num(row["max_abs_diff"]), row["key"])
    if sort == "cosine":
        return lambda row: (_num(row["cosine"], 2.0), row["key"])
    return change


def _num(x: Any, missing: float = -1.0) -> float:
    if x is None:
        return missing
    return float(x)  # "inf"/"-inf"/"nan" strings parse too


def _fmt(x: Any, spec: str = ".3e") -> str:
    if x is None:
        return "—"
    value = float(x)
    return format(value, spec) if math.isfinite(value) else str(x)


def _shape(shape: list[int] | None) -> str:
    return "×".join(str(s) for s in shape) if shape else ("scalar" if shape == [] else "—")


def _diff(args: argparse.Namespace) -> int:
    from inspector.core.diff import STATUS_LABELS
    from inspector.engine.diff import diff_checkpoints  # imports torch: only for this command

    report = diff_checkpoints(args.a, args.b).to_json()
    rows = sorted(report["tensors"], key=_sort_key(args.sort))
    if args.json:
        print_json({**report, "tensors": rows}, allow_nan=False)
        return 0 if report["identical"] else 1
    print_text(f"A: {report['a']}")
    print_text(f"B: {report['b']}")
    if report["prefix_note"]:
        print_text(f"note: {report['prefix_note']}")
    shown = [r for r in rows if args.all or r["status"] != "equal"]
    if shown:
        print_text(f"{'status':13}  {'max |a−b|':>10}  {'rel L2':>10}  {'cosine':>9}  key")
    for r in shown:
        key = r["key"]
        if r["status"] == "renamed" or (r["key_a"] and r["key_b"] and r["key_a"] != r["key_b"]):
            key = f"{r['key_a']} → {r['key_b']}"
        if r["status"] == "shape":
            key += f"  ({_shape(r['shape_a'])} → {_shape(r['shape_b'])})"
        elif r["status"] == "dtype":
            key += f"  ({r['dtype_a']} → {r['dtype_b']})"
        elif r["status"] == "unreadable" and r["message"]:
            key += f"  ({r['message']})"
        if r["nonfinite_mismatch"]:
            key += f"  [{r['nonfinite_mismatch']} NaN/Inf positions differ]"
        label = STATUS_LABELS.get(r["status"], r["status"])
        print_text(
            f"{label:13}  {_fmt(r['max_abs_diff']):>10}  {_fmt(r['rel_l2']):>10}  "
            f"{_fmt(r['cosine'], '.6f'):>9}  {key}"
        )
    print_text(f"Summary: {report['summary']}" + ("" if not report["identical"] else " (identical)"))
    if not report["identical"]:
        print_text(f"Not identical: {'; '.join(report['differences'])}.")
    return 0 if report["identical"] else 1


# -- stats --------------------------------------------------------------------------------------


def _check_keys(path: str, keys: list[str]) -> None:
    """Every named key is a tensor of the file's static read; else a sentence, before torch is imported."""
    from inspector.core.errors import CheckpointError
    from inspector.core.peek import display_name
    from inspector.remote.static_read import peek_location

    index, _ = peek_location(path)
    known = {node.key for node in index.tensor_nodes()}
    missing = [key for key in dict.fromkeys(keys) if key not in known]
    if not missing:
        return
    parts = []
    for key in missing:
        close = difflib.get_close_matches(key, known, n=1)
        parts.append(key + (f" (did you mean {close[0]}?)" if close else ""))
    name = display_name(index.path)
    raise CheckpointError(f"{name} has no tensor named {', '.join(parts)}.")


def _stats(args: argparse.Namespace) -> int:
    if args.keys:
        _check_keys(args.file, args.keys)
    from inspector.engine.inspect_jobs import stats_all  # NumPy and the mapped bytes, never torch
    from inspector.engine.sources import open_source
    from inspector.engine.stats import tensor_stats

    with open_source(args.file) as mapped:
        if args.keys:
            rows: list[dict[str, Any]] = []
            bins = args.bins
            for key in args.keys:
                node = mapped.find(key)
                stats = tensor_stats(mapped.array(node), bins=bins).to_json()
                rows.append({"key": node.key, "path": list(node.path), "stats": stats})
            flagged = [r["key"] for r in rows if r["stats"]["has_nan_or_inf"]]
            result: dict[str, Any] = {"path": mapped.path, "tensors": rows, "flagged": flagged}
        else:
            result = stats_all(mapped)
    if args.json:
        print_json(result, allow_nan=False)
        return 0
    print_text(f"{'key':40}  {'dtype':9}  {'shape':>14}  {'min':>10}  {'max':>10}  {'mean':>10}  "
               f"{'std (n−1)':>10}  {'norm':>10}  {'zeros':>6}  NaN/Inf")  # fmt: skip
    for row in result["tensors"]:
        s = row.get("stats")
        if s is None:
            print_text(f"{row['key']:40}  {row.get('error', '')}")
            continue
        bad = f"{s['nan']}/{s['posinf'] + s['neginf']}" if s["has_nan_or_inf"] else ""
        print_text(
            f"{row['key']:40}  {s['dtype']:9}  {_shape(s['shape']):>14}  {_fmt(s['min'], '.4g'):>10}  "
            f"{_fmt(s['max'], '.4g'):>10}  {_fmt(s['mean'], '.4g'):>10}  {_fmt(s['std'], '.4g'):>10}  "
            f"{_fmt(s['l2_norm'], '.4g'):>10}  {s['zero_share']:>6.1%}  {bad}"
        )
        hist = s.get("histogram")
        if hist:
            top = max(hist["counts"]) or 1
            for lo, count in zip(hist["edges"], hist["counts"], strict=False):
                print_text(f"    {_fmt(lo, '>11.4g')}  {'█' * round(40 * count / top):40}  {count}")
    if result["flagged"]:
        print_text(f"{len(result['flagged'])} tensor(s) hold NaN or Inf: {', '.join(result['flagged'][:10])}")
    sys.stdout.flush()
    return 0
