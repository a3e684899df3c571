"""The command line: ``info`` and ``scan`` without a window; anything else opens the window."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from inspector import __version__
from inspector.core.collector import kept_frozen
from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text, format_bytes
from inspector.core.host_memory import DeviceMemory
from inspector.core.load_options import LoadOptions, parse_map_location
from inspector.core.model import CheckpointIndex, PathPart
from inspector.core.safety import TRUST_HELP, TRUST_HINT
from inspector.remote.locations import is_url, shown_form
from inspector.terminal import fail, guard_streams, print_json, print_lines, print_text

SUBCOMMANDS = ("info", "scan", "export", "stats", "diff")

#: A first word shaped like this that names no file was meant as a command.
_COMMAND_LIKE = re.compile(r"[a-z][a-z0-9_-]*")


class CommandLineParser(argparse.ArgumentParser):
    """argparse whose complaints are one line: what is wrong, and where the help is."""

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message} (see `{self.prog} --help`).")
        self.exit(2)


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with ``only``, just that subcommand's (a command started
    imports what its own options need, not every other command's module)."""
    parser = CommandLineParser(
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
    if only in (None, "info"):
        _add_info_parser(sub)
    if only in (None, "scan"):
        from inspector.scan_cli import add_scan_parser

        add_scan_parser(sub)
    if only in (None, "export"):
        from inspector.export_cli import add_export_parser

        add_export_parser(sub)
    if only in (None, "diff", "stats"):
        from inspector.inspect_cli import add_inspect_parsers

        add_inspect_parsers(sub)
    return parser


def _add_info_parser(sub: Any) -> None:
    info = sub.add_parser("info", help="print the tree of a checkpoint (static read; no code runs)")
    info.add_argument("file", help="a checkpoint file, an HF shard set's index or folder, or a DCP folder")
    info.add_argument("--json", action="store_true", help="one JSON object instead of text")
    info.add_argument(
        "--load",
        action="store_true",
        help="also torch.load it (weights_only=True) to report devices; a file the scan calls "
        "dangerous, or a TorchScript archive, is loaded only with --trust",
    )
    info.add_argument(
        "--map-location",
        default="",
        metavar="LOC",
        help="with --load: cpu, meta, cuda:N, or a mapping like 'cuda:1->cuda:0' (default: as saved)",
    )
    info.add_argument("--no-mmap", action="store_true", help="with --load: do not memory-map")
    info.add_argument(
        "--allow-global",
        action="append",
        default=[],
        metavar="MODULE.NAME",
        help="with --load: let weights-only loading build this class (as `scan` lists it); only "
        "data constructors are accepted, judged on the object the name really is",
    )
    info.add_argument("--trust", action="store_true", help="with --load: " + TRUST_HELP)
    info.add_argument(
        "--download",
        action="store_true",
        help="with --load and a URL: download the whole file into the cache folder "
        "($CHECKPOINT_INSPECTOR_CACHE, else ~/.cache/checkpoint-inspector/downloads), or use the copy "
        "of that version already there, and load the copy (progress on stderr); torch is never handed a URL",
    )


def _command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (its ``prog`` is ``checkpoint-inspector COMMAND``)."""
    sub = next(a for a in _build_parser(command)._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices[command]
    return parser


def _not_a_command(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1)
    hint = f"; did you mean {close[0]}?" if close else "."
    return (
        f"{word} is not a command ({', '.join(SUBCOMMANDS)}){hint} To open a file of that name use "
        f"`checkpoint-inspector -- {word}`."
    )


def _info(args: argparse.Namespace) -> int:
    # what only ``info`` uses, imported here so that ``stats`` and ``export`` start without it
    from inspector.core.model_card import read_model_card
    from inspector.core.report import index_to_json, render_lines
    from inspector.remote.static_read import LOAD_NEEDS_DOWNLOAD, peek_location, remote_json

    for option, given in (("--map-location", args.map_location), ("--no-mmap", args.no_mmap),
                          ("--download", args.download)):  # fmt: skip
        if given and not args.load:
            return fail(
                f"{option} only changes how --load loads the file; add --load, or leave {option} out."
            )
    try:
        loc = parse_map_location(args.map_location)
    except ValueError as exc:
        return fail(str(exc))
    if args.download and not is_url(args.file):
        return fail(f"--download fetches a URL; {args.file} is a local file, which --load loads as it is.")
    if args.load and is_url(args.file) and not args.download:
        return fail(LOAD_NEEDS_DOWNLOAD)
    with kept_frozen():  # the tree is printed, then the process ends: no pass of the collector walks it
        index, transfer = peek_location(args.file)
    load_path = _download(args.file, index) if args.download else args.file
    devices: dict[tuple[PathPart, ...], str] | None = None
    accelerators: list[DeviceMemory] = []
    if args.load:
        from inspector.engine.devices import device_memory
        from inspector.engine.loader import LoadError, load_checkpoint  # imports torch: only when asked

        accelerators = device_memory()  # before the load puts anything on them

        options = LoadOptions(
            map_location=loc,
            mmap=not args.no_mmap,
            weights_only=not args.trust,
            allowed_globals=tuple(args.allow_global),
        )
        try:  # the loader asks the safety policy, as the window's loads do
            result = load_checkpoint(load_path, options)
        except LoadError as exc:
            if exc.kind in ("dangerous", "torchscript", "refused-global", "weights-only"):
                return fail(f"{exc.message} {TRUST_HINT}")
            raise
        devices = {tuple(path): device for path, device in result.devices}
    from inspector.core.provenance import provenance_lines, provenance_of

    card = read_model_card(index, accelerators)
    record, note = provenance_of(index)
    if args.json:
        report = index_to_json(index, devices, card)
        if record is not None:
            report["provenance"] = record
        if transfer is not None:
            report["remote"] = remote_json(transfer)
        print_json(report)
    else:
        print_lines(render_lines(index, devices, card))
        print_lines(f"  {line}" for line in (provenance_lines(record) if record else []))
        if transfer is not None:
            print_text(f"Remote: {transfer.line()}.")
    if note:
        fail(f"Note: {note}.")
    return 0


def _download(url: str, index: CheckpointIndex) -> str:
    """The local copy of ``url`` that ``--load`` loads: downloaded with a progress line on stderr,
    or the cache's copy of the version the tree was read from."""
    from inspector.remote.download_cache import RemoteVersion, download

    name = shown_form(url)
    size = index.remote_read[2] if index.remote_read is not None else 0
    tty = sys.stderr.isatty()
    written = [False]  # a progress line is on the terminal

    def progress(done: int, total: int) -> None:
        line = f"Downloading {name}: {format_bytes(done)} of {format_bytes(total)}"
        if tty:
            sys.stderr.write("\r" + escape_text(line))
            sys.stderr.flush()
            written[0] = True
        elif done == 0:  # not a terminal: one line when the download starts
            print_text(f"Downloading {name} ({format_bytes(total)}) into the cache folder…", sys.stderr)

    try:
        copy = download(url, RemoteVersion(size, index.remote_version), progress)
    finally:
        if written[0]:
            sys.stderr.write("\n")
    print_text(f"Loading {name} from its local copy, {copy.sentence()}: {copy.path}", sys.stderr)
    return str(copy.path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--engine-worker"]:  # the frozen app starts its torch worker this way
        from inspector.engine.worker import main as worker_main

        return worker_main()
    if argv[:1] == ["--confined-peek"]:  # and its confined static reader this way
        from inspector.core.confined_peek import main as confined_main

        return confined_main(argv[1:])
    guard_streams()
    if argv and argv[0] in SUBCOMMANDS:
        # Options may come before, between or after the positionals (``stats FILE --bins 8 KEY``).
        args = _command_parser(argv[0]).parse_intermixed_args(argv[1:])
        args.command = argv[0]
        try:
            if args.command == "export":
                from inspector.export_cli import run_export

                return run_export(args)
            if args.command in ("diff", "stats"):
                from inspector.inspect_cli import run_inspect

                return run_inspect(args)
            if args.command == "scan":
                from inspector.scan_cli import run_scan

                return run_scan(args)
            return _info(args)
        except CheckpointError as exc:
            return fail(exc.message)
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # `info … | head`: the reader went away, which is fine
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except Exception as exc:  # one line for the user, never a traceback
            if os.environ.get("CHECKPOINT_INSPECTOR_DEBUG"):
                raise
            return fail(_unexpected(args, exc))
    if "--" in argv:
        i = argv.index("--")
        opts, files = argv[:i], argv[i + 1 :]
    else:
        opts = [a for a in argv if a.startswith("-")]
        files = [a for a in argv if not a.startswith("-")]
        if files and _COMMAND_LIKE.fullmatch(files[0]) and not os.path.lexists(files[0]):
            return fail(_not_a_command(files[0]))
    new_window = False
    if opts:  # (a double-click has none: the parser, with every subcommand's for --help, is not built)
        window_args = _build_parser().parse_args(opts)  # --help, --version, unknown options exit here
        if window_args.install_desktop or window_args.uninstall_desktop:
            return _desktop(install=window_args.install_desktop)
        new_window = window_args.new_window
    from inspector.app import run_gui

    located = [f if is_url(f) else os.path.abspath(f) for f in files]  # a URL opens where it lives
    return run_gui(located, [sys.argv[0]], new_window=new_window)


def _unexpected(args: argparse.Namespace, exc: Exception) -> str:
    """The one line for an error no sentence foresaw, naming what the command was reading."""
    named: list[str] = []
    for attr in ("file", "a", "b"):
        value = getattr(args, attr, None)
        named += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    if any(is_url(n) for n in named):  # a library's words may repeat a signed URL or a token
        return f"Unexpected error while reading {', '.join(map(shown_form, named))}: {type(exc).__name__}."
    return f"Unexpected error while reading {', '.join(named) or 'the input'}: {type(exc).__name__}: {exc}"


def _desktop(install: bool) -> int:
    from inspector import desktop

    try:
        files = desktop.install() if install else desktop.uninstall()
    except (desktop.DesktopError, OSError) as exc:
        return fail(str(exc))
    verb = "Installed" if install else "Removed"
    print_text(f"{verb} {len(files)} files under {desktop.data_home()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
