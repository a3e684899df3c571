"""The one safety policy: what a file's scan means, what may be allowed, what trust means, and
what may be handed to torch. The window, the command line and the engine all ask this module.

- **Verdict of a file**: the worst of its globals (``globals_policy``), judged in the context of
  the reader torch would use (TorchScript's and DCP's own records are data); TorchScript code is
  a fact of its own, since it runs under ``torch.jit.load`` whatever the pickles hold.
- **What may be allowed** ("Allow exactly these", ``--allow-global``): first a check of the name
  (``allow_refusal``), then, in the loader, a check of the real object the name resolves to
  (``resolved_refusal``): only data constructors, reached under their own name.
- **What trust means**: ``weights_only=False`` for one file, asked for each file and never
  remembered; the file's pickle may then run anything, so it is never implied by another answer.
- **What may be handed to torch** (``load_refusal``): nothing dangerous (a dangerous global, or a
  file torch could read otherwise than it is shown) and no TorchScript archive unless the file is
  trusted, no allowlist holding a name that may never be allowed, and no allowlist at all for a
  file the static read did not finish (what the allowed globals build there is unchecked).
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import enum
import inspect
import os
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .formats import Format
from .formatting import escape_text
from .globals_policy import TORCH_BLOCKED_MODULES, is_valid_name, judge, judge_qualname, torch_lookup
from .load_options import LoadOptions
from .model import CheckpointIndex, GlobalClass, GlobalRef

_SEVERITY = {GlobalClass.ALLOWED: 0, GlobalClass.UNKNOWN: 1, GlobalClass.DANGEROUS: 2}

#: What a TorchScript archive is, said the same way everywhere.
TORCHSCRIPT_CODE = (
    "holds TorchScript code, which runs if loaded with torch.jit.load; the tensors are shown from "
    "the static read"
)

#: The flag of the command line that trusts a file (``weights_only=False``), and what it means.
TRUST_FLAG = "--trust"
TRUST_HELP = (
    "trust the file: torch.load it with weights_only=False, so its pickle may run any code on this "
    "computer (only for files you made or whose source you trust); without it a file the scan "
    "calls dangerous, or a TorchScript archive, is never handed to torch"
)
TRUST_HINT = (
    f"Pass {TRUST_FLAG} to load it anyway with weights_only=False, if you trust where it came from "
    "(its pickle may then run code)."
)


class Verdict(enum.Enum):
    """The badge of a file: the worst class among the globals its pickles reference."""

    SAFE = "Safe"
    UNKNOWN = "Unknown globals"
    DANGEROUS = "Dangerous"

    @property
    def word(self) -> str:
        """The verdict as ``scan`` prints it: safe, unknown or dangerous."""
        return {Verdict.SAFE: "safe", Verdict.UNKNOWN: "unknown", Verdict.DANGEROUS: "dangerous"}[self]


@dataclass(frozen=True)
class FileVerdict:
    """What the scan of one file means: its verdict, the names behind it, and TorchScript code."""

    verdict: Verdict
    dangerous: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    torchscript_code: bool = False
    #: Ways another reader (torch's among them) would read the file differently from the static
    #: read, one sentence each; any makes the file dangerous, since what runs may not be what was shown.
    differentials: tuple[str, ...] = ()
    #: Parts that could not be read (damaged shards of a set), one sentence each.
    unread: tuple[str, ...] = ()


def unique_names(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


# -- the verdict of a file ---------------------------------------------------------------------

#: The classes torch's own DCP writer pickles into ``.metadata``: plain records, nothing that runs.
DCP_RECORD_CLASSES = frozenset(
    {f"torch.distributed.checkpoint.metadata.{n}" for n in (
        "Metadata", "TensorStorageMetadata", "TensorProperties", "ChunkStorageMetadata",
        "BytesStorageMetadata", "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING")}
    | {"torch.distributed.checkpoint.filesystem._StorageInfo", "torch.serialization._get_layout",
       "torch.Size", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath"}
)  # fmt: skip

#: Builders TorchScript's own unpickler reads as data (it resolves no Python global at all).
_TORCHSCRIPT_BUILDERS = frozenset(
    f"torch.jit._pickle.{n}"
    for n in ("build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
              "build_tensor_from_id", "restore_type_tag")
)  # fmt: skip


def _is_format_record(g: GlobalRef, fmt: str) -> bool:
    if g.verdict is not GlobalClass.UNKNOWN:
        return False
    if fmt == Format.TORCHSCRIPT:
        return g.module.split(".")[0] == "__torch__" or g.qualname in _TORCHSCRIPT_BUILDERS
    return fmt == Format.DCP and g.qualname in DCP_RECORD_CLASSES


def in_format(globals_: Sequence[GlobalRef], fmt: str) -> list[GlobalRef]:
    """The globals judged for the reader torch uses on this format: TorchScript's class names and
    builders, and DCP's metadata records, are data there (anything else keeps its verdict)."""
    return [replace(g, verdict=GlobalClass.ALLOWED) if _is_format_record(g, fmt) else g for g in globals_]


