"""An allowed name turned into the real object torch is given, without importing what the file chose.

Importing a module runs its code, so a name from a file never decides by itself what is imported:
the name is checked first (``safety.allow_refusal``); a module already imported in the loader (by
torch, numpy or the loader itself) is used as it is; a module not imported yet is imported only when
``safety.import_refusal`` allows it (an installed package, or a standard-library data module, and
never one in a dangerous family or beside the checkpoint). Attributes are read from a module's own
``__dict__`` and with ``inspect.getattr_static`` (no module ``__getattr__`` or descriptor runs),
and once the path leaves the module it names nothing more is imported. The object found is then
judged by ``safety.resolved_refusal``: its real name, its identity, and whether it only builds data.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import site
import sys
import sysconfig
from dataclasses import dataclass
from types import ModuleType

from inspector.core.safety import allow_refusal, import_refusal, real_name, renamed, resolved_refusal

_MISSING = object()


@dataclass(frozen=True)
class Resolution:
    """What one allowed name is in the loader: the object, or why it is refused or missing."""

    name: str
    obj: object = None
    refusal: str | None = None
    missing: str | None = None  # why it could not be found (not installed, no such attribute …)

    @property
    def ok(self) -> bool:
        return self.refusal is None and self.missing is None


def _install_dirs() -> tuple[list[str], list[str]]:
    """The loader's site-packages folders, and its standard library's."""
    paths = sysconfig.get_paths()
    sites = [*site.getsitepackages(), site.getusersitepackages(), paths["purelib"], paths["platlib"]]
    return sites, [paths["stdlib"], paths["platstdlib"]]


def _module(name: str, may_import: bool) -> tuple[ModuleType | None, str | None, str | None]:
    """(module, refusal, missing) for a module name, imported only when the policy allows it."""
    module = sys.modules.get(name)
    if isinstance(module, ModuleType):
        return module, None, None
    if not may_import:
        return None, None, f"{name} is not imported in the loader"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None, None, f"no module {name} is installed in the loader's Python"
    origin = spec.origin
    if origin is None and spec.submodule_search_locations:
        origin = next(iter(spec.submodule_search_locations), None)
    sites, stdlib = _install_dirs()
    refusal = import_refusal(name, origin, sites, stdlib)
    if refusal is not None:
        return None, refusal, None
    try:
        return importlib.import_module(name), None, None
    except Exception as exc:  # the package is broken or needs something missing
        return None, None, f"importing {name} failed ({type(exc).__name__})"


def _walk(name: str, may_import: bool) -> Resolution:
    parts = name.split(".")
    top, refusal, missing = _module(parts[0], may_import)
    if top is None:
        return Resolution(name, refusal=refusal, missing=missing)
    current: object = top
    path = parts[0]
    for part in parts[1:]:
        found: object = _MISSING
        if isinstance(current, ModuleType):
            found = vars(current).get(part, _MISSING)
            inside = current.__name__ == path
            if found is _MISSING and inside and hasattr(current, "__path__"):
                sub, refusal, missing = _module(f"{path}.{part}", may_import)
                if sub is None:
                    return Resolution(name, refusal=refusal, missing=missing)
                found = sub
        else:
            found = inspect.getattr_static(current, part, _MISSING)
        if found is _MISSING:
            return Resolution(name, missing=f"{path} has no attribute {part}")
        if isinstance(found, ModuleType) and found.__name__ != f"{path}.{part}":
            may_import = False  # the path left the module it names: nothing more is imported
        current, path = found, f"{path}.{part}"
    return Resolution(name, obj=current)


def describe(name: str) -> str | None:
    """The real ``module.qualname`` of what ``name`` reaches through modules already imported here
    (nothing is imported), for sentences about a refused name; ``None`` when it reaches nothing."""
    found = _walk(name, may_import=False)
    return real_name(found.obj) if found.obj is not None else None


def resolve(name: str) -> Resolution:
    """The object an allowed ``name`` stands for here, judged by the safety policy."""
    refusal = allow_refusal(name)
    if refusal is not None:
        return Resolution(name, refusal=refusal)
    found = Resolution(name, missing=f"no module of {name} is installed in the loader's Python")
    for candidate in [*renamed(name), name]:  # numpy 2 holds numpy 1's names under numpy._core
        found = _walk(candidate, may_import=True)
        if found.missing is None:  # found (its value may be None) or refused
            break
    if found.refusal is not None or found.missing is not None:
        return Resolution(name, refusal=found.refusal, missing=found.missing)
    refusal = resolved_refusal(name, found.obj)
    if refusal is not None:
        return Resolution(name, obj=found.obj, refusal=refusal)
    return Resolution(name, obj=found.obj)
