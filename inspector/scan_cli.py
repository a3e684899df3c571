"""``checkpoint-inspector scan``: the static safety scan of one checkpoint, or of a set of files and
folders for pipelines (text, JSON or SARIF; exit 0 / 1 / 2 over the whole set)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import TYPE_CHECKING

from inspector import __version__
from inspector.core.formatting import count_of, escape_text
from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek
from inspector.core.safety import TORCHSCRIPT_CODE
from inspector.core.scan_set import FAIL_ON, FileScan, SetScan, scan_paths
from inspector.remote.locations import is_url, shown_form
from inspector.remote.static_read import peek_location, remote_json
from inspector.terminal import fail, print_json, print_text

if TYPE_CHECKING:
    from inspector.remote.range_buffer import Transfer


def add_scan_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scan = sub.add_parser(
        "scan",
        help="list the globals checkpoints' pickles reference, each judged allowed/unknown/dangerous "
        "(static read; no code runs); exit 0 safe, 1 unknown or dangerous globals (see --fail-on), "
        "2 unreadable. A TorchScript archive is judged on its pickles and reported as holding code",
    )
    scan.add_argument(
        "file",
        nargs="+",
        metavar="PATH",
        help="checkpoint files (an HF shard set's index counts as one), or folders: these are walked "
        "for the checkpoints they hold, told by content (a DCP folder or a shard set as one)",
    )
    scan.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default=None,
        help="text (default); json: for one file the object below, for several {files, summary}; "
        "sarif: a SARIF 2.1.0 log for code scanning",
    )
    scan.add_argument(
        "--json",
        action="store_true",
        help="the same as --format json: path, format, verdict, torchscript_code, globals, warnings",
    )
    scan.add_argument(
        "--explain",
        action="store_true",
        help="for one file: print the code that loads it safely (torch.load with weights_only=True and "
        "the globals it needs allowed, then the lines that restore a training checkpoint), or the "
        "sentence why no safe code exists; exit 0 with code, 1 without, 2 unreadable",
    )
    scan.add_argument(
        "--map-location",
        default="",
        metavar="LOC",
        help="with --explain: cpu, meta, cuda:N, or a mapping like 'cuda:1->cuda:0' (default: as saved)",
    )
    scan.add_argument("--no-mmap", action="store_true", help="with --explain: do not memory-map")
    scan.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="unknown",
        help="the least severe verdict that makes the exit status 1 (default: unknown)",
    )
    scan.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, scan only files whose path (relative to the folder) or name matches",
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, skip files whose path (relative to the folder) or name matches",
    )


def run_scan(args: argparse.Namespace) -> int:
    """Scan the paths; print one report (one file) or a line per file and a summary (a set)."""
    fmt = "json" if args.json else (args.format or "text")
    if args.json and args.format not in (None, "json"):
        return fail(f"--json means --format json; leave one out (--format {args.format} was given too).")
    paths: list[str] = list(args.file)
    if args.explain:
        return _explain(paths, args)
    for option, given in (("--map-location", args.map_location), ("--no-mmap", args.no_mmap)):
        if given:
            return fail(
                f"{option} only changes the code --explain writes; add --explain, or leave {option} out."
            )
    one_file = len(paths) == 1 and not os.path.isdir(paths[0])
    transfers: dict[str, Transfer] = {}

    def read(path: str) -> CheckpointIndex:
        """A named path, or a URL read where it lives (remote files are judged like local ones)."""
        index, transfer = peek_location(path)
        if transfer is not None:
            transfers[path] = transfer
        return index

    scans = scan_paths(paths, args.include, args.exclude, read)
    scans.files[:] = [  # a URL is shown without its credentials, even in an unreadable file's line
        dataclasses.replace(f, path=shown_form(f.path)) if is_url(f.path) else f for f in scans.files
    ]
    if fmt == "sarif":
        from inspector.core.sarif import sarif_log

        print_json(sarif_log(scans, __version__))
        for scan in scans.files:
            if scan.error:
                fail(scan.error)
        return scans.exit_code(args.fail_on)
    if one_file:
        return _one_file(scans.files[0], fmt, args.fail_on, transfers.get(paths[0]))
    if fmt == "json":
        summary = {"verdicts": scans.counts(), "skipped": scans.skipped, "fail_on": args.fail_on}
        print_json({"files": [s.to_json() for s in scans.files], "summary": summary})
    else:
        for scan in scans.files:
            print_text(scan.line())
        print_text(scans.summary())
    return scans.exit_code(args.fail_on)


def _one_file(scan: FileScan, fmt: str, fail_on: str, transfer: Transfer | None = None) -> int:
    """The report of one file, as the scan of a single checkpoint has always printed it (for a URL,
    with what reading it cost)."""
    if scan.unreadable:
        return fail(scan.error)
    if fmt == "json":
        report = scan.to_json()
        if transfer is not None:
            report["remote"] = remote_json(transfer)
        print_json(report)
    else:
        print_text(
            f"{scan.path}: {scan.verdict} ({scan.format}, {count_of(len(scan.globals), 'distinct global')})"
        )
        if scan.torchscript_code:
            print_text(f"  code: it {TORCHSCRIPT_CODE}")
        for g in scan.globals:
            places = ", ".join(f"{escape_text(o['pickle'])} byte {o['offset']}" for o in g["occurrences"][:3])
            more = " …" if len(g["occurrences"]) > 3 else ""
            print_text(f"  {g['verdict']:9}  {g['name']}  ×{g['count']}  at {places}{more}")
        for w in scan.warnings:
            print_text(f"  note: {w}")
        for d in scan.differentials:
            print_text(f"  differential: {d}")
        if transfer is not None:
            print_text(f"  remote: {transfer.line()}")
    if scan.error:
        fail(scan.error)
    return SetScan([scan]).exit_code(fail_on)


def _explain(paths: list[str], args: argparse.Namespace) -> int:
    """The code that loads one file safely, or the sentence why there is none."""
    from inspector.core.load_options import LoadOptions, parse_map_location
    from inspector.core.loading_code import loading_code

    if len(paths) != 1 or os.path.isdir(paths[0]):
        return fail("--explain writes the loading code of one checkpoint file; name exactly one.")
    try:
        loc = parse_map_location(args.map_location)
    except ValueError as exc:
        return fail(str(exc))
    if is_url(paths[0]):
        return fail(
            f"--explain writes the code that loads a local file, and torch.load reads only local files: "
            f"download {shown_form(paths[0])} first and explain that copy."
        )
    index = peek(paths[0])
    written = loading_code(index, LoadOptions(map_location=loc, mmap=not args.no_mmap), paths[0])
    if not written.code:
        print_text(written.reason)
        return 1
    for line in written.code.splitlines():
        print_text(line)
    return 0