def judge_globals(
    globals_: Sequence[GlobalRef],
    fmt: str,
    differentials: Sequence[str] = (),
    unread: Sequence[str] = (),
) -> FileVerdict:
    """The verdict of a file whose pickles reference ``globals_`` (as the static read judged them),
    that other readers would read differently in the ways ``differentials`` say, and whose parts
    ``unread`` (damaged shards of a set) could not be read: those make it unknown at best."""
    dangerous = unique_names(g.qualname for g in globals_ if g.verdict is GlobalClass.DANGEROUS)
    unknown = unique_names(g.qualname for g in globals_ if g.verdict is GlobalClass.UNKNOWN)
    if dangerous or differentials:
        verdict = Verdict.DANGEROUS
    else:
        verdict = Verdict.UNKNOWN if unknown or unread else Verdict.SAFE
    return FileVerdict(
        verdict,
        tuple(dangerous),
        tuple(unknown),
        fmt == Format.TORCHSCRIPT,
        tuple(differentials),
        tuple(unread),
    )


def verdict_of(index: CheckpointIndex) -> FileVerdict:
    return judge_globals(index.globals, index.format, index.differentials, index.unread)


def global_class(qualname: str, index: CheckpointIndex | None = None) -> GlobalClass:
    """The static read's verdict on ``module.name``; for a name it did not list (one the engine
    reported), the worst verdict over every way the dotted name splits."""
    if index is not None:
        known = [g.verdict for g in index.globals if g.qualname == qualname]
        if known:
            return max(known, key=_SEVERITY.__getitem__)
    return judge_qualname(qualname).verdict


