"""Property-based fuzzing of the allow path ("Allow exactly these", ``--allow-global``).

Names are built from real attribute paths of modules the loader has imported (``os``,
``posixpath``, ``torch.serialization``, ``numpy``, ``builtins`` …), then bent the way the advisories
bend them (dunders, NUL bytes, Python 2 module names, empty parts, aliases through another module).
Whatever the name, what the resolver accepts is a data constructor (a class that is not a
metaclass, or numpy's array and scalar builders) outside every dangerous family, under its own name;
and the only modules imported on the way are ones the policy lets the loader import: submodules of
installed packages already imported and standard-library data modules, none in a dangerous family.
``FUZZ_EXAMPLES`` sets the number of examples (as for the reader's fuzzing).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import sys
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inspector.core.globals_policy import judge, judge_qualname
from inspector.core.model import GlobalClass
from inspector.core.safety import NUMPY_DATA_FUNCTIONS, import_refusal, real_name
from inspector.engine import global_resolver
from inspector.engine.global_resolver import resolve
from inspector.engine.loader import LoadError, resolve_allowed_globals

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a first import of an allowed submodule may take a while; nothing here can hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 500,
)

#: Modules a loader has imported by the time it resolves names (torch, numpy and what they use),
#: the stdlib data modules, and the modules gadget lists reach through.
ROOTS = (
    "os", "posixpath", "sys", "builtins", "collections", "pathlib", "typing", "argparse", "enum",
    "dataclasses", "functools", "operator", "io", "codecs", "shutil", "subprocess", "importlib",
    "pickle", "copyreg", "numpy", "numpy._core.multiarray", "torch", "torch.serialization",
    "torch.nn", "torch._utils", "datetime", "decimal", "fractions", "types", "numpy.dtypes",
)  # fmt: skip
for _root in ROOTS:
    importlib.import_module(_root)

#: Attribute names that lead from any object to any other (the universal-resolver trick).
DUNDERS = (
    "__class__", "__globals__", "__builtins__", "__dict__", "__init__", "__call__", "__self__",
    "__module__", "__loader__", "__spec__", "__base__", "__subclasses__", "__reduce_ex__", "__func__",
)  # fmt: skip
PYTHON_2 = {"builtins": "__builtin__", "copyreg": "copy_reg", "collections": "UserDict", "io": "StringIO"}


def _attributes(obj: object) -> tuple[list[str], list[str]]:
    """The attribute names of ``obj`` as its own namespace holds them (nothing is called), and
    those that lead on to a class or a module; for a package also the names of its submodules not
    imported yet (found without importing them)."""
    try:
        space = dict(vars(obj))
    except TypeError:
        space = {}
    names = set(space) | ({n for n in dir(type(obj))} if not isinstance(obj, ModuleType) else set())
    onward = {n for n, v in space.items() if isinstance(v, type | ModuleType)}
    if isinstance(obj, ModuleType) and isinstance(getattr(obj, "__path__", None), list):
        subs = {m.name for m in pkgutil.iter_modules(obj.__path__)}
        names |= subs
        onward |= subs
    plain = sorted(n for n in names if isinstance(n, str) and not n.startswith("__"))  # dunders: a bend
    return plain, sorted(n for n in onward if isinstance(n, str) and not n.startswith("__"))


@st.composite
def _names(draw: st.DrawFn) -> str:
    """A dotted name along real attributes, then perhaps bent."""
    root = draw(st.sampled_from(ROOTS))
    parts = [root]
    current: object = sys.modules[root]
    # The same draws whatever the attributes (imports made by earlier examples add some).
    for _ in range(draw(st.integers(1, 4))):
        names, onward = _attributes(current)
        towards_classes, pick = draw(st.booleans()), draw(st.integers(0, 1 << 20))
        names = onward if onward and towards_classes else names
        if names:
            parts.append(names[pick % len(names)])
            current = inspect.getattr_static(current, parts[-1], None)
    bend = draw(st.sampled_from(["none"] * 6 + ["dunder", "nul", "python2", "empty", "space", "prefix"]))
    at = draw(st.integers(1, len(parts)))
    if bend == "dunder":
        parts.insert(at, draw(st.sampled_from(DUNDERS)))
    elif bend == "nul":
        i = at - 1
        parts[i] = parts[i] + "\x00" + draw(st.sampled_from(["", "x", "system"]))
    elif bend == "python2":
        parts = [PYTHON_2.get(p, p) for p in parts]
    elif bend == "empty":
        parts.insert(at, "")
    elif bend == "space":
        parts[at - 1] = parts[at - 1] + " "
    elif bend == "prefix":  # the same path reached through another module that imports it
        parts = [draw(st.sampled_from(["posixpath", "torch.serialization", "collections", "typing"])), *parts]
    return ".".join(parts)


def _is_data_constructor(obj: Any) -> bool:
    """A class (not a metaclass, not ``type``), or one of numpy's array and scalar builders."""
    if isinstance(obj, type):
        return not issubclass(obj, type)
    return real_name(obj) in NUMPY_DATA_FUNCTIONS


