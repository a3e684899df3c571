"""What the scan of a file means for the window: its verdict, and which globals a user may allow.

Plain functions over core's static read (no Qt): the tab and its dialogs display what these say.
The engine checks the same rules again before it imports anything (``refused-global``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from inspector.core.globals_policy import classify
from inspector.core.model import CheckpointIndex, GlobalClass

#: Modules torch's weights-only unpickler refuses even when a user allowlists something in them.
NEVER_ALLOWED_MODULES = frozenset({"os", "posix", "nt", "sys"})

_SEVERITY = {GlobalClass.ALLOWED: 0, GlobalClass.UNKNOWN: 1, GlobalClass.DANGEROUS: 2}


class Verdict(enum.Enum):
    """The badge on a tab: the worst class among the globals the file references."""

    SAFE = "Safe"
    UNKNOWN = "Unknown globals"
    DANGEROUS = "Dangerous"


def verdict_of(index: CheckpointIndex) -> Verdict:
    if index.dangerous_globals:
        return Verdict.DANGEROUS
    if index.unsafe_globals:
        return Verdict.UNKNOWN
    return Verdict.SAFE


def unique_names(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def global_class(qualname: str, index: CheckpointIndex | None) -> GlobalClass:
    """The static read's verdict on ``module.name``; for a name it did not list, the worst verdict
    over every way the dotted name splits into module and name."""
    if index is not None:
        known = [g.verdict for g in index.globals if g.qualname == qualname]
        if known:
            return max(known, key=_SEVERITY.__getitem__)
    parts = qualname.split(".")
    verdicts = [classify(".".join(parts[:i]), ".".join(parts[i:])) for i in range(1, len(parts))]
    return max(verdicts, key=_SEVERITY.__getitem__, default=GlobalClass.UNKNOWN)


def what_would_run(index: CheckpointIndex, also: Iterable[str] = ()) -> list[tuple[str, GlobalClass]]:
    """Every global outside torch's weights-only set that a trusted load imports and may call,
    dangerous ones first, each once; ``also`` adds names the engine reported."""
    names = unique_names([*(g.qualname for g in index.unsafe_globals), *also])
    classed = [(name, global_class(name, index)) for name in names]
    classed = [(name, verdict) for name, verdict in classed if verdict is not GlobalClass.ALLOWED]
    return sorted(classed, key=lambda item: -_SEVERITY[item[1]])


def refused(names: Iterable[str], index: CheckpointIndex | None) -> list[str]:
    """The names no allowlist may hold: dangerous ones, and anything in a module torch blocks."""
    return [
        name
        for name in unique_names(names)
        if name.split(".", 1)[0] in NEVER_ALLOWED_MODULES
        or global_class(name, index) is GlobalClass.DANGEROUS
    ]
