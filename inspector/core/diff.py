"""Which tensors of two checkpoints correspond: by key, after stripping a prefix, or as renames.

Keys are the JSON keys of the static read (``model.layers.0.weight``). Keys equal on both sides
are paired first. The rest are paired the way a user means when one side carries a prefix the
other lacks: a wrapper on every key (``module.`` from DataParallel/DDP, ``_orig_mod.`` from
``torch.compile``), or a prefix on some keys only (``model.`` stripped from the model part of a
training checkpoint, a strip applied to one subtree). The prefix is reported so the user can apply
the rename. The diff's status names and labels live here too. Standard library only: the values
are compared in the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import CheckpointIndex, TensorInfo

#: Wrapper prefixes tried first, in this order (dotted prefixes of the unpaired keys are tried too).
KNOWN_PREFIXES = ("module.", "_orig_mod.", "model.", "module._orig_mod.", "_orig_mod.module.")
#: Dotted prefixes of the unpaired keys tried per side (the most common ones), besides the known.
MAX_PREFIX_CANDIDATES = 8
MAX_PREFIX_DEPTH = 4

#: What a row of a diff says about its tensor, in the order summaries list them.
STATUSES = ("equal", "changed", "dtype", "shape", "renamed", "only_a", "only_b", "unreadable")
STATUS_LABELS = {
    "equal": "equal",
    "changed": "changed",
    "dtype": "dtype changed",
    "shape": "shape changed",
    "renamed": "renamed?",
    "only_a": "only in A",
    "only_b": "only in B",
    "unreadable": "unreadable",
}


@dataclass(frozen=True)
class TensorSpec:
    """What the key matching needs of one tensor: its key, shape and dtype."""

    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class KeyMatch:
    """The correspondence between the tensor keys of A and B."""

    prefix_a: str = ""  # stripped from A's keys that carry it before pairing ("" for none)
    prefix_b: str = ""
    common: list[tuple[str, str]] = field(default_factory=list)  # (key in A, key in B)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    stripped_a: int = 0  # keys of A paired only after stripping prefix_a
    stripped_b: int = 0
    keys_a: int = 0  # tensor keys of A in all
    keys_b: int = 0

    @property
    def prefix_note(self) -> str | None:
        """A sentence about the prefix, or ``None`` when keys matched as they are."""
        if not self.prefix_a and not self.prefix_b:
            return None
        parts = [self._side("A", self.prefix_a, self.stripped_a, self.keys_a),
                 self._side("B", self.prefix_b, self.stripped_b, self.keys_b)]  # fmt: skip
        return "; ".join(p for p in parts if p) + "; they were compared after stripping it"

    @property
    def prefix_difference(self) -> str | None:
        """The prefix as a reason the checkpoints differ ("28 keys of A carry “model.”, B's do not")."""
        a = f"{self.stripped_a:,} keys of A carry “{self.prefix_a}”" if self.prefix_a else ""
        b = f"{self.stripped_b:,} keys of B carry “{self.prefix_b}”" if self.prefix_b else ""
        if a and b:
            return f"{a} where {b}"
        if a or b:
            return f"{a or b}, the other side's do not"
        return None

    @staticmethod
    def _side(side: str, prefix: str, stripped: int, total: int) -> str:
        if not prefix:
            return ""
        if stripped == total:
            return f"every key of {side} starts with “{prefix}”"
        return f"{stripped:,} of the {total:,} keys of {side} start with “{prefix}”, which the other lacks"


def tensor_specs(index: CheckpointIndex) -> dict[str, TensorSpec]:
    """The tensors of a static read by key (the first one wins when two share a key)."""
    specs: dict[str, TensorSpec] = {}
    for node in index.root.tensors():
        info: TensorInfo | None = node.tensor
        if info is not None and node.key not in specs:
            specs[node.key] = TensorSpec(node.key, info.shape, info.dtype)
    return specs


def _prefix_candidates(keys: Iterable[str]) -> list[str]:
    """Prefixes worth trying on ``keys``: the known wrappers some carry, and their most common
    dotted prefixes (``a.``, ``a.b.``, up to ``MAX_PREFIX_DEPTH`` parts)."""
    counts: Counter[str] = Counter()
    known: list[str] = []
    for key in keys:
        parts = key.split(".")[:-1]
        for depth in range(1, min(len(parts), MAX_PREFIX_DEPTH) + 1):
            counts[".".join(parts[:depth]) + "."] += 1
    for p in KNOWN_PREFIXES:
        if counts.get(p):
            known.append(p)
    common = [p for p, _ in counts.most_common(MAX_PREFIX_CANDIDATES)]
    return list(dict.fromkeys([*known, *common]))


def _strip(keys: list[str], prefix: str) -> dict[str, str]:
    """key as paired → original key: ``prefix`` removed from the keys that carry it, the others as
    they are; a key that stripping would make collide with another keeps its prefix unpaired."""
    n = len(prefix)
    out: dict[str, str] = {}
    for k in keys:
        if prefix and k.startswith(prefix):
            out.setdefault(k[n:], k)
        else:
            out.setdefault(k, k)
    return out


def match_keys(a: Mapping[str, TensorSpec], b: Mapping[str, TensorSpec]) -> KeyMatch:
    """Pair A's keys with B's: equal keys first, then the rest after stripping at most one prefix
    per side from the keys that carry it, choosing the prefixes that pair the most.

    Only tensors of one shape are paired through a prefix. A prefix is chosen by the keys it pairs
    that keep a container after it (``model.norm.bias`` → ``norm.bias``, not ``norm.bias`` →
    ``bias``), and only when it pairs at least half of the smaller set of keys left unpaired: keys
    that merely share a name after a strip are not paired by chance (a rename is found by values).
    """
    keys_a, keys_b = list(a), list(b)
    match = KeyMatch(keys_a=len(keys_a), keys_b=len(keys_b))
    in_b = set(keys_b)
    exact = [k for k in keys_a if k in in_b]
    paired_a = set(exact)
    rest_a = [k for k in keys_a if k not in paired_a]
    rest_b = [k for k in keys_b if k not in paired_a]
    best: tuple[str, str] = ("", "")
    best_pairs: list[tuple[str, str]] = []
    if rest_a and rest_b:
        maps_a = {p: _strip(rest_a, p) for p in ["", *_prefix_candidates(rest_a)]}
        maps_b = {p: _strip(rest_b, p) for p in ["", *_prefix_candidates(rest_b)]}
        best_count = 0
        for pa, map_a in maps_a.items():
            for pb, map_b in maps_b.items():
                if (pa, pb) == ("", "") or (pa and pa == pb):
                    continue
                count = sum(1 for k in map_a.keys() & map_b.keys()
                            if "." in k and a[map_a[k]].shape == b[map_b[k]].shape)  # fmt: skip
                if count > best_count:
                    best, best_count = (pa, pb), count
        if best_count * 2 >= min(len(rest_a), len(rest_b)) and best_count:
            map_a, map_b = maps_a[best[0]], maps_b[best[1]]
            best_pairs = [(map_a[k], map_b[k]) for k in map_a
                          if k in map_b and a[map_a[k]].shape == b[map_b[k]].shape]  # fmt: skip
        else:
            best = ("", "")
    pairs = dict.fromkeys(exact)
    paired_b = {kb for _, kb in best_pairs}
    by_a = dict(best_pairs)
    for key_a in keys_a:
        if key_a in pairs:
            match.common.append((key_a, key_a))
        elif key_a in by_a:
            match.common.append((key_a, by_a[key_a]))
    match.prefix_a, match.prefix_b = best
    match.stripped_a = sum(1 for ka, _ in best_pairs if best[0] and ka.startswith(best[0]))
    match.stripped_b = sum(1 for _, kb in best_pairs if best[1] and kb.startswith(best[1]))
    if best[0] and not match.stripped_a:
        match.prefix_a = ""
    if best[1] and not match.stripped_b:
        match.prefix_b = ""
    match.only_a = [k for k in keys_a if k not in pairs and k not in by_a]
    match.only_b = [k for k in keys_b if k not in paired_a and k not in paired_b]
    return match


def rename_candidates(
    match: KeyMatch, a: Mapping[str, TensorSpec], b: Mapping[str, TensorSpec]
) -> list[tuple[list[str], list[str]]]:
    """Groups of (keys only in A, keys only in B) with the same shape and dtype and ≥ 1 element.

    The engine confirms a rename by comparing values within each group.
    """
    groups: dict[tuple[tuple[int, ...], str], tuple[list[str], list[str]]] = {}
    for key in match.only_a:
        spec = a[key]
        groups.setdefault((spec.shape, spec.dtype), ([], []))[0].append(key)
    for key in match.only_b:
        spec = b[key]
        group = groups.get((spec.shape, spec.dtype))
        if group is not None:
            group[1].append(key)
    return [g for (shape, _), g in groups.items() if g[0] and g[1] and all(s > 0 for s in shape)]
