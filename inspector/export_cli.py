"""``checkpoint-inspector export``: the same ``ExportPlan`` as the dialog, run in this process."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from inspector.core.errors import CheckpointError
from inspector.core.export_plan import (
    DEFAULT_MAX_SHARD_SIZE,
    FORMATS,
    TARGET_DTYPES,
    UNTRUSTED_COPY,
    ExportPlan,
    ExportPlanError,
    KeyRule,
    format_for_path,
    map_keys,
    parse_size,
    render_preview,
    values_summary,
)
from inspector.core.formatting import format_bytes
from inspector.core.load_options import is_device_name
from inspector.core.safety import TRUST_HELP, TRUST_HINT
from inspector.terminal import fail, print_lines, print_text


def add_export_parser(sub: Any) -> None:
    """Add the ``export`` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "export",
        help="write a remapped, verified copy (device, dtype, format, keys)",
        description="Write a copy of SRC with tensors moved, converted, selected or renamed, then load "
        "the copy back and compare it with the source. Key options apply in this order: --subtree, "
        "--include/--exclude, --strip-prefix, --rename. A safetensors or hf-sharded copy is read "
        "straight from SRC (any layout, TorchScript archives included: their weights only), so SRC's "
        "pickle is never run and neither --allow-global nor --trust is needed; a pth copy of a torch "
        "file is made from what torch.load builds, which needs them when SRC's scan lists globals. "
        "Exit 0 when the copy verified, 2 otherwise.",
    )
    p.add_argument(
        "file", metavar="SRC", help="the checkpoint to copy (a file, an HF shard set, a DCP folder)"
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DST",
        help="where the copy goes: a file, or a folder for --format hf-sharded; never the source itself",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="the copy's format (default: safetensors for a DST ending in .safetensors, else pth); "
        "hf-sharded writes safetensors shards and their index into the folder DST",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--device", metavar="DEV", help="every tensor onto DEV (cpu, cuda:N, mps); pth only")
    where.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="A=B",
        help="tensors saved on device A onto device B (e.g. cuda:1=cuda:0); repeatable; pth only",
    )
    p.add_argument("--dtype", choices=TARGET_DTYPES, help="convert floating tensors to this dtype")
    p.add_argument(
        "--convert-only",
        action="append",
        default=[],
        metavar="GLOB",
        help="with --dtype: convert only the keys matching GLOB (fnmatch, e.g. 'model.*'); repeatable",
    )
    p.add_argument(
        "--subtree",
        metavar="KEY",
        help="write only this container, as the whole file (e.g. model or state_dict)",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="keep only the keys matching GLOB (fnmatch, relative to --subtree, e.g. 'encoder.*'); "
        "repeatable",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out the keys matching GLOB (fnmatch, e.g. '*.num_batches_tracked'); repeatable",
    )
    p.add_argument(
        "--strip-prefix",
        action="append",
        default=[],
        metavar="P",
        help="remove P from the start of every key that has it (e.g. 'module.'); repeatable",
    )
    p.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="'REGEX=>REPL'",
        help="rewrite keys with a regular expression (Python re.sub, \\1 for groups), after "
        "--strip-prefix; repeatable, applied in order; two keys that would become one are refused",
    )
    p.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="K=V",
        help="a safetensors __metadata__ entry (safetensors and hf-sharded only); repeatable",
    )
    p.add_argument(
        "--allow-global",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="for a pth copy of a torch file: let weights-only loading of SRC build this class (as "
        "`scan SRC` lists it); only data constructors are accepted, judged on the object the name "
        "really is; repeatable",
    )
    p.add_argument("--trust", action="store_true", help=TRUST_HELP)
    p.add_argument(
        "--no-provenance",
        action="store_true",
        help="do not record where the export came from (source name, size, sha256, tool version, "
        "plan, time; in safetensors metadata, or a <DST>.provenance.json beside a torch file)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the before → after keys; write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing DST")
    p.add_argument(
        "--max-shard-size",
        metavar="SIZE",
        help="with --format hf-sharded: the most tensor data per shard (e.g. 2GB, 500MB; "
        f"default {DEFAULT_MAX_SHARD_SIZE // 1000**3}GB)",
    )


def plan_from_args(args: argparse.Namespace) -> ExportPlan:
    """The plan the options describe; ``ExportPlanError`` with a sentence for a malformed option."""
    device: Any = None
    if args.device:
        device = args.device
    elif args.map:
        device = {}
        for item in args.map:
            src, sep, dst = item.replace("->", "=").replace("→", "=").partition("=")
            if not sep or not is_device_name(src.strip()) or not is_device_name(dst.strip()):
                raise ExportPlanError(f"“{item}” is not a device mapping like cuda:1=cuda:0.")
            device[src.strip()] = dst.strip()
    metadata: dict[str, str] = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ExportPlanError(f"“{item}” is not a metadata entry like KEY=VALUE.")
        metadata[key] = value
    fmt = args.format or format_for_path(args.output)
    if args.max_shard_size and fmt != "hf-sharded":
        raise ExportPlanError(
            f"--max-shard-size applies only to --format hf-sharded; this export writes one {fmt} file."
        )
    return ExportPlan(
        source=args.file,
        target=args.output,
        format=fmt,
        device=device,
        dtype=args.dtype,
        convert_only=tuple(args.convert_only),
        subtree=args.subtree,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        strip_prefixes=tuple(args.strip_prefix),
        renames=tuple(KeyRule.parse_rename(r) for r in args.rename),
        metadata=metadata,
        force=args.force,
        allowed_globals=tuple(args.allow_global),
        trusted=args.trust,
        max_shard_size=parse_size(args.max_shard_size) if args.max_shard_size else 0,
        provenance=not args.no_provenance,
    )


class ProgressBar:
    """A one-line bar on a terminal's stderr, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = self._width * done // max(1, total)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r[{bar}] {format_bytes(done)} / {format_bytes(total)}")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


def run_export(args: argparse.Namespace) -> int:
    """Exit 0 only when the written file verified; errors are one line on stderr, exit 2."""
    try:
        plan = plan_from_args(args)
    except CheckpointError as exc:
        return fail(exc.message)
    if args.dry_run:
        from inspector.remote.static_read import peek_location  # the reader of paths and URLs

        mapping = map_keys(peek_location(plan.source)[0], plan)
        print_lines(render_preview(mapping))
        print_lines(f"value {line}" for line in values_summary(mapping))
        print_lines(mapping.notes)
        if mapping.excluded:
            print_text(f"left out: {len(mapping.excluded)} tensor(s)")
        print_text(
            f"{len(mapping.tensors)} tensor(s), about {format_bytes(mapping.estimated_bytes)} "
            f"as {plan.format}; nothing written (dry run)."
        )
        if mapping.problems:
            return fail(" ".join(mapping.problems))
        return 0
    from inspector.engine.export import ExportError, export_checkpoint  # imports torch: only when writing

    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = export_checkpoint(plan, progress=bar)
    except ExportError as exc:
        if exc.kind != "unsafe":
            raise
        return fail(f"{exc.message} {TRUST_HINT} {UNTRUSTED_COPY}")
    print_lines(report.summary())
    return 0
