"""``torch.load`` with the user's options, each loaded tensor's device, and errors as sentences.

Runs inside the engine's worker process. ``weights_only`` is always passed explicitly and never
relaxed here: only the user may choose to trust a file.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FunctionType, ModuleType
from typing import Any, cast

import torch

from inspector.core.errors import CheckpointError
from inspector.core.formatting import escape_text
from inspector.core.globals_policy import TORCH_ALLOWED_ON_IMPORT
from inspector.core.layout import resolve_layout
from inspector.core.load_options import AS_SAVED_ELSE_CPU, LoadOptions, format_map_location
from inspector.core.model import CheckpointIndex, GlobalClass, PathPart, path_part
from inspector.core.peek import DamagedCheckpointError, peek
from inspector.core.safety import (
    FileVerdict,
    allow_refusal,
    global_class,
    judge_globals,
    load_refusal,
    refusal_message,
    torch_names,
    verdict_of,
)
from inspector.core.torch_legacy import LEGACY_PREFIX
from inspector.core.torch_zip import LOCAL_HEADER
from inspector.engine.devices import why_unavailable
from inspector.engine.global_resolver import describe, resolve

_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL (\S+?)(?: was not an allowed global| whose module)")
_BLOCKED_IN_MESSAGE = re.compile(r"GLOBAL (\S+?) whose module")
#: The type of an object weights-only loading built but may not fill in (numpy's DType classes).
_CLASS_IN_MESSAGE = re.compile(r"(?:Can only build|Can only create new object for)[^<]*<class '([^']+)'>")
#: torch refused an object (a global, a class to build, a function to call), not a malformed stream.
_WEIGHTS_ONLY_REFUSAL = re.compile(r"GLOBAL|Can only |call reduce for unrecognized")
_UNPICKLER_LINE = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")
_DEVICE_TROUBLE = re.compile(
    r"deserialize object on|device not recognized|device module is not registered"
    r"|Invalid device|device_count\(\)|is_available\(\) is False|no (CUDA|MPS|XPU)"
    r"|Torch not compiled with",
    re.IGNORECASE,
)
_CORRUPT = re.compile(
    r"PytorchStreamReader|inline_container|central directory|corrupt|invalid load key"
    r"|Unsupported operand|could not find MARK|persistent_load|truncated|unpickling stack"
    r"|Invalid magic number|file in archive|EOF|out of range|size mismatch|invalid zip",
    re.IGNORECASE,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NOT_TORCH_ZIP = re.compile(r"not in a subdirectory|hasRecord|data\.pkl", re.IGNORECASE)


class LoadError(CheckpointError):
    """``torch.load`` failed: a sentence about the user's file, plus what the GUI needs for a fix.

    ``kind`` is one of ``cuda-unavailable``, ``device-unavailable``, ``weights-only``,
    ``not-found``, ``unreadable``, ``not-a-checkpoint``, ``corrupt``, ``torchscript``,
    ``dangerous`` (the safety policy holds the file back unless it is trusted), ``refused-global``
    (the user asked to allow a global that is never allowed), ``missing-global`` (an allowed
    global cannot be found here), ``bad-options``, ``other``.
    ``extra`` holds plain data: ``devices`` and ``suggest`` for device errors, ``globals`` (and
    ``blocked``) for weights-only refusals and the two global kinds.
    """

    def __init__(
        self,
        message: str,
        details: str | None = None,
        kind: str = "other",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.kind = kind
        self.extra: dict[str, Any] = extra if extra is not None else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "details": self.details,
            "extra": self.extra,
        }


@dataclass
class LoadResult:
    """Where ``torch.load`` put each tensor, by the same container paths the static read uses."""

    devices: list[tuple[tuple[PathPart, ...], str]]
    seconds: float
    torch_version: str
    warnings: list[str] = field(default_factory=list)
    #: Saved device → where it went instead, when this machine lacks it (``AS_SAVED_ELSE_CPU``).
    moved: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": [{"path": list(path), "device": device} for path, device in self.devices],
            "seconds": self.seconds,
            "torch_version": self.torch_version,
            "warnings": list(self.warnings),
            "moved": dict(self.moved),
        }


def load_checkpoint(path: str, options: LoadOptions) -> LoadResult:
    """``torch.load`` the checkpoint as the options say and report the device of every tensor in it.

    A shard, an index or a folder of a set loads the whole set (``shard_sources.load_pieces``).
    Raises ``LoadError`` for every failure torch reports; never retries with other options.
    """
    try:
        layout = resolve_layout(path)
    except CheckpointError as exc:
        if os.path.isdir(path):  # a folder that holds no checkpoint: torch says so
            return _load_file(path, options)
        raise LoadError(exc.message, exc.details, "unreadable") from None  # a set that points outside
    if layout.is_set:
        from .shard_sources import load_pieces

        moved: dict[str, str] = {}  # what a DCP folder's chunks, loaded here, could not keep
        chunk_location = _torch_map_location(layout.path, options, moved)
        devices, seconds, notes = load_pieces(layout, options, _load_file, classify_error, chunk_location)
        return LoadResult(
            devices=devices,
            seconds=seconds,
            torch_version=str(torch.__version__),
            warnings=notes,
            moved=moved,
        )
    return _load_file(path, options)


def _load_file(path: str, options: LoadOptions) -> LoadResult:
    """``torch.load`` one file as the options say."""
    name = os.path.basename(path) or path
    shown = escape_text(name)
    # These checks come first: a refused option must never reach torch.load, nor a file the
    # safety policy holds back, even when the engine is asked directly.
    pickle_module = _pickle_module(shown, options)
    judged, needed = _static_verdict(path) if options.weights_only else (None, [])
    check_handed_to_torch(name, judged, options)
    allowed = resolve_allowed_globals(name, options.allowed_globals)
    import_torch_allowances(needed)
    try:
        head = _read_head(path)
    except OSError as exc:
        raise _os_error(shown, exc) from None
    moved: dict[str, str] = {}
    kwargs: dict[str, Any] = {
        "map_location": _torch_map_location(path, options, moved),
        # Always explicit: an explicit value wins over TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.
        "weights_only": options.weights_only,
    }
    if pickle_module is not None:
        kwargs["pickle_module"] = pickle_module
    if options.mmap and head.startswith(LOCAL_HEADER):
        kwargs["mmap"] = True  # torch refuses mmap on the legacy format, so only for zip files
    started = time.perf_counter()
    allowing = torch.serialization.safe_globals(allowed) if allowed else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, allowing:
        warnings.simplefilter("always")
        try:
            obj = torch.load(path, **kwargs)
        except Exception as exc:
            raise classify_error(path, options, exc, head) from None
        seconds = time.perf_counter() - started
        devices = tensor_devices(obj)
    return LoadResult(
        devices=devices,
        seconds=seconds,
        torch_version=str(torch.__version__),
        warnings=_unique(str(w.message) for w in caught),
        moved=moved,
    )


def _torch_map_location(path: str, options: LoadOptions, moved: dict[str, str]) -> Any:
    """``map_location`` for torch.load. ``AS_SAVED_ELSE_CPU`` becomes a callable that leaves each
    storage on its saved device when this machine has it, else on cpu, recording that in ``moved``."""
    if options.map_location != AS_SAVED_ELSE_CPU:
        return options.map_location
    if path.endswith(".safetensors"):
        return None  # torch reads these onto cpu and takes no callable; they record no device
    if _is_torchscript(path):
        # torch.jit.load takes a device, not a callable: all of it stays as saved, or all goes to cpu.
        try:
            saved = list(peek(path, whole_set=False).saved_devices())
        except CheckpointError:
            saved = []
        lacking = [d for d in saved if why_unavailable(d) is not None]
        moved.update(dict.fromkeys(lacking, "cpu"))
        return "cpu" if lacking else None
    here: dict[str, bool] = {}

    def restore(storage: Any, location: str) -> Any:
        if location not in here:
            here[location] = why_unavailable(location) is None
        if here[location]:
            return None  # torch's default: the device it was saved on
        moved[location] = "cpu"
        return storage  # read on cpu: left there

    return restore


#: The pickle modules a trusted load may use: torch's default, and dill when it is installed.
PICKLE_MODULES = ("pickle", "dill")


def available_pickle_modules() -> list[str]:
    """The ``PICKLE_MODULES`` importable here (found without importing them)."""
    return [name for name in PICKLE_MODULES if importlib.util.find_spec(name) is not None]


def check_handed_to_torch(name: str, judged: FileVerdict | None, options: LoadOptions) -> None:
    """Raise the safety policy's refusal for handing the file to torch with these options (a name
    that may never be allowed is named with what it really is); nothing is imported."""
    refusal = load_refusal(name, judged, options)
    if refusal is not None and refusal.kind == "refused-global":
        raise _refused_error(name, [(g, allow_refusal(g) or "") for g in refusal.names])
    if refusal is not None:
        raise LoadError(refusal.message, refusal.details, refusal.kind, {"globals": list(refusal.names)})


def _static_verdict(path: str) -> tuple[FileVerdict | None, list[str]]:
    """The safety policy's verdict on exactly the file torch would load, from the static read (one
    that did not finish says so in ``unread``; ``None`` when the file cannot be opened), and the
    globals that read lists."""
    try:
        index = peek(path, whole_set=False)
    except DamagedCheckpointError as exc:  # damaged, but what it named before that still counts
        judged = judge_globals(exc.globals, "unreadable", exc.differentials, [exc.message])
        return judged, [g.qualname for g in exc.globals]
    except CheckpointError as exc:
        return judge_globals([], "unreadable", unread=[exc.message]), []
    except (RecursionError, MemoryError) as exc:
        return judge_globals(
            [], "unreadable", unread=[f"the static read ran out of {type(exc).__name__}"]
        ), []
    except OSError:
        return None, []  # torch cannot open it either, and says why
    return verdict_of(index), [g.qualname for g in index.globals]


def import_torch_allowances(needed: Iterable[str]) -> None:
    """Import the modules of torch whose import adds globals ``needed`` to torch's own allowlist
    (nested jagged tensors need ``torch._dynamo``, DTensors ``torch.distributed.tensor``), as
    torch asks; what fails to import is left for torch to refuse."""
    for module in _unique(TORCH_ALLOWED_ON_IMPORT[n] for n in needed if n in TORCH_ALLOWED_ON_IMPORT):
        if module not in sys.modules:
            with contextlib.suppress(Exception):
                importlib.import_module(module)


def _refused_error(name: str, refused: list[tuple[str, str]]) -> LoadError:
    """``refused-global``: each name with why it may never be allowed, naming the real object it
    reaches through modules already imported here (nothing is imported to say so)."""
    explained: list[tuple[str, str]] = []
    for qualname, why in refused:
        real = describe(qualname)
        if real is not None and real != qualname and escape_text(real) not in why:
            why += f" (it is {escape_text(real)})"
        explained.append((qualname, why))
    names = [g for g, _ in explained]
    return LoadError(
        refusal_message(name, explained),
        "; ".join(f"{escape_text(g)}: {why}" for g, why in explained),
        "refused-global",
        {"globals": names},
    )


def resolve_allowed_globals(
    name: str, allowed: tuple[str, ...]
) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """The real objects for the globals the user allowed, each paired with the names torch looks
    it up by (the name in the file, and pickle's Python 2 mapping of it).

    Every name is checked by the safety policy before anything is imported, and the object it
    resolves to is checked again (``refused-global``); a name not found is ``missing-global``.
    """
    refused: list[tuple[str, str]] = []
    missing: list[tuple[str, str]] = []
    resolved: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = []
    for qualname in _unique(allowed):
        if global_class(qualname) is GlobalClass.ALLOWED:
            continue  # torch allows it without being asked
        found = resolve(qualname)
        if found.refusal is not None:
            refused.append((qualname, found.refusal))
        elif found.missing is not None:
            missing.append((qualname, found.missing))
        else:
            obj = cast(Callable[..., Any], found.obj)  # a class or numpy's data builder, by the check
            resolved.extend((obj, as_named) for as_named in torch_names(qualname))
    shown = f"“{escape_text(name)}”"
    if refused:
        raise _refused_error(name, refused)
    if missing:
        names = [g for g, _ in missing]
        raise LoadError(
            f"{shown} needs {_join([escape_text(g) for g in names])}, which the loader cannot import "
            f"({escape_text(missing[0][1])}; is the package that defines it installed in the loader's "
            "Python?).",
            "; ".join(f"{escape_text(g)}: {escape_text(why)}" for g, why in missing),
            "missing-global",
            {"globals": names},
        )
    return resolved


def _pickle_module(name: str, options: LoadOptions) -> ModuleType | None:
    """The module a trusted load unpickles with; ``None`` means torch's default."""
    chosen = options.pickle_module
    if chosen is None:
        return None
    if options.weights_only:
        raise LoadError(
            f"A pickle module ({chosen}) can only be chosen when “{name}” is trusted: torch "
            "refuses a custom one under weights-only loading.",
            None,
            "bad-options",
        )
    if chosen not in PICKLE_MODULES:
        raise LoadError(
            f"“{chosen}” is not a pickle module the loader offers (pickle or dill).", None, "bad-options"
        )
    if chosen not in available_pickle_modules():
        raise LoadError(
            f"{chosen} is not installed in the loader's Python, so “{name}” cannot be loaded with it.",
            None,
            "bad-options",
        )
    return importlib.import_module(chosen)


def tensor_devices(obj: object) -> list[tuple[tuple[PathPart, ...], str]]:
    """Each tensor's container path and device, depth first in container order.

    Dict keys become ``path_part(key)``, list and tuple items their index, and instances with a
    ``__dict__`` their attribute names, exactly as the static reader names them. Each container is
    entered once (shared and cyclic references are not repeated).
    """
    found: list[tuple[tuple[PathPart, ...], str]] = []
    visited: set[int] = set()
    # A path is kept as a link to its parent's, so a deeply nested object costs its depth once.
    stack: list[tuple[_Link | None, object]] = [(None, obj)]
    while stack:
        link, item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append((_path(link), str(item.device)))
            continue
        children: list[tuple[PathPart, object]]
        if isinstance(item, dict):
            children = [(path_part(k), v) for k, v in item.items()]
        elif isinstance(item, list | tuple):
            children = list(enumerate(item))
        elif isinstance(item, torch.jit.ScriptModule):
            # Trusted TorchScript: its attributes, nested the way its data.pkl stores them.
            children = [
                *item.named_parameters(recurse=False),
                *item.named_buffers(recurse=False),
                *item.named_children(),
            ]
        elif _has_instance_dict(item):
            children = [(str(k), v) for k, v in vars(item).items()]
        else:
            continue
        if id(item) in visited:
            continue
        visited.add(id(item))
        stack.extend(((link, part), child) for part, child in reversed(children))
    return found


_Link = tuple[Any, PathPart]  # (the parent's link or None, this part)


def _path(link: _Link | None) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    while link is not None:
        link, part = link
        parts.append(part)
    return tuple(reversed(parts))


def _has_instance_dict(item: object) -> bool:
    if isinstance(item, type | ModuleType | FunctionType):
        return False
    try:
        return isinstance(vars(item), dict)
    except TypeError:
        return False


def _is_torchscript(path: str) -> bool:
    """True for a TorchScript archive, which torch.load hands to torch.jit.load."""
    if not _is_zip(path):
        return False
    try:  # torch's own zip reader, as torch.load reads the file (it decides the same way)
        records = torch._C.PyTorchFileReader(path).get_all_records()
    except (OSError, RuntimeError):
        return False
    return "constants.pkl" in records


def _is_zip(path: str) -> bool:
    try:
        return _read_head(path).startswith(LOCAL_HEADER)
    except OSError:
        return False


def _read_head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(len(LEGACY_PREFIX))


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


def _os_error(name: str, exc: OSError) -> LoadError:
    raw = str(exc)
    if isinstance(exc, FileNotFoundError):
        return LoadError(f"“{name}” does not exist (it may have been moved or deleted).", raw, "not-found")
    if isinstance(exc, IsADirectoryError):
        return LoadError(f"“{name}” is a folder, not a checkpoint file.", raw, "unreadable")
    if isinstance(exc, PermissionError):
        return LoadError(f"“{name}” cannot be read: permission denied.", raw, "unreadable")
    return LoadError(f"“{name}” cannot be read: {exc.strerror or raw}.", raw, "unreadable")


def classify_error(path: str, options: LoadOptions, exc: BaseException, head: bytes) -> LoadError:
    """What ``torch.load`` raised, as one sentence about the file with the facts a fix needs."""
    name = escape_text(os.path.basename(path) or path)
    raw = _ANSI.sub("", str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        return _os_error(name, exc)
    if "TorchScript" in raw or "torchscript" in raw:
        return LoadError(
            f"“{name}” is a TorchScript archive, not a torch.save checkpoint; loading it runs code "
            "stored in the file, so it is only loaded when you trust the file.",
            raw,
            "torchscript",
        )
    if "legacy .tar format" in raw:
        return LoadError(
            f"“{name}” uses the torch 0.1 tar format, which torch loads only with weights_only=False "
            "(running its pickles); it is loaded only when you trust the file.",
            raw,
            "weights-only",
        )
    if "Weights only load failed" in raw and _WEIGHTS_ONLY_REFUSAL.search(raw):
        return _weights_only_error(path, name, raw, options)
    if _DEVICE_TROUBLE.search(raw):
        device_error = _device_error(path, name, options, raw)
        if device_error is not None:
            return device_error
    if not head:
        return LoadError(f"“{name}” is empty (0 bytes), so it holds no checkpoint.", raw, "corrupt")
    is_torch_file = head.startswith(LOCAL_HEADER) or head.startswith(LEGACY_PREFIX)
    if not is_torch_file and (isinstance(exc, EOFError) or _CORRUPT.search(raw)):
        return LoadError(
            f"“{name}” is not a PyTorch checkpoint: it starts with neither a torch.save zip "
            "archive nor torch's legacy header.",
            raw,
            "not-a-checkpoint",
        )
    if head.startswith(LOCAL_HEADER) and _NOT_TORCH_ZIP.search(raw):
        return LoadError(
            f"“{name}” is a zip archive, but not one written by torch.save.",
            raw,
            "not-a-checkpoint",
        )
    if isinstance(exc, EOFError) or _CORRUPT.search(raw):
        fmt = "zip" if head.startswith(LOCAL_HEADER) else "legacy-format"
        return LoadError(
            f"“{name}” is damaged: torch could not read it as a {fmt} checkpoint "
            "(the file may be truncated, or it was not written completely).",
            raw,
            "corrupt",
        )
    if isinstance(exc, MemoryError):
        return LoadError(f"“{name}” does not fit in memory with the chosen map location.", raw, "other")
    return LoadError(f"torch could not load “{name}”: {escape_text(_first_line(raw))}", raw, "other")


def _first_line(raw: str) -> str:
    line = raw.strip().splitlines()[0] if raw.strip() else raw
    return line if line.endswith(".") else line + "."


def _weights_only_error(path: str, shown_name: str, raw: str, options: LoadOptions) -> LoadError:
    """torch's weights-only refusal as a sentence that names what is missing (never torch's own
    paragraph, which recommends weights_only=False): every global and class torch named, and the
    scan's list of what the file needs beyond torch's own set."""
    listed = _unsafe_globals(path)
    named = [*(_named_in_message(n, listed) for n in _GLOBAL_IN_MESSAGE.findall(raw)),
             *_CLASS_IN_MESSAGE.findall(raw)]  # fmt: skip
    blocked = _unique(_BLOCKED_IN_MESSAGE.findall(raw))
    allowed = set(options.allowed_globals)
    needed = _unique([*named, *(g for g in listed if g not in allowed)])
    shown_file = f"“{shown_name}”"
    shown = _join([escape_text(g) for g in needed])
    if blocked:
        message = (
            f"{shown_file} references {shown}, which weights-only loading always refuses because it "
            "can run commands or reach the system; do not trust this file unless you made it."
        )
    elif needed:
        allow = "Allow exactly this one" if len(needed) == 1 else "Allow exactly these"
        still = " still" if allowed else ""
        message = (
            f"{shown_file}{still} needs {shown}, which weights-only loading does not allow. {allow} "
            "for this file, or trust the whole file if you know where it came from."
        )
    else:
        found = _UNPICKLER_LINE.search(raw)
        what = escape_text(found.group(1).strip()) if found else "an object it does not allow"
        message = (
            f"Weights-only loading refused {shown_file} at {what.rstrip('.')}; trust the whole file "
            "if you know where it came from."
        )
    extra: dict[str, Any] = {"globals": needed}
    if blocked:
        extra["blocked"] = blocked
    return LoadError(message, raw, "weights-only", extra)


def _named_in_message(shown: str, listed: list[str]) -> str:
    """The global torch's refusal names: its message drops the ``builtins.`` of a builtin
    (``GLOBAL list``), so a name without a module, or one the file lists under builtins, is one."""
    builtin = f"builtins.{shown}"
    return builtin if "." not in shown or builtin in listed else shown


def _unsafe_globals(path: str) -> list[str]:
    """Every global outside torch's weights-only set: torch's own list (zip files) and the static
    read's, which also lists what torch needs without a GLOBAL naming it (numpy's DType classes)."""
    names: list[str] = []
    with contextlib.suppress(Exception):
        names.extend(str(g) for g in torch.serialization.get_unsafe_globals_in_checkpoint(path))
    index = _peek(path)
    if index is not None:
        names.extend(g.qualname for g in index.unsafe_globals)
    return _unique(names)


def _peek(path: str) -> CheckpointIndex | None:
    """Core's static read of the file; ``None`` when it cannot read it."""
    try:
        return peek(path)
    except Exception:
        return None


def _saved_locations(path: str) -> list[str]:
    """The distinct devices the file's storages were saved on."""
    index = _peek(path)
    if index is not None:
        try:
            return [str(d) for d in index.saved_devices()]
        except Exception:
            pass
    # Without the static reader, let torch tell: a map_location callable sees each saved location.
    seen: list[str] = []

    def record(storage: Any, location: str) -> Any:
        if location not in seen:
            seen.append(location)
        return storage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Whatever was recorded before a failure is still true.
        with contextlib.suppress(Exception):
            torch.load(path, map_location=record, weights_only=True, mmap=_is_zip(path))
    return seen


def _device_error(path: str, name: str, options: LoadOptions, raw: str) -> LoadError | None:
    saved = _saved_locations(path)
    if not saved and isinstance(options.map_location, str):
        saved = ["cpu"]  # one target for everything: the saved locations do not matter
    missing = [(src, dst) for src in saved if (dst := options.target_device(src)) and why_unavailable(dst)]
    if not missing:
        return None
    missing.sort(key=lambda pair: (_device_order(pair[0]), _device_order(pair[1])))
    targets = _unique(dst for _, dst in missing)
    reason = why_unavailable(targets[0])
    no_cuda = all(t.startswith("cuda") for t in targets) and not torch.cuda.is_available()
    kind = "cuda-unavailable" if no_cuda else "device-unavailable"
    extra: dict[str, Any] = {"suggest": "cpu"}
    if options.map_location is None:
        extra["devices"] = _unique(src for src, _ in missing)
        message = (
            f"“{name}” holds tensors saved on {_join([escape_text(d) for d in extra['devices']])}, "
            f"but {reason}. Load it with map location cpu to see it here."
        )
    else:
        extra["devices"] = targets
        extra["saved_devices"] = _unique(src for src, _ in missing)
        message = (
            f"Map location {format_map_location(options.map_location)} would put tensors of "
            f"“{name}” on {_join([escape_text(t) for t in targets])}, but {reason}. Choose cpu (or a "
            "device this machine has) instead."
        )
    return LoadError(message, raw, kind, extra)


def _device_order(device: str) -> tuple[str, int]:
    kind, _, index = device.partition(":")
    return (kind, int(index) if index.isdigit() else -1)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