def _origin(module: str) -> str | None:
    spec = getattr(sys.modules.get(module), "__spec__", None)
    origin = getattr(spec, "origin", None)
    if origin is None and spec is not None and spec.submodule_search_locations:
        origin = next(iter(spec.submodule_search_locations), None)
    return origin if isinstance(origin, str) else None


def _check_imports(name: str, imported_before: set[str]) -> None:
    """What resolving ``name`` imported: the modules it names (its dotted prefixes) only where the
    policy lets the loader import them (installed, or a standard-library data module, outside every
    dangerous family, no tests or scripts), and whatever those import in turn only from the
    installed packages and the standard library: nothing beside a checkpoint or in the working folder."""
    sites, stdlib = global_resolver._install_dirs()
    installed = [os.path.realpath(d) + os.sep for d in (*sites, *stdlib) if d]
    parts = name.split(".")
    named = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    for module in set(sys.modules) - imported_before:
        origin = _origin(module)
        if module in named:
            assert judge(module, "_").verdict is not GlobalClass.DANGEROUS, f"{name!r} imported {module}"
            assert import_refusal(module, origin, sites, stdlib) is None, f"{name!r} imported {module}"
        where = os.path.realpath(origin) if origin not in (None, "built-in", "frozen") else None
        assert where is None or where.startswith(tuple(installed)), (
            f"{name!r} imported {module} from {origin}"
        )


def _check_accepted(name: str, obj: Any) -> None:
    assert not isinstance(obj, ModuleType), f"{name!r} gave a module"
    assert _is_data_constructor(obj), f"{name!r} gave {obj!r}, which is not a data constructor"
    real = real_name(obj)
    assert real is not None, f"{name!r} gave {obj!r}, which has no name of its own"
    assert judge_qualname(real).verdict is not GlobalClass.DANGEROUS, f"{name!r} gave {real}"
    parts = name.split(".")
    assert "\x00" not in name and all(p.isidentifier() for p in parts), f"{name!r} is not a clean name"
    assert not any(p.startswith("__") and p.endswith("__") for p in parts[1:]), (
        f"{name!r} went through a dunder"
    )


@FUZZ
@given(name=_names())
@example(name="builtins.None")  # a value that is None is not a class
@example(name="numpy.conftest.pytest")  # a package's test suite, whose import changes settings
@example(name="posixpath.os.system")
@example(name="os\x00.system")
@example(name="__builtin__.long")
@example(name="numpy.core.multiarray._reconstruct")
@example(name="collections.OrderedDict.__class__")
@example(name="torch.nn.Linear")
def test_whatever_the_allow_path_accepts_builds_data_and_imports_only_what_it_may(name: str) -> None:
    before = set(sys.modules)
    found = resolve(name)
    _check_imports(name, before)
    if found.ok:
        _check_accepted(name, found.obj)
    else:
        assert (found.refusal is None) != (found.missing is None), found
    before = set(sys.modules)
    try:
        pairs = resolve_allowed_globals("fuzzed.pth", (name,))
    except LoadError as exc:
        assert exc.kind in ("refused-global", "missing-global"), exc.message
        assert "\n" not in exc.message and exc.message.endswith((".", "?).")), exc.message
        pairs = []
    _check_imports(name, before)
    for obj, as_named in pairs:
        _check_accepted(name, obj)
        assert isinstance(as_named, str) and "\x00" not in as_named
