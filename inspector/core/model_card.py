"""The model card: what model a checkpoint holds, read from its tensors' names, shapes and dtypes.

Family and sizes come from the rule sets of ``architecture_rules``; adapters, wrapper prefixes and
training parts from the key names; sizes at other dtypes from ``dtypes``. Every claim carries the
keys and shapes it rests on, and what the static read cannot tell (equal bytes, a head count the
shapes leave open) is said. Nothing is loaded and nothing runs. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .architecture_rules import ANCHORS, BLOCK_0, RULES, Detection, Dimension, Fact, ModelKeys, anchored
from .dtypes import DTYPES
from .formatting import count_of, format_bytes, format_params, format_shape
from .hf_config import ModelConfig, read_config
from .host_memory import DeviceMemory, available_memory
from .model import CheckpointIndex, Node, NodeKind, TensorInfo, key_and_dtype_rows, tensor_totals
from .optimizer_map import count_model, find_optimizers
from .training_parts import TrainingPart, training_parts

#: Prefixes a wrapper adds to every key, and what adds them.
WRAPPER_PREFIXES = (
    ("module.", "DataParallel/DistributedDataParallel"),
    ("_orig_mod.", "torch.compile"),
    ("base_model.model.", "PEFT"),
)
#: The prefixes the export's "Strip prefixes" removes to give the plain model's keys.
STRIPPABLE = frozenset({"module.", "_orig_mod."})

#: Dtypes the card sizes the weights at: (label, bytes per element as a fraction numerator/denominator).
SIZE_DTYPES = (
    ("bf16", DTYPES["bfloat16"].itemsize, 1), ("fp16", DTYPES["float16"].itemsize, 1),
    ("fp8", DTYPES["float8_e4m3fn"].itemsize, 1), ("int8", DTYPES["int8"].itemsize, 1),
    ("int4", 1, 2),  # two 4-bit values per byte, as packed int4 weights store them
)  # fmt: skip

UNRECOGNISED = "unrecognised"
WEIGHTS_ONLY_NOTE = "sizes and fits count only the weights (no activations, KV cache or framework overhead)"

_ADAPTER_ONLY = (
    "read from the shapes the adapter's modules adapt (lora_B rows × lora_A columns); "
    "the base weights are not in the file"
)
#: What only the base model's weights could show, said nothing about for an adapter alone.
_BASE_WEIGHT_TOPICS = frozenset({"positions", "tied_embeddings", "norm"})
_LORA_PAIRS = ((".lora_A.", ".lora_B."), (".lora_down.", ".lora_up."))
_LORA = "lora_"


@dataclass(frozen=True)
class Prefix:
    """A prefix every model key starts with, and the wrapper that adds it."""

    prefix: str
    wrapper: str
    keys: int

    @property
    def strippable(self) -> bool:
        return self.prefix in STRIPPABLE


@dataclass
class LoraInfo:
    """A LoRA adapter's modules: rank per target, the modules it adapts, and alpha where stored."""

    ranks: dict[str, list[int]] = field(default_factory=dict)  # target name (q_proj) → ranks seen
    modules: int = 0
    alpha: str = ""  # where alpha is stored, or its value from adapter_config.json
    evidence: list[str] = field(default_factory=list)
    adapter_only: bool = False  # no base weights in the file
    added: list[str] = field(default_factory=list)  # keys of the adapted modules, added for the rules


@dataclass(frozen=True)
class DeviceFit:
    """Whether the weights at the stored dtype fit a device's free memory (weights only)."""

    device: str
    free_bytes: int
    fits: bool
    total_bytes: int | None = None
    name: str = ""


def device_fits(stored_bytes: int, memory: Sequence[DeviceMemory]) -> list[DeviceFit]:
    """The fit line of each device: whether ``stored_bytes`` of weights fit its free memory."""
    return [DeviceFit(m.device, m.free, stored_bytes <= m.free, m.total, m.name) for m in memory]