def what_would_run(index: CheckpointIndex, also: Iterable[str] = ()) -> list[tuple[str, GlobalClass]]:
    """What a trusted load imports and may call (everything outside torch's weights-only set),
    dangerous first, each once; ``also`` adds names the engine reported."""
    names = unique_names([*(g.qualname for g in index.unsafe_globals), *also])
    classed = [(name, global_class(name, index)) for name in names]
    classed = [(name, verdict) for name, verdict in classed if verdict is not GlobalClass.ALLOWED]
    return sorted(classed, key=lambda item: -_SEVERITY[item[1]])


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = [escape_text(n) for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    if len(shown) <= 1:
        return "".join(shown) + more
    return (", ".join(shown[:-1]) + " and " + shown[-1]) if not more else ", ".join(shown) + more


def danger_sentence(file_name: str, judged: FileVerdict) -> str:
    """Why a dangerous file is not handed to torch: the globals, and what they can do."""
    reasons = unique_names(reason for name in judged.dangerous if (reason := judge_qualname(name).reason))
    what = f" ({'; '.join(reasons[:2])})" if reasons else ""
    return (
        f"“{escape_text(file_name)}” references {_listing(judged.dangerous)}, which can run code on "
        f"this computer{what}; it is shown from its static read and not handed to torch unless you "
        "trust the file."
    )


def differential_sentence(file_name: str, judged: FileVerdict) -> str:
    """Why a file that torch could read otherwise than it is shown is not handed to torch."""
    why = escape_text(judged.differentials[0])
    return (
        f"“{escape_text(file_name)}” may not be what torch would read ({why}); it is shown from its static "
        "read and not handed to torch unless you trust the file."
    )


# -- what may be allowed -----------------------------------------------------------------------


def allow_refusal(qualname: str) -> str | None:
    """Why ``module.name`` may never be allowlisted, judged on the name before anything is imported;
    ``None`` when the loader may go on to resolve it (and judge the real object)."""
    parts = qualname.split(".")
    if len(parts) < 2 or not is_valid_name(qualname):
        return (
            "it is not a name any Python module can have (the import machinery would read it as another name)"
        )
    if parts[0] in TORCH_BLOCKED_MODULES:
        return f"torch never allows anything from the {parts[0]} module"
    if parts[0] in ("__main__", "__mp_main__"):
        return "it is defined in the script that saved the file, which only that script can import"
    if parts[0] == "__torch__":
        return "it is a TorchScript class, which only torch.jit.load builds"
    if any(p.startswith("__") and p.endswith("__") for p in parts[1:]):
        return "it reaches a dunder attribute, which leads to any object"
    judged = judge_qualname(qualname)
    if judged.verdict is GlobalClass.DANGEROUS:
        return f"it {judged.reason}"
    return None


def refusal_message(file_name: str, refused: Sequence[tuple[str, str]]) -> str:
    """Why the globals in ``refused`` (name, reason) cannot be allowed for the file: each one named
    with its reason, names that share a reason together."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in refused:
        by_reason.setdefault(reason, []).append(escape_text(name))
    quoted = f"“{escape_text(file_name)}”"
    if len(by_reason) == 1:
        [(reason, names)] = by_reason.items()
        said = f"{_listing(names, len(names))} cannot be allowed for {quoted}: {reason}"
    else:
        groups = "; ".join(f"{_listing(names, len(names))} ({reason})" for reason, names in by_reason.items())
        said = f"These cannot be allowed for {quoted}: {groups}"
    return f"{said}. Only trusting the whole file would load it."


def refused_names(names: Iterable[str]) -> list[str]:
    """The names no allowlist may hold (the check on the name alone)."""
    return [name for name in unique_names(names) if allow_refusal(name) is not None]


#: Renames between package versions: a file pickled under numpy 1.x names ``numpy.core.*``,
#: which numpy 2.x keeps as ``numpy._core.*`` (its ``numpy.core`` is a deprecated alias).
KNOWN_RENAMES = (("numpy.core.", "numpy._core."),)


def renamed(qualname: str) -> list[str]:
    """The names ``qualname`` may really have after a known rename (itself excluded)."""
    return [new + qualname[len(old) :] for old, new in KNOWN_RENAMES if qualname.startswith(old)]


def torch_names(qualname: str) -> list[str]:
    """The names torch's weights-only unpickler may look ``qualname`` up by: as written, and as a
    file that writes it so reads after torch's share of pickle's Python 2 mapping."""
    module, _, name = qualname.rpartition(".")
    return unique_names([qualname, ".".join(torch_lookup(module, name))])


#: Standard-library modules the loader may import to allow a class of theirs: data types only.
STDLIB_DATA_MODULES = frozenset(
    {"argparse", "collections", "dataclasses", "datetime", "decimal", "enum", "fractions", "numbers",
     "typing", "zoneinfo", "ipaddress", "types", "_collections", "_decimal", "_datetime", "array"}
)  # fmt: skip


#: Parts of a module path that name a package's test suite, scripts or build hooks: importing one
#: runs setup code (a test suite's settings and fixtures), and none holds a checkpoint's classes.
NEVER_IMPORTED_PARTS = frozenset(
    {"conftest", "tests", "test", "testing", "__main__", "setup", "benchmarks", "_pytesttester",
     "_pyinstaller"}
)  # fmt: skip


def import_refusal(
    module: str, origin: str | None, site_dirs: Sequence[str], stdlib_dirs: Sequence[str]
) -> str | None:
    """Why the loader may not import ``module`` (not yet imported there) to allow a global in it.

    Importing runs the module's code, so only installed packages (site-packages) and the
    standard library's data modules are imported; never a module beside the checkpoint or in the
    working folder, never one in a dangerous family, never a package's tests or scripts, never
    one that is not found.
    """
    judged = judge(module, "_")
    if judged.verdict is GlobalClass.DANGEROUS:
        return f"its module {escape_text(module)} {judged.reason}"
    if NEVER_IMPORTED_PARTS.intersection(module.split(".")):
        return f"{escape_text(module)} is a package's tests or scripts, which the loader never imports"
    top = module.split(".")[0]
    if origin is None:
        return f"no module {escape_text(module)} is installed in the loader's Python"
    if origin in ("built-in", "frozen"):
        return None if top in STDLIB_DATA_MODULES else f"the loader never imports {escape_text(module)}"
    path = os.path.realpath(origin)

    def under(dirs: Sequence[str]) -> bool:
        return any(path.startswith(os.path.join(os.path.realpath(d), "")) for d in dirs if d)

    if under(site_dirs):
        return None
    if under(stdlib_dirs):
        return None if top in STDLIB_DATA_MODULES else f"the loader never imports {escape_text(module)}"
    return (
        f"its module {escape_text(module)} is not installed in the loader's Python (a module beside the "
        "checkpoint or in the working folder is never imported)"
    )


# -- the real object a name resolves to --------------------------------------------------------

#: Functions whose only work is building arrays and scalars from data (numpy's pickle helpers).
NUMPY_DATA_FUNCTIONS = frozenset(
    f"{m}.{n}"
    for m in ("numpy._core.multiarray", "numpy.core.multiarray")
    for n in ("_reconstruct", "scalar")
)
_BUILTIN_DATA_TYPES: tuple[type, ...] = (
    set, frozenset, bytearray, complex, slice, range, dict, list, tuple, int, float, str, bytes, bool,
)  # fmt: skip
#: Bases whose reconstruction methods are plain data handling (a class may inherit them).
_DATA_BASES: tuple[type, ...] = (
    object, *_BUILTIN_DATA_TYPES, collections.OrderedDict, collections.defaultdict, collections.deque,
    collections.Counter, collections.UserDict, collections.UserList, collections.UserString,
    enum.Enum, enum.IntEnum, enum.Flag, enum.IntFlag, enum.StrEnum, enum.ReprEnum,
)  # fmt: skip
_DATA_METACLASSES: tuple[type, ...] = (type, abc.ABCMeta, enum.EnumType)
#: Classes outside the bases above whose own methods are known to only store their arguments.
_PLAIN_RECORD_CLASSES = frozenset(
    {"argparse.Namespace", "argparse._AttributeHolder", "types.SimpleNamespace"}
)
#: What unpickling may call on a class or its instances (weights-only BUILD, NEWOBJ, REDUCE,
#: SETITEM, hashing keys, and the finaliser when the object is dropped).
_RECONSTRUCTION_METHODS = (
    "__new__", "__init__", "__setstate__", "__reduce__", "__reduce_ex__", "__setattr__", "__delattr__",
    "__setitem__", "__getattr__", "__getattribute__",
    "__hash__", "__eq__", "__del__", "__init_subclass__", "__class_getitem__", "__set_name__",
    "__missing__", "_missing_", "__post_init__",
)  # fmt: skip
_HEAPTYPE = 1 << 9


def _unwrapped(value: object) -> object:
    return value.__func__ if isinstance(value, staticmethod | classmethod) else value


_PROBE = collections.namedtuple("_PROBE", "field")
#: A namedtuple's field accessor: a descriptor that refuses to be set, nothing more.
_TUPLE_FIELD = type(_PROBE.field)
#: The code every namedtuple's own methods share (``typing.NamedTuple`` makes them the same way).
_NAMEDTUPLE_CODE = {
    attr: _unwrapped(vars(_PROBE)[attr]).__code__  # type: ignore[attr-defined]
    for attr in ("__repr__", "__getnewargs__", "_asdict", "_replace", "_make")
}
#: How an object is turned into text: loading it, walking it and pickling a copy never ask for that.
_TEXT_METHODS = frozenset({"__repr__", "__str__", "__format__"})
#: What ``dataclasses.dataclass`` writes into a class (order, eq, frozen and unsafe_hash included).
_DATACLASS_METHODS = frozenset(
    {"__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__lt__", "__le__",
     "__gt__", "__ge__"}
)  # fmt: skip


def real_name(obj: object) -> str | None:
    """``module.qualname`` of what ``obj`` says it is (a C function's module from ``__self__``)."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str):
        owner = getattr(obj, "__self__", None)
        module = owner.__name__ if isinstance(owner, types.ModuleType) else None
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}"


def _held_under(obj: object, name: str) -> bool:
    """True when the imported module named in ``name`` holds exactly ``obj`` under the rest of it."""
    holder: object = None
    qual = ""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        if module in sys.modules:
            holder, qual = sys.modules[module], ".".join(parts[cut:])
            break
    if holder is None:
        return False
    for part in qual.split("."):
        try:
            holder = inspect.getattr_static(holder, part)
        except AttributeError:
            return False
    return holder is obj


def _accepted_methods() -> dict[int, object]:
    """Every attribute of the data bases (by identity): a class may inherit or reuse any of them,
    under any name (an enum of strings takes ``str.__new__`` as its ``_new_member_``)."""
    return {id(v): v for base in _DATA_BASES for v in map(_unwrapped, vars(base).values())}


def _generated_method(klass: type, attr: str, value: object) -> bool:
    """Methods the standard library writes for a record class: a dataclass's ``__init__``,
    ``__repr__``, comparisons, hash and frozen ``__setattr__``; a namedtuple's ``__new__`` and the
    methods every namedtuple shares (a hash switched off, ``None``, is inherited: it is ``dict``'s)."""
    value = _unwrapped(value)
    qualname = getattr(value, "__qualname__", "")
    code = getattr(value, "__code__", None)
    if code is not None and code.co_filename == dataclasses.__file__ and attr == "__repr__":
        # dataclasses guards the __repr__ it writes against recursion, with a wrapper of its own
        code = getattr(getattr(value, "__wrapped__", None), "__code__", None)
    if code is None:
        return False
    if isinstance(getattr(klass, "_fields", None), tuple):
        if attr == "__new__":
            return code.co_filename == "<string>" and value.__module__ == f"namedtuple_{klass.__name__}"
        return code is _NAMEDTUPLE_CODE.get(attr)
    if dataclasses.is_dataclass(klass) and attr in _DATACLASS_METHODS:
        return code.co_filename == "<string>" and qualname == f"{klass.__qualname__}.{attr}"
    return False


def _is_code(value: object) -> bool:
    """True for an attribute that runs code when it is called or read (a function, a descriptor)."""
    if isinstance(value, types.MemberDescriptorType | types.GetSetDescriptorType | _TUPLE_FIELD):
        return False  # a slot or an instance dict: storage, no code
    return callable(value) or hasattr(type(value), "__get__")


def _own_code_refusal(klass: type, accepted: dict[int, object], bases: Sequence[type]) -> str | None:
    """Why one class of an MRO adds code that unpickling, or using what it built, would run.

    Python calls dunder methods on its own (iterating, ``isinstance`` through ``__class__``,
    copying, pickling a copy), and code that walks a loaded dict, list or tuple calls the methods
    of that type (``bases``), so a class may add neither; other methods run only when called, and
    its text (``_TEXT_METHODS``) only when something prints it, which loading and copying never do.
    """
    own = [
        (attr, value)
        for attr, value in vars(klass).items()
        if accepted.get(id(_unwrapped(value))) is not _unwrapped(value)  # not the data bases' own
        and not _generated_method(klass, attr, value)
    ]
    for attr, _ in own:
        if attr in _RECONSTRUCTION_METHODS:
            return f"its {attr} is code of its own, which unpickling would run"
    for attr, value in own:
        if isinstance(value, property):
            if value.fset is not None or value.fdel is not None:
                return f"its property {escape_text(attr)} runs code when set"
        elif hasattr(type(value), "__set__") and _is_code(value):
            return f"its attribute {escape_text(attr)} runs code when set"
        if not _is_code(value):
            continue
        if attr in _TEXT_METHODS:
            continue
        if attr.startswith("__") and attr.endswith("__"):
            return (
                f"its {escape_text(attr)} is code of its own, which Python runs when the loaded object "
                "is used (iterated, type-checked, copied or saved)"
            )
        base = next((b for b in bases if attr in vars(b)), None)
        if base is not None:
            return (
                f"its {escape_text(attr)} replaces {base.__qualname__}.{escape_text(attr)} with code of its "
                f"own, which runs when the loaded object is used as a {base.__qualname__}"
            )
    return None


def _class_refusal(cls: type) -> str | None:
    """Why instances of ``cls`` are not plain data when unpickled, or ``None`` when they are."""
    if type(cls) not in _DATA_METACLASSES:
        meta = type(cls)
        return f"its metaclass {escape_text(f'{meta.__module__}.{meta.__qualname__}')} is code of its own"
    accepted = _accepted_methods()
    bases = [b for b in cls.__mro__ if b in _DATA_BASES and b is not object]
    for klass in cls.__mro__:
        if klass in _DATA_BASES:
            continue
        qual = f"{klass.__module__}.{klass.__qualname__}"
        if qual in _PLAIN_RECORD_CLASSES:
            continue
        if not klass.__flags__ & _HEAPTYPE:
            return f"it is built on {escape_text(qual)}, a compiled type whose reconstruction is its own code"
        refusal = _own_code_refusal(klass, accepted, bases)
        if refusal is not None:
            return refusal
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            factory: object = f.default_factory
            if factory is not dataclasses.MISSING and not any(factory is b for b in _DATA_BASES):
                return f"its field {escape_text(f.name)} is made by a function of its own"
    return None


def _is_numpy_data(obj: object, real: str) -> bool:
    """numpy's data constructors, by identity: array and scalar builders, dtypes, scalar types."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not real.startswith("numpy."):
        return False
    if real in NUMPY_DATA_FUNCTIONS or any(obj is getattr(numpy, n, None) for n in ("ndarray", "dtype")):
        return True
    dtype, generic = getattr(numpy, "dtype", None), getattr(numpy, "generic", None)
    if not isinstance(obj, type) or not isinstance(dtype, type) or not isinstance(generic, type):
        return False
    if real.startswith("numpy.dtypes."):
        return issubclass(obj, dtype)
    return real.count(".") == 1 and issubclass(obj, generic)  # numpy's scalar types (numpy.float32 …)


def resolved_refusal(qualname: str, obj: object) -> str | None:
    """Why the object ``qualname`` resolved to in the loader may not be allowlisted, or ``None``.

    Judged on the object itself: its real ``module.qualname`` must be the name in the file (or a
    known rename of it), its module must hold exactly it under that name, it must not belong to a
    dangerous family, and it must be a data constructor (numpy's array, dtype and scalar builders,
    or a class whose reconstruction is plain data: no method of its own that unpickling calls).
    """
    real = real_name(obj)
    if isinstance(obj, types.ModuleType):
        return f"it is the module {escape_text(obj.__name__)}, not a class"
    if real is None:
        return "it is not a class or a function with a name of its own"
    expected = {*torch_names(qualname), *(r for n in torch_names(qualname) for r in renamed(n))}
    if real not in expected:
        return f"it is {escape_text(real)}, reached through another module than the one it belongs to"
    if "<locals>" in real or not _held_under(obj, real):
        return f"its module does not hold it as {escape_text(real)}"
    judged = judge_qualname(real)
    if judged.verdict is GlobalClass.DANGEROUS:
        return f"it is {escape_text(real)}, which {judged.reason}"
    if _is_numpy_data(obj, real):
        return None
    if not isinstance(obj, type):
        return f"it is a function ({escape_text(real)}); only classes that hold data may be allowed"
    return _class_refusal(obj)


# -- what may be handed to torch ---------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a file is not handed to torch with the options asked for; ``kind`` as the engine's
    error kinds (``dangerous``, ``torchscript``, ``refused-global``)."""

    kind: str
    message: str
    names: tuple[str, ...] = ()
    details: str | None = None  # for "Details": what each name can do, or how torch treats the file


def load_refusal(file_name: str, judged: FileVerdict | None, options: LoadOptions) -> Refusal | None:
    """Whether torch may see the file with these options: a trusted load always may; otherwise an
    allowlist with a name that may never be allowed, a TorchScript archive, or a dangerous file
    (dangerous globals, or read differently by another reader) is refused. ``judged`` is ``None``
    when the static read could not judge it."""
    if not options.weights_only:
        return None  # trusted: the user accepted that the file's pickle runs
    quoted = f"“{escape_text(file_name)}”"
    refused = [(name, reason) for name in unique_names(options.allowed_globals)
               if (reason := allow_refusal(name)) is not None]  # fmt: skip
    if refused:
        names = tuple(name for name, _ in refused)
        return Refusal("refused-global", refusal_message(file_name, refused), names)
    if judged is not None and judged.torchscript_code:
        return Refusal(
            "torchscript",
            f"{quoted} {TORCHSCRIPT_CODE}; it is loaded with torch only when you trust the file.",
            details="torch.load refuses a TorchScript archive under weights_only=True and hands it to "
            "torch.jit.load otherwise, which runs the archive's code.",
        )
    if judged is not None and judged.dangerous:
        details = "; ".join(f"{escape_text(n)}: it {judge_qualname(n).reason}" for n in judged.dangerous)
        return Refusal("dangerous", danger_sentence(file_name, judged), judged.dangerous, details)
    if judged is not None and judged.differentials:
        details = "; ".join(escape_text(d) for d in judged.differentials)
        return Refusal("dangerous", differential_sentence(file_name, judged), (), details)
    if judged is not None and judged.unread and options.allowed_globals:
        # torch's own allowlist still guards such a file; what the user allows is checked only here
        return Refusal(
            "dangerous",
            f"{quoted} could not be read to its end, so what the allowed globals would build there is not "
            "checked; it is loaded with them only when you trust the file.",
            details="; ".join(escape_text(u) for u in judged.unread),
        )
    return None
