"""Which tensors of two checkpoints correspond: by key, after stripping a wrapper prefix, or as renames.

Keys are the JSON keys of the static read (``model.layers.0.weight``). When one side's keys carry
a wrapper prefix the other lacks (``module.`` from DataParallel/DDP, ``_orig_mod.`` from
``torch.compile``, ``model.`` from Lightning), every such key is matched after stripping it, and
the prefix is reported so the user can apply the rename. Standard library only: the values are
compared in the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import CheckpointIndex, TensorInfo

#: Wrapper prefixes tried first, in this order (any dotted prefix shared by all keys is tried too).
KNOWN_PREFIXES = ("module.", "_orig_mod.", "model.", "module._orig_mod.", "_orig_mod.module.")


@dataclass(frozen=True)
class TensorSpec:
    """What the key matching needs of one tensor: its key, shape and dtype."""

    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class KeyMatch:
    """The correspondence between the tensor keys of A and B."""

    prefix_a: str = ""  # stripped from A's keys before matching ("" for none)
    prefix_b: str = ""
    common: list[tuple[str, str]] = field(default_factory=list)  # (key in A, key in B)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    @property
    def prefix_note(self) -> str | None:
        """A sentence about the prefix, or ``None`` when keys matched as they are."""
        if self.prefix_a and self.prefix_b:
            return f"keys of A start with “{self.prefix_a}” where B's start with “{self.prefix_b}”"
        if self.prefix_a:
            return f"every key of A starts with “{self.prefix_a}”; compared after stripping it"
        if self.prefix_b:
            return f"every key of B starts with “{self.prefix_b}”; compared after stripping it"
        return None


def tensor_specs(index: CheckpointIndex) -> dict[str, TensorSpec]:
    """The tensors of a static read by key (the first one wins when two share a key)."""
    specs: dict[str, TensorSpec] = {}
    for node in index.root.tensors():
        info: TensorInfo | None = node.tensor
        if info is not None and node.key not in specs:
            specs[node.key] = TensorSpec(node.key, info.shape, info.dtype)
    return specs


def _dotted_prefixes(keys: Iterable[str]) -> list[str]:
    """Every dotted prefix (``a.``, ``a.b.``) that all ``keys`` share, shortest first."""
    it = iter(keys)
    first = next(it, None)
    if first is None:
        return []
    common = first.split(".")[:-1]
    for key in it:
        parts = key.split(".")[:-1]
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
        if not common:
            return []
    return [".".join(common[: i + 1]) + "." for i in range(len(common))]


def _candidates(keys: list[str]) -> list[str]:
    found = [p for p in KNOWN_PREFIXES if keys and all(k.startswith(p) for k in keys)]
    return ["", *dict.fromkeys([*found, *_dotted_prefixes(keys)])]


def _strip(keys: list[str], prefix: str) -> dict[str, str]:
    """stripped key → original key, for the keys that carry ``prefix``."""
    n = len(prefix)
    return {k[n:]: k for k in keys if k.startswith(prefix)} if prefix else {k: k for k in keys}


def match_keys(a: Mapping[str, TensorSpec], b: Mapping[str, TensorSpec]) -> KeyMatch:
    """Match A's keys with B's, stripping the one prefix per side that matches the most keys.

    A prefix is only used when it matches more keys than the keys as they are, and at least
    half of the smaller side (so ``model.`` in a training checkpoint is not stripped by chance).
    """
    keys_a, keys_b = list(a), list(b)
    best = ("", "")
    plain = len(set(keys_a) & set(keys_b))
    best_count = plain
    if plain < min(len(keys_a), len(keys_b)):
        for pa in _candidates(keys_a):
            stripped_a = _strip(keys_a, pa)
            for pb in _candidates(keys_b):
                if pa and pb and pa == pb:
                    continue  # the same prefix on both sides changes nothing
                count = len(stripped_a.keys() & _strip(keys_b, pb).keys())
                if count > best_count:
                    best, best_count = (pa, pb), count
        if best_count * 2 < min(len(keys_a), len(keys_b)):
            best, best_count = ("", ""), plain
    pa, pb = best
    map_a, map_b = _strip(keys_a, pa), _strip(keys_b, pb)
    match = KeyMatch(prefix_a=pa, prefix_b=pb)
    matched_a: set[str] = set()
    matched_b: set[str] = set()
    for stripped, key_a in map_a.items():
        key_b = map_b.get(stripped)
        if key_b is not None:
            match.common.append((key_a, key_b))
            matched_a.add(key_a)
            matched_b.add(key_b)
    match.only_a = [k for k in keys_a if k not in matched_a]
    match.only_b = [k for k in keys_b if k not in matched_b]
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
