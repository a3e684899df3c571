"""``checkpoint-inspector diff A B`` and ``checkpoint-inspector stats FILE [KEY ...]``.

Both read tensors straight from the mapped files (no ``torch.load``, nothing executed).
``diff`` exits 0 when the checkpoints are identical, 1 when they differ, 2 when one is unreadable.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from inspector.core.formatting import escape_text

#: ``--sort`` choices of ``diff``: how the rows are ordered (largest change first).
DIFF_SORTS = ("change", "max-diff", "cosine", "key")


def add_inspect_parsers(sub: Any) -> None:
    """Add the ``diff`` and ``stats`` subcommands to the CLI's subparsers."""
    diff = sub.add_parser(
        "diff",
        help="compare two checkpoints tensor by tensor (keys, shapes, dtypes, values); "
        "exit 0 identical, 1 different, 2 unreadable",
    )
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--json", action="store_true", help="one JSON object with every field of every row")
    diff.add_argument(
        "--sort",
        choices=DIFF_SORTS,
        default="change",
        help="row order: relative L2 change (default), max |a−b|, lowest cosine, or key",
    )
    diff.add_argument("--all", action="store_true", help="also list the tensors that are equal")
    stats = sub.add_parser("stats", help="statistics of every tensor, or of the named ones (with histograms)")
    stats.add_argument("file")
    stats.add_argument("keys", nargs="*", metavar="KEY")
    stats.add_argument("--json", action="store_true", help="one JSON object: path, tensors, flagged")
    stats.add_argument("--bins", type=int, default=32, help="histogram bins for named tensors (≤ 256)")


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


def _print_json(data: dict[str, Any]) -> None:
    """One JSON object on stdout; keys from a file that are not valid Unicode (lone surrogates)
    are written as JSON escapes rather than failing the output."""
    text = json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, ensure_ascii=True, indent=1, allow_nan=False)
    print(text)


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
        _print_json({**report, "tensors": rows})
        return 0 if report["identical"] else 1
    print(f"A: {escape_text(report['a'])}")
    print(f"B: {escape_text(report['b'])}")
    if report["prefix_note"]:
        print(f"note: {escape_text(report['prefix_note'])}")
    shown = [r for r in rows if args.all or r["status"] != "equal"]
    if shown:
        print(f"{'status':13}  {'max |a−b|':>10}  {'rel L2':>10}  {'cosine':>9}  key")
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
        print(
            f"{label:13}  {_fmt(r['max_abs_diff']):>10}  {_fmt(r['rel_l2']):>10}  "
            f"{_fmt(r['cosine'], '.6f'):>9}  {escape_text(key)}"
        )
    print(f"Summary: {report['summary']}" + ("" if not report["identical"] else " (identical)"))
    if not report["identical"]:
        print(f"Not identical: {escape_text('; '.join(report['differences']))}.")
    return 0 if report["identical"] else 1


# -- stats --------------------------------------------------------------------------------------


def _stats(args: argparse.Namespace) -> int:
    from inspector.engine.inspect_jobs import stats_all  # imports torch: only for this command
    from inspector.engine.sources import open_source
    from inspector.engine.stats import MAX_BINS, tensor_stats

    with open_source(args.file) as mapped:
        if args.keys:
            rows: list[dict[str, Any]] = []
            bins = max(1, min(args.bins, MAX_BINS))
            for key in args.keys:
                node = mapped.find(key)
                stats = tensor_stats(mapped.tensor(node), bins=bins).to_json()
                rows.append({"key": node.key, "path": list(node.path), "stats": stats})
            flagged = [r["key"] for r in rows if r["stats"]["has_nan_or_inf"]]
            result: dict[str, Any] = {"path": mapped.path, "tensors": rows, "flagged": flagged}
        else:
            result = stats_all(mapped)
    if args.json:
        _print_json(result)
        return 0
    print(f"{'key':40}  {'dtype':9}  {'shape':>14}  {'min':>10}  {'max':>10}  {'mean':>10}  {'std':>10}  "
          f"{'norm':>10}  {'zeros':>6}  NaN/Inf")  # fmt: skip
    for row in result["tensors"]:
        s = row.get("stats")
        if s is None:
            print(f"{escape_text(row['key']):40}  {escape_text(row.get('error', ''))}")
            continue
        bad = f"{s['nan']}/{s['posinf'] + s['neginf']}" if s["has_nan_or_inf"] else ""
        key = escape_text(row["key"])
        print(
            f"{key:40}  {s['dtype']:9}  {_shape(s['shape']):>14}  {_fmt(s['min'], '.4g'):>10}  "
            f"{_fmt(s['max'], '.4g'):>10}  {_fmt(s['mean'], '.4g'):>10}  {_fmt(s['std'], '.4g'):>10}  "
            f"{_fmt(s['l2_norm'], '.4g'):>10}  {s['zero_share']:>6.1%}  {bad}"
        )
        hist = s.get("histogram")
        if hist:
            top = max(hist["counts"]) or 1
            for lo, count in zip(hist["edges"], hist["counts"], strict=False):
                print(f"    {_fmt(lo, '>11.4g')}  {'█' * round(40 * count / top):40}  {count}")
    if result["flagged"]:
        shown = ", ".join(escape_text(k) for k in result["flagged"][:10])
        print(f"{len(result['flagged'])} tensor(s) hold NaN or Inf: {shown}")
    sys.stdout.flush()
    return 0