@dataclass
class ModelCard:
    """Everything the card says about one checkpoint (see the module docstring)."""

    family: str = UNRECOGNISED
    label: str = "unrecognised: no rule set matched the key names"
    evidence: list[str] = field(default_factory=list)
    dimensions: list[Dimension] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    model_key: str | None = None  # the model part's key ("" for the whole file), None when not told
    prefixes: list[Prefix] = field(default_factory=list)
    lora: LoraInfo | None = None
    training: list[TrainingPart] = field(default_factory=list)
    params: int = 0
    params_by_part: dict[str, int] = field(default_factory=dict)  # embeddings, blocks, head, other
    stored_bytes: int = 0
    stored_dtypes: dict[str, int] = field(default_factory=dict)
    bytes_at: dict[str, int] = field(default_factory=dict)  # bf16, fp16, fp8, int8, int4
    fits: list[DeviceFit] = field(default_factory=list)
    config: ModelConfig | None = None
    contradictions: list[str] = field(default_factory=list)

    def split_params(self) -> dict[str, int]:
        """The parts that hold parameters, when the family tells more than one part; else empty."""
        held = {name: n for name, n in self.params_by_part.items() if n}
        return held if set(held) - {"other"} else {}

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The ``model_card`` object of ``info --json`` (its fields: README, "``info --json``")."""
        return {
            "family": self.family,
            "label": self.label,
            "evidence": self.evidence,
            "dimensions": {
                d.name: {"value": d.value, "evidence": list(d.evidence), "note": d.note}
                | ({"per_kv_head": d.per_kv_head} if d.per_kv_head is not None else {})
                for d in self.dimensions
            },
            "facts": [{"topic": f.topic, "text": f.text, "evidence": list(f.evidence)} for f in self.facts],
            "model_key": self.model_key,
            "prefixes": [{"prefix": p.prefix, "wrapper": p.wrapper, "keys": p.keys} for p in self.prefixes],
            "lora": None
            if self.lora is None
            else {
                "ranks": self.lora.ranks,
                "modules": self.lora.modules,
                "alpha": self.lora.alpha or None,
                "adapter_only": self.lora.adapter_only,
                "evidence": self.lora.evidence,
            },
            "training": [
                {"role": t.role, "key": t.key, "text": t.text, "evidence": list(t.evidence)}
                for t in self.training
            ],
            "params": self.params,
            "params_by_part": self.params_by_part,
            "stored_bytes": self.stored_bytes,
            "stored_dtypes": self.stored_dtypes,
            "bytes_at": self.bytes_at,
            "fits": [_fit_json(f) for f in self.fits],
            "memory_note": WEIGHTS_ONLY_NOTE,
            "config": None
            if self.config is None or not (self.config.paths or self.config.problems)
            else {"paths": self.config.paths, "values": self.config.shown, "problems": self.config.problems},
            "contradictions": self.contradictions,
        }


def _fit_json(fit: DeviceFit) -> dict[str, Any]:
    return {"device": fit.device, "name": fit.name or None, "free_bytes": fit.free_bytes,
            "total_bytes": fit.total_bytes, "fits": fit.fits}  # fmt: skip


# -- building the card ---------------------------------------------------------------------------


def _model_part(index: CheckpointIndex, optimizers: list[Node]) -> tuple[Node, Node | None, str, int]:
    """(the node whose tensors are the model's, the model part or None, its keys' prefix, its params):
    the part that ``count_model`` tells is the model, else the whole file."""
    found = count_model(index, optimizers)
    if found is None:
        return index.root, None, "", index.total_params
    part = found.part
    return part, part, (part.key + "." if part.key else ""), found.params


def _wrappers(keys: Collection[str], base: str) -> tuple[str, list[Prefix]]:
    """The wrapper prefixes every key carries (``module._orig_mod.`` …), added to ``base``. Every
    key starts with a prefix when the least and the greatest do (the keys between them do too)."""
    found: list[Prefix] = []
    first = next(iter(keys), "")
    if not any(first.startswith(base + prefix) for prefix, _ in WRAPPER_PREFIXES):
        return base, found  # the first key has none: no key has to be compared
    ends = (min(keys), max(keys))
    changed = True
    while changed:
        changed = False
        for prefix, wrapper in WRAPPER_PREFIXES:
            start = base + prefix
            if all(k.startswith(start) for k in ends):
                found.append(Prefix(prefix, wrapper, len(keys)))
                base, changed = start, True
    return base, found


@dataclass
class _Survey:
    """What the card's one pass over the model part's tensor rows notes."""

    by_key: dict[str, Node] = field(default_factory=dict)  # the last row of a key that several share
    dtypes: dict[str, int] = field(default_factory=dict)
    anchors: dict[str, str] = field(default_factory=dict)  # an ANCHORS name → the first key ending in it
    lora: list[str] = field(default_factory=list)
    lines: str | None = None  # the keys, each between newlines, where no key holds one


def _note_anchors(anchors: dict[str, str], key: str, names: Sequence[str] = ANCHORS) -> None:
    for name in names:
        if name not in anchors and anchored(key, name):
            anchors[name] = key


#: Lines holding ``.0.`` the anchor search reads one by one before it searches per anchor instead
#: (a line costs about a microsecond, a search of 10^5 keys about a millisecond per anchor).
_BLOCK_0_LINES = 4096


def _first_anchored(lines: str, name: str, start: int = 0) -> str | None:
    """The first line of ``lines`` (keys, each between newlines) from the line starting at
    ``start`` on that is anchored to ``name``."""
    needle = name + "\n"
    at = lines.find(needle, start)
    while at >= 0:
        if lines[at - 1] in ".\n":
            return lines[lines.rfind("\n", 0, at) + 1 : at + len(name)]
        at = lines.find(needle, at + 1)
    return None


def _find_anchors(lines: str) -> dict[str, str]:
    """The first line of ``lines`` (keys, each between newlines) anchored to each ``ANCHORS``
    name. The few that name a numbered block (``encoder_layer_0.``) are searched for by name. The
    others hold ``.0.``, so only lines holding ``.0.`` can end in one: those lines are read in one
    search of the text where they are few (a model's first blocks), else each anchor not found yet
    is searched for after the lines read."""
    listed = [n for n in ANCHORS if BLOCK_0 in n]
    endings = tuple(listed)
    found = {n: k for n in ANCHORS if BLOCK_0 not in n and (k := _first_anchored(lines, n)) is not None}
    read = 0
    at = lines.find(BLOCK_0)
    while at >= 0:
        read += 1
        start = lines.rfind("\n", 0, at) + 1
        if read > _BLOCK_0_LINES:
            rest = (n for n in listed if n not in found)
            return found | {n: k for n in rest if (k := _first_anchored(lines, n, start)) is not None}
        end = lines.find("\n", at)
        if (line := lines[start:end]).endswith(endings):
            _note_anchors(found, line, listed)
        at = lines.find(BLOCK_0, end)
    return found


def _survey(rows: Sequence[Node], by_key: dict[str, Node] | None, dtypes: dict[str, int] | None) -> _Survey:
    """One pass over the rows: rows by key (``by_key``: the index's, when the rows are all of the
    file's), anchors, LoRA keys, and the dtypes unless the read counted them already. No Python
    statement runs per row: the keys are searched joined into one text."""
    out = _Survey()
    if by_key is None or dtypes is None:
        by_key, dtypes, _ = key_and_dtype_rows(rows)
    out.by_key, out.dtypes = by_key, dtypes
    # no key names two rows: the map's keys are the rows' keys, joined without a pass over the rows
    keys: Collection[str] = by_key if len(by_key) == len(rows) else [node.key for node in rows]
    joined = "\n".join(keys)
    text = f"\n{joined}\n"  # each key between newlines, made with one copy of the joined keys
    if text.count("\n") == len(keys) + 1:  # no key holds a newline: each line of the text is a key
        out.anchors = _find_anchors(text)
        out.lines = text
    else:
        endings = tuple(ANCHORS)
        for key in [k for k in keys if k.endswith(endings)]:
            _note_anchors(out.anchors, key)
    out.lora = [k for k in keys if _LORA in k] if _LORA in text else []
    return out


def _part_rows(index: CheckpointIndex, holder: Node) -> Sequence[Node]:
    """The tensor rows below ``holder``: a run of the index's rows in display order (a subtree's
    rows are contiguous there), found from its first and last tensor."""
    rows = index.tensor_rows()
    if holder is index.root:
        return rows
    first, last = next(holder.tensors(), None), _last_tensor(holder)
    if first is None or last is None:
        return ()
    start = rows.index(first)
    return rows[start : rows.index(last, start) + 1]


def _last_tensor(holder: Node) -> Node | None:
    """The last tensor below ``holder`` in display order."""
    stack = list(holder.children)
    while stack:
        node = stack.pop()
        if node.kind is NodeKind.TENSOR:
            return node
        stack.extend(node.children)
    return None


def _lora(
    tensors: Callable[[str], TensorInfo | None], lora_keys: list[str], config: Mapping[str, object]
) -> tuple[LoraInfo | None, dict[str, TensorInfo]]:
    """LoRA pairs (PEFT's ``lora_A``/``lora_B``, kohya's ``lora_down``/``lora_up``); the modules they
    adapt are given back with the shape they adapt (lora_B rows × lora_A columns) when the file does
    not hold them, so the family can be read from an adapter alone."""
    added: dict[str, TensorInfo] = {}
    if not lora_keys:
        return None, added
    info = LoraInfo()
    for key in lora_keys:
        for down, up in _LORA_PAIRS:
            at = key.find(down)
            if at < 0:
                continue
            module, rest = key[:at], key[at + len(down) :]
            a = tensors(key)
            b = tensors(module + up + rest)
            if a is None or not a.shape:
                continue
            rank = a.shape[0]
            target = module.rsplit(".", 1)[-1]
            ranks = info.ranks.setdefault(target, [])
            if rank not in ranks:
                ranks.append(rank)
                info.evidence.append(f"{key} {format_shape(a.shape)}")
            info.modules += 1
            if (
                b is not None
                and len(b.shape) >= 2
                and len(a.shape) >= 2
                and tensors(module + ".weight") is None
            ):
                added[module + ".weight"] = replace(a, shape=(b.shape[0], a.shape[1]), storage_key="")
            if not info.alpha and tensors(module + ".alpha") is not None:
                info.alpha = f"stored in {module}.alpha (a tensor: its value needs reading the data)"
    if not info.modules:
        return None, added
    alpha = config.get("lora_alpha")
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and not info.alpha:
        info.alpha = f"{alpha} (adapter_config.json lora_alpha)"
    info.adapter_only = bool(added) and len(added) == info.modules
    info.added = list(added)
    return info, added


def _apply(rule: Callable[[ModelKeys], Detection | None], keys: ModelKeys) -> Detection | None:
    """A rule's finding; a rule whose named tensors have other ranks than its family gives them
    (a 1-D ``q_proj.weight``) does not match, so a malformed file gets a card, never a traceback."""
    try:
        return rule(keys)
    except (IndexError, ValueError, TypeError, ZeroDivisionError):
        return None


def _numel(info: TensorInfo) -> int:
    return info.numel


def _stack(holder: Node, prefix: str) -> Node | None:
    """The container or group row whose keys all start with ``prefix`` (``model.layers.``), found
    from ``holder`` down by key; None when the tree does not hold them under one row."""
    node: Node | None = holder
    while node is not None and node.key + "." != prefix:
        node = next(
            (c for c in node.children if c.kind is not NodeKind.TENSOR and prefix.startswith(c.key + ".")),
            None,
        )
    return node


def _parts(
    holder: Node, by_key: Mapping[str, Node], held: Callable[[str], TensorInfo | None], params: int,
    found: Detection | None,
) -> dict[str, int]:  # fmt: skip
    """Elements by part: embeddings, output head, the repeated blocks (their rows' sums in the
    tree), and the rest. ``held`` gives the file's tensors only, not the modules the card added for
    an adapter. Where the tree does not hold a stack under one row, its keys are counted instead."""
    if found is None or not found.block_prefixes:
        return {"other": params}
    embeddings = [t for k in found.embedding_keys if (t := held(k)) is not None]
    views = {(t.storage_key, t.storage_offset) for t in embeddings if t.storage_key}
    heads = [  # a head tied to the embedding is counted once, with the embedding
        t
        for k in found.head_keys
        if (t := held(k)) is not None
        and (not t.storage_key or (t.storage_key, t.storage_offset) not in views)
    ]
    emb, head = sum(map(_numel, embeddings)), sum(map(_numel, heads))
    stacks = [_stack(holder, p) for p in found.block_prefixes]
    if all(s is not None for s in stacks):
        blocks = sum(s.params for s in stacks if s is not None)
        return {
            "embeddings": emb,
            "blocks": blocks,
            "head": head,
            "other": max(params - emb - head - blocks, 0),
        }
    skip = set(found.embedding_keys) | set(found.head_keys)
    other = 0
    for key in [k for k in by_key if not k.startswith(found.block_prefixes) and k not in skip]:
        info = by_key[key].tensor
        assert info is not None
        other += info.numel
    return {"embeddings": emb, "blocks": max(params - emb - head - other, 0), "head": head, "other": other}


def _contradictions(card: ModelCard, config: Mapping[str, object], keys: ModelKeys) -> list[str]:
    """Sentences where config.json and the shapes disagree on a size."""
    out: list[str] = []
    for d in card.dimensions:
        found = keys.config_int(*d.config_keys) if d.value is not None else None
        if found is not None and found[1] != d.value and f"config.json {found[0]}" not in d.note:
            out.append(
                f"config says {found[0]} {found[1]:,}; the shapes give {d.name} {d.value:,} "
                f"({d.evidence[0]})."
            )
    heads, kv = keys.config_int("num_attention_heads"), keys.config_int("num_key_value_heads")
    kv_dim = card.dimension("kv_heads")
    ratio = kv_dim.per_kv_head if kv_dim is not None and kv_dim.value is None else None
    if heads is not None and ratio is not None:
        stated = heads[1] // kv[1] if kv is not None and kv[1] else 1
        if stated != ratio:
            shown = f"{heads[1]} heads" + (
                f" with {kv[1]} KV heads" if kv is not None else " and no num_key_value_heads"
            )
            out.append(
                f"config says {shown}; the q/k projection shapes imply {ratio} query heads per KV head."
            )
    rank = keys.config_int("r")
    if rank is not None and card.lora is not None and any(r != [rank[1]] for r in card.lora.ranks.values()):
        ranks = ", ".join(f"{t} {'/'.join(map(str, r))}" for t, r in card.lora.ranks.items())
        out.append(f"adapter_config.json says r {rank[1]}; the lora_A shapes give ranks {ranks}.")
    tie = config.get("tie_word_embeddings")
    tied = next((f for f in card.facts if f.topic == "tied_embeddings"), None)
    if tie is False and tied is not None and tied.text.startswith("tied:"):
        out.append("config says tie_word_embeddings false; the head and the embedding are one storage.")
    if tie is False and tied is not None and tied.text.startswith("no output head"):
        out.append("config says tie_word_embeddings false; the file stores no output head.")
    return out


def build_model_card(
    index: CheckpointIndex, config: ModelConfig | None = None, memory: Sequence[DeviceMemory] = ()
) -> ModelCard:
    """The card of a static read (see the module docstring). ``config`` is what ``hf_config.read_config``
    found beside the file; ``memory`` the devices' free memory, for the fit lines."""
    settings: Mapping[str, object] = config.values if config is not None else {}
    optimizers = [] if index.format.flat else find_optimizers(index)  # a flat map holds only tensors
    holder, part, base, params = _model_part(index, optimizers)
    card = ModelCard(model_key=part.key if part is not None else None, params=params, config=config)
    rows = _part_rows(index, holder)
    if holder is index.root:  # the rows are all of the file's: the index's own map and counts serve
        survey = _survey(rows, index.tensors_by_key(), dict(index.dtype_counts()))
    else:
        survey = _survey(rows, None, None)
    card.stored_dtypes = survey.dtypes
    by_key = survey.by_key

    def held(key: str) -> TensorInfo | None:
        node = by_key.get(key)
        return node.tensor if node is not None else None

    base, card.prefixes = _wrappers(by_key.keys(), base)
    card.lora, added = _lora(held, survey.lora, settings)
    for key in added:
        _note_anchors(survey.anchors, key)

    keys = ModelKeys(by_key, base, settings, survey.anchors, added, survey.lines)
    found = next((d for rule in RULES if (d := _apply(rule, keys)) is not None), None)
    if found is not None:
        card.family, card.label, card.evidence = found.family, found.label, found.evidence
        card.dimensions, card.facts = found.dimensions, found.facts
        if card.lora is not None and card.lora.adapter_only:
            card.label = f"LoRA adapter of a {card.label}"
            card.facts = [f for f in card.facts if f.topic not in _BASE_WEIGHT_TOPICS]  # not in the file
            card.facts.append(Fact("adapter", _ADAPTER_ONLY))
    card.training = training_parts(index, part, optimizers)
    card.params_by_part = _parts(holder, by_key, held, params, found)
    whole = part is None or (part is index.root and len(rows) == index.tensor_count)
    card.stored_bytes = index.total_bytes if whole else tensor_totals(rows).nbytes
    card.bytes_at = {label: params * num // den for label, num, den in SIZE_DTYPES}
    card.fits = device_fits(card.stored_bytes, memory)
    card.contradictions = _contradictions(card, settings, keys)
    return card


def host_and(accelerators: Sequence[DeviceMemory]) -> list[DeviceMemory]:
    """The memory this computer has available now (as cpu), then the accelerators' as the engine
    reported them."""
    free = available_memory()
    cpu = [DeviceMemory("cpu", free)] if free is not None else []
    return cpu + [m for m in accelerators if m.device != "cpu"]


def read_model_card(index: CheckpointIndex, accelerators: Sequence[DeviceMemory] = ()) -> ModelCard:
    """The card ``info`` and the window show: with the config files beside the checkpoint, the
    memory this computer has available now and the accelerators' (``torch.cuda.mem_get_info``)."""
    return build_model_card(index, read_config(index.path), host_and(accelerators))


# -- the card as text ------------------------------------------------------------------------------


def _dimension_text(d: Dimension) -> str:
    value = f"{d.value:,}" if d.value is not None else "not determined"
    return f"{d.name.replace('_', ' ')}: {value}" + (f" ({d.note})" if d.note else "")


def _because(evidence: tuple[str, ...] | list[str]) -> str:
    return f"  ← {'; '.join(evidence[:2])}" if evidence else ""


def card_lines(card: ModelCard) -> list[str]:
    """The card as ``info`` prints it: one claim a line, ``←`` the keys and shapes it rests on (raw
    strings: the caller escapes them)."""
    lines = [f"model card: {card.label}"]
    lines += [f"  ← {e}" for e in card.evidence]
    lines += [f"  · {_dimension_text(d)}{_because(d.evidence)}" for d in card.dimensions]
    lines += [f"  · {f.topic.replace('_', ' ')}: {f.text}{_because(f.evidence)}" for f in card.facts]
    for p in card.prefixes:
        strip = "; export with “strip prefixes” to remove it" if p.strippable else ""
        lines.append(f"  · prefix: every key starts with {p.prefix} ({p.wrapper}{strip})")
    if card.lora is not None:
        ranks = ", ".join(f"{t} r={'/'.join(map(str, r))}" for t, r in card.lora.ranks.items())
        alpha = card.lora.alpha or "not stored"
        lines.append(f"  · LoRA: {count_of(card.lora.modules, 'module')}, {ranks}; alpha: {alpha}"
                     f"{_because(card.lora.evidence)}")  # fmt: skip
    lines += [f"  · {t.role}: {t.key}: {t.text}{_because(t.evidence)}" for t in card.training]
    parts = ", ".join(f"{name} {format_params(n)}" for name, n in card.split_params().items())
    lines.append(f"  · params: {format_params(card.params)}" + (f" ({parts})" if parts else ""))
    at = ", ".join(f"{label} {format_bytes(n)}" for label, n in card.bytes_at.items())
    lines.append(
        f"  · weights: {format_bytes(card.stored_bytes)} as stored ({', '.join(card.stored_dtypes)}); at {at}"
    )
    for fit in card.fits:
        verdict = "fit" if fit.fits else "do not fit"
        device = f"{fit.device} ({fit.name})" if fit.name else fit.device
        of = f" of {format_bytes(fit.total_bytes)}" if fit.total_bytes is not None else ""
        lines.append(f"  · {device}: the weights {verdict} in {format_bytes(fit.free_bytes)} free{of}")
    lines.append(f"  · note: {WEIGHTS_ONLY_NOTE}")
    if card.config is not None:
        for path in card.config.paths:
            shown = ", ".join(f"{k}={v}" for k, v in card.config.shown.items())
            lines.append(f"  · config: {path}" + (f": {shown}" if shown else ""))
        lines += [f"  · config: {p}" for p in card.config.problems]
    lines += [f"  · contradiction: {c}" for c in card.contradictions]
    return lines
