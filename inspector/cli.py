"""The command line: ``info`` and ``scan`` without a window; anything else opens the window."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from inspector import __version__
from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text
from inspector.core.load_options import LoadOptions, parse_map_location
from inspector.core.model import GlobalClass, PathPart
from inspector.core.peek import peek
from inspector.core.report import index_to_json, render_text

SUBCOMMANDS = ("info", "scan", "export", "diff", "stats")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkpoint-inspector",
        description="See every tensor of a PyTorch checkpoint, safely. "
        "Without a subcommand, opens the window on the given files.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--new-window", action="store_true", help="open a new window even if the app is already running"
    )
    parser.add_argument(
        "--install-desktop", action="store_true", help="register the app and its file types for this user"
    )
    parser.add_argument(
        "--uninstall-desktop", action="store_true", help="remove what --install-desktop added"
    )
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print the tree of a checkpoint (static read; no code runs)")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="one JSON object instead of text")
    info.add_argument(
        "--load",
        action="store_true",
        help="also torch.load it (weights_only=True) to report devices",
    )
    info.add_argument(
        "--map-location",
        default="",
        metavar="LOC",
        help="with --load: cpu, meta, cuda:N, or a mapping like 'cuda:1->cuda:0' (default: as saved)",
    )
    info.add_argument("--no-mmap", action="store_true", help="with --load: do not memory-map")
    scan = sub.add_parser(
        "scan",
        help="list the globals a checkpoint's pickles reference, each judged allowed/unknown/dangerous "
        "(static read; no code runs); exit 0 safe, 1 unknown or dangerous globals, 2 unreadable",
    )
    scan.add_argument("file")
    scan.add_argument(
        "--json", action="store_true", help="one JSON object: path, format, verdict, globals, warnings"
    )
    from inspector.export_cli import add_export_parser

    add_export_parser(sub)
    from inspector.inspect_cli import add_inspect_parsers

    add_inspect_parsers(sub)
    return parser


def _fail(message: str) -> int:
    print(message.replace("\n", " "), file=sys.stderr)
    return 2


def _print_json(obj: object) -> None:
    """JSON keeps a file's strings as data; one with a lone surrogate is written with JSON's
    ``\\u`` escapes, since it has no UTF-8 form."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, indent=1)
    print(text)


def _info(args: argparse.Namespace) -> int:
    try:
        loc = parse_map_location(args.map_location)
    except ValueError as exc:
        return _fail(str(exc))
    index = peek(args.file)
    devices: dict[tuple[PathPart, ...], str] | None = None
    if args.load:
        from inspector.engine.loader import load_checkpoint  # imports torch: only when asked

        result = load_checkpoint(args.file, LoadOptions(map_location=loc, mmap=not args.no_mmap))
        devices = {tuple(path): device for path, device in result.devices}
    if args.json:
        _print_json(index_to_json(index, devices))
    else:
        print(render_text(index, devices))
    return 0


def _scan(args: argparse.Namespace) -> int:
    """Every global the file's pickles reference, worst first; exit 0 all allowed, 1 otherwise.

    A file that cannot be read to the end but named unsafe globals before that is reported with
    them (exit 1), since "damaged" must not hide "dangerous"; otherwise it is unreadable (exit 2).
    """
    from inspector.core.peek import DamagedCheckpointError
    from inspector.core.report import globals_json

    error = None
    try:
        index = peek(args.file)
        path, fmt, refs, notes = index.path, index.format, index.globals, index.warnings
        differentials = index.differentials
    except DamagedCheckpointError as exc:
        if all(g.verdict is GlobalClass.ALLOWED for g in exc.globals) and not exc.differentials:
            raise
        path, fmt, refs, notes, error = args.file, "unreadable", exc.globals, [], exc.message
        differentials = exc.differentials
    globals_ = globals_json(refs)
    rank = {"dangerous": 0, "unknown": 1, "allowed": 2}
    globals_.sort(key=lambda g: (rank.get(g["verdict"], 0), g["name"]))
    verdicts = {g.verdict for g in refs}
    verdict = ("dangerous" if GlobalClass.DANGEROUS in verdicts or differentials
               else "unknown" if GlobalClass.UNKNOWN in verdicts else "safe")  # fmt: skip
    if args.json:
        report = {"path": path, "format": fmt, "verdict": verdict, "globals": globals_, "warnings": notes,
                  "differentials": differentials}  # fmt: skip
        if error:
            report["error"] = error
        _print_json(report)
    else:
        print(f"{path}: {verdict} ({fmt}, {len(globals_)} distinct globals)")
        for g in globals_:
            places = ", ".join(f"{o['pickle']} byte {o['offset']}" for o in g["occurrences"][:3])
            more = " …" if len(g["occurrences"]) > 3 else ""
            print(
                f"  {g['verdict']:9}  {escape_text(g['name'])}  ×{g['count']}  at {escape_text(places)}{more}"
            )
        for w in notes:
            print(f"  note: {escape_text(w)}")
        for d in differentials:
            print(f"  differential: {escape_text(d)}")
    if error:
        print(error, file=sys.stderr)
    return 0 if verdict == "safe" else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--engine-worker"]:  # the frozen app starts its torch worker this way
        from inspector.engine.worker import main as worker_main

        return worker_main()
    if argv[:1] == ["--confined-peek"]:  # and its confined static reader this way
        from inspector.core.confined_peek import main as confined_main

        return confined_main(argv[1:])
    if argv and argv[0] in SUBCOMMANDS:
        args = _build_parser().parse_args(argv)
        try:
            if args.command == "export":
                from inspector.export_cli import run_export

                return run_export(args)
            if args.command in ("diff", "stats"):
                from inspector.inspect_cli import run_inspect

                return run_inspect(args)
            return _info(args) if args.command == "info" else _scan(args)
        except CheckpointError as exc:
            return _fail(exc.message)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `info … | head`: the reader went away, which is fine
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except Exception as exc:  # one line for the user, never a traceback
            if os.environ.get("CHECKPOINT_INSPECTOR_DEBUG"):
                raise
            return _fail(f"Unexpected error while reading {args.file}: {type(exc).__name__}: {exc}")
    if "--" in argv:
        i = argv.index("--")
        opts, files = argv[:i], argv[i + 1 :]
    else:
        opts = [a for a in argv if a.startswith("-")]
        files = [a for a in argv if not a.startswith("-")]
    window_args = _build_parser().parse_args(opts)  # --help, --version, unknown options exit here
    if window_args.install_desktop or window_args.uninstall_desktop:
        return _desktop(install=window_args.install_desktop)
    from inspector.app import run_gui

    return run_gui([os.path.abspath(f) for f in files], [sys.argv[0]], new_window=window_args.new_window)


def _desktop(install: bool) -> int:
    from inspector import desktop

    try:
        files = desktop.install() if install else desktop.uninstall()
    except (desktop.DesktopError, OSError) as exc:
        return _fail(str(exc))
    verb = "Installed" if install else "Removed"
    print(f"{verb} {len(files)} files under {desktop.data_home()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
