"""Objects for the globals a real checkpoint names, with stand-ins where their package is absent.

A Lightning checkpoint names ``omegaconf`` and ``pyannote`` classes; the test environment does not
install those packages. A stand-in class with the same module and name is what such a user's
installed class is to ``torch.load(weights_only=True)``: a callable that the allowlist admits by
name and that takes the pickled arguments and state. The real object is used wherever it imports.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class StandIn:
    """Accepts whatever the pickle passes (REDUCE arguments, NEWOBJ, BUILD state) and keeps it."""

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


_CLASSES: dict[str, type[StandIn]] = {}


def _split(qualname: str) -> tuple[str, str]:
    module, _, name = qualname.rpartition(".")
    return module, name


def is_absent(qualname: str) -> bool:
    """True when the top-level package of ``qualname`` is not installed here (stand-ins or not)."""
    return _package_absent(qualname.split(".", 1)[0])


@functools.cache
def _package_absent(top: str) -> bool:
    return importlib.util.find_spec(top) is None


def stand_in(qualname: str) -> type[StandIn]:
    """The one stand-in class for ``qualname`` in this process (same object on every call)."""
    if qualname not in _CLASSES:
        module, name = _split(qualname)
        _CLASSES[qualname] = type(name, (StandIn,), {"__module__": module, "__qualname__": name})
    return _CLASSES[qualname]


def real_object(qualname: str) -> Any:
    """The installed object ``module.name`` (longest importable module first); ``LookupError`` if none."""
    parts = qualname.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core.* still resolves under numpy 2, with a warning
        for cut in range(len(parts) - 1, 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                continue
            return obj
    raise LookupError(f"{qualname} is installed but names no object")


def allowlist(names: Iterable[str]) -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """``(object, name as in the file)`` pairs for ``torch.serialization.safe_globals``."""
    return [(stand_in(n) if is_absent(n) else real_object(n), n) for n in dict.fromkeys(names)]


@contextlib.contextmanager
def installed(names: Iterable[str]) -> Iterator[None]:
    """Make the absent packages among ``names`` importable (stand-in modules) for the block."""
    added: dict[str, types.ModuleType] = {}
    for qualname in dict.fromkeys(names):
        if not is_absent(qualname):
            continue
        module_name, name = _split(qualname)
        if getattr(sys.modules.get(module_name), name, None) is stand_in(qualname):
            continue
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):
            dotted = ".".join(parts[:i])
            if dotted not in sys.modules:
                added[dotted] = sys.modules[dotted] = types.ModuleType(dotted)
                if i > 1:
                    setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[dotted])
        setattr(sys.modules[module_name], name, stand_in(qualname))
    try:
        yield
    finally:
        for dotted in added:
            sys.modules.pop(dotted, None)
