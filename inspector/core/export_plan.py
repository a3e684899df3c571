"""What an export should produce, as plain data, and the key mapping it implies.

``ExportPlan`` travels from the dialog or the command line to the engine as JSON. ``map_keys``
turns the static tree of the source into the list of tensors that will be written, with their
output keys, dtypes and devices; the dialog's before → after preview, ``--dry-run`` and the
engine's writer all call it, so what is shown is what is written.
"""

from __future__ import annotations

import ast
import enum
import fnmatch
import functools
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from .dtypes import DTYPES, ITEMSIZE, LEGACY_DTYPES, SAFETENSORS_CODE
from .errors import CheckpointError
from .formats import Format
from .formatting import count_of, escape_text
from .load_options import MapLocation, format_map_location, is_device_name, map_location_from_json
from .model import CheckpointIndex, Node, NodeKind, PathPart, join_key
from .optimizer_map import is_module

FORMATS = ("pth", "pth-legacy", "safetensors", "hf-sharded")
#: Why a value is left out of an HF shard set.
SHARD_SET_VALUES = "a shard set holds tensors only"
#: A shard set's default most bytes per shard (what transformers writes by default).
DEFAULT_MAX_SHARD_SIZE = 5 * 1000**3


def parse_size(text: str) -> int:
    """``2GB``, ``500MB``, ``1.5GiB`` or a plain number of bytes; ``ExportPlanError`` otherwise."""
    units = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
             "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}  # fmt: skip
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if m is None or m.group(2).upper() not in units or float(m.group(1)) <= 0:
        raise ExportPlanError(f"“{text}” is not a size like 2GB or 500MB.")
    return int(float(m.group(1)) * units[m.group(2).upper()])


TARGET_DTYPES = ("float16", "bfloat16", "float32")

#: Floating dtypes a conversion touches; float8 / float4 are quantized encodings and stay as they are.
CONVERTIBLE_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16"})

#: dtype name → the safetensors code the writer records. The writer stores torch's shapes, so a
#: packed dtype (float4_e2m1fn_x2, whose header counts 4-bit values) is not offered.
SAFETENSORS_CODES: dict[str, str] = {n: c for n, c in SAFETENSORS_CODE.items() if DTYPES[n].packed == 1}


class SourceRead(enum.Enum):
    """How an export reads its source."""

    #: Tensor bytes straight from the file through the engine's tensor sources: no pickle is run
    #: by Python, so nothing needs allowing or trusting.
    DIRECT = "direct"
    #: ``torch.load`` with the allowed globals (or trusted): only the loaded object keeps what a
    #: torch file holds beside raw tensors (shared storages, Parameters, non-tensor values).
    TORCH_LOAD = "torch.load"


#: Targets that hold tensors and string metadata only.
TENSOR_TARGETS = frozenset({"safetensors", "hf-sharded"})


def source_read(source_format: Format, target_format: str) -> SourceRead | None:
    """How an export to ``target_format`` reads a ``source_format`` source; ``None`` when it cannot.

    safetensors targets read every exportable layout directly; torch-format targets load the files
    ``torch.load`` opens (their pickle describes more than tensors) with torch and read the others
    (safetensors, shard sets, DCP) directly; an archive that holds code (TorchScript) is exported
    as its weights only, so only to safetensors.
    """
    if not source_format.exportable:
        return None
    if target_format in TENSOR_TARGETS:
        return SourceRead.DIRECT
    if source_format.holds_code:
        return None
    return SourceRead.TORCH_LOAD if source_format.torch_load else SourceRead.DIRECT


#: What a user refused a torch-format copy of an untrusted file can do instead.
UNTRUSTED_COPY = (
    "A safetensors copy needs no trust: its tensors are read straight from the file, whose pickle is not run."
)


def source_notes(source_format: Format, target_format: str) -> list[str]:
    """What the user should know about how the source is read, for the plan and the report."""
    notes: list[str] = []
    if source_read(source_format, target_format) is SourceRead.DIRECT and source_format.torch_load:
        notes.append("The tensors are read straight from the file; its pickle is not run.")
    if source_format.holds_code:
        notes.append("Only the weights are written: the archive's TorchScript code is not exported.")
    return notes


def _unexportable(source_format: Format, target_format: str) -> str:
    if source_format.exportable and source_format.holds_code:
        return (
            f"A TorchScript archive is exported as its weights only, to safetensors or hf-sharded "
            f"(its code is not exported); {target_format} cannot hold it."
        )
    return (
        "Export reads torch.save, TorchScript and safetensors files, HF shard sets and DCP folders; "
        f"this file is {source_format}, so it cannot be exported."
    )


#: A safetensors header entry plus the pickle / zip bookkeeping per tensor, for the size estimate.
_PER_TENSOR_OVERHEAD = 160
_FIXED_OVERHEAD = 4096


class ExportPlanError(CheckpointError):
    """The plan cannot be carried out as written (a sentence for the user)."""


@dataclass(frozen=True)
class KeyRule:
    """One step of renaming: strip a literal prefix, or a regex substitution (Python ``re.sub``)."""

    kind: str  # "strip-prefix" | "rename"
    pattern: str
    replacement: str = ""

    def apply(self, key: str) -> str:
        if self.kind == "strip-prefix":
            return key[len(self.pattern) :] if self.pattern and key.startswith(self.pattern) else key
        return self._regex().sub(self.replacement, key)

    def check(self) -> None:
        """Raise ``ExportPlanError`` when the rule cannot run (bad regex or replacement)."""
        if self.kind == "strip-prefix":
            return
        if self.kind != "rename":
            raise ExportPlanError(f"“{self.kind}” is not a kind of key rule (strip-prefix or rename).")
        regex = self._regex()
        try:
            regex.sub(self.replacement, "")  # parses the replacement, group references included
        except (re.error, IndexError) as exc:
            raise ExportPlanError(
                f"The replacement “{self.replacement}” does not fit “{self.pattern}”: {exc}."
            ) from None

    def _regex(self) -> re.Pattern[str]:
        try:
            return re.compile(self.pattern)
        except re.error as exc:
            raise ExportPlanError(f"“{self.pattern}” is not a valid regular expression: {exc}.") from None

    @classmethod
    def parse_rename(cls, text: str) -> KeyRule:
        """``'^module\\.=>'`` → a rename rule; raises ``ExportPlanError`` without ``=>``."""
        pattern, sep, replacement = text.partition("=>")
        if not sep or not pattern:
            raise ExportPlanError(f"“{text}” is not a rename rule like 'REGEX=>REPLACEMENT'.")
        rule = cls("rename", pattern, replacement)
        rule.check()
        return rule

    def describe(self) -> str:
        if self.kind == "strip-prefix":
            return f"strip prefix “{self.pattern}”"
        return f"rename “{self.pattern}” → “{self.replacement}”"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "pattern": self.pattern, "replacement": self.replacement}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRule:
        return cls(str(data["kind"]), str(data["pattern"]), str(data.get("replacement", "")))


def default_temp_path(target: str) -> str:
    """A hidden, unique file beside ``target``: the same file system, so the final rename is atomic."""
    folder, name = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.export-part")


#: Endings that name a single checkpoint file; an HF shard set is written into a folder instead.
FILE_SUFFIXES = frozenset({".pth", ".pt", ".safetensors", ".bin", ".ckpt", ".tar", ".json"})
#: The ending a target of each format is given ("": an HF shard set is a folder).
TARGET_SUFFIXES = {"pth": ".pth", "pth-legacy": ".pth", "safetensors": ".safetensors", "hf-sharded": ""}


def format_for_path(path: str) -> str:
    """The format a target name suggests: safetensors for ``*.safetensors``, else torch zip."""
    return "safetensors" if path.lower().endswith(".safetensors") else "pth"


@dataclass
class ExportPlan:
    """Everything an export needs, as plain data (JSON for the engine process)."""

    source: str
    target: str
    format: str = "pth"
    #: None: every tensor keeps its saved device; a str: one device for all; a dict: saved → target.
    device: MapLocation = None
    dtype: str | None = None  # float16 / bfloat16 / float32 for floating tensors, None to keep
    convert_only: tuple[str, ...] = ()  # globs limiting the dtype conversion (empty: all floating)
    subtree: str | None = None  # key of a container written in place of the whole file
    include: tuple[str, ...] = ()  # globs on keys relative to the subtree (empty: everything)
    exclude: tuple[str, ...] = ()
    strip_prefixes: tuple[str, ...] = ()
    renames: tuple[KeyRule, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)  # safetensors ``__metadata__`` (user's)
    force: bool = False  # replace an existing target
    allowed_globals: tuple[str, ...] = ()  # for torch.load(weights_only=True) of the source
    trusted: bool = False  # torch.load the source with weights_only=False (its pickle may run code)
    temp_path: str = ""  # where the engine writes before renaming; the caller removes it after a kill
    only_keys: tuple[str, ...] = ()  # exact keys relative to the subtree (empty: all); one shard's share
    max_shard_size: int = 0  # hf-sharded: the most bytes of tensor data one shard holds (0: 5 GB)
    provenance: bool = True  # record where the export came from (``core/provenance.py``)

    def __post_init__(self) -> None:
        if not self.temp_path:
            self.temp_path = default_temp_path(self.target)

    def rules(self) -> list[KeyRule]:
        """The key rules in the order they apply: prefixes stripped first, then the renames."""
        return [KeyRule("strip-prefix", p) for p in self.strip_prefixes if p] + list(self.renames)

    def target_device(self, saved_device: str) -> str:
        loc = self.device
        if loc is None:
            return saved_device
        if isinstance(loc, str):
            return loc
        return loc.get(saved_device, saved_device)

    def requested_devices(self) -> list[str]:
        """Devices the user asked for explicitly (they must exist where the export runs)."""
        if self.device is None:
            return []
        if isinstance(self.device, str):
            return [self.device]
        return list(dict.fromkeys(self.device.values()))

    def effective_metadata(self) -> dict[str, str]:
        """The safetensors metadata the user's entries produce (``format: pt`` unless overridden)."""
        return {"format": "pt", **self.metadata}

    def problems(self) -> list[str]:
        """Sentences about the plan itself (not about a file): empty when it can run."""
        out: list[str] = []
        if self.format not in FORMATS:
            out.append(
                f"“{self.format}” is not an export format (pth, pth-legacy, safetensors or hf-sharded)."
            )
        if self.dtype is not None and self.dtype not in TARGET_DTYPES:
            out.append(f"“{self.dtype}” is not a dtype to convert to (float16, bfloat16 or float32).")
        for device in self.requested_devices():
            if not is_device_name(device):
                out.append(f"“{device}” is not a device name (cpu, cuda:N, mps).")
            elif device == "meta":
                out.append("The meta device holds no data, so nothing can be exported onto it.")
        if self.format in ("safetensors", "hf-sharded") and self.device is not None:
            out.append(
                "safetensors files record no device, so a target device cannot be chosen for them "
                f"(asked: {format_map_location(self.device)})."
            )
        if self.format not in ("safetensors", "hf-sharded") and self.metadata:
            out.append("Metadata can only be written into safetensors files.")
        stem, suffix = os.path.splitext(os.path.basename(os.path.normpath(self.target)))
        if self.format == "hf-sharded" and suffix.lower() in FILE_SUFFIXES:
            out.append(
                f"An HF shard set is written into a folder, and “{stem}{suffix}” names a file; "
                f"give a folder such as “{stem}”."
            )
        for rule in self.rules():
            try:
                rule.check()
            except ExportPlanError as exc:
                out.append(exc.message)
        if os.path.abspath(self.target) == os.path.abspath(self.source):
            out.append("The target is the source file itself; choose another name.")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "format": self.format,
            "device": self.device,
            "dtype": self.dtype,
            "convert_only": list(self.convert_only),
            "subtree": self.subtree,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "strip_prefixes": list(self.strip_prefixes),
            "renames": [r.to_json() for r in self.renames],
            "metadata": dict(self.metadata),
            "force": self.force,
            "allowed_globals": list(self.allowed_globals),
            "trusted": self.trusted,
            "temp_path": self.temp_path,
            "only_keys": list(self.only_keys),
            "max_shard_size": self.max_shard_size,
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportPlan:
        device = map_location_from_json(data.get("device"))
        return cls(
            source=str(data["source"]),
            target=str(data["target"]),
            format=str(data.get("format", "pth")),
            device=device,
            dtype=str(data["dtype"]) if data.get("dtype") else None,
            convert_only=tuple(str(g) for g in data.get("convert_only") or ()),
            subtree=str(data["subtree"]) if data.get("subtree") else None,
            include=tuple(str(g) for g in data.get("include") or ()),
            exclude=tuple(str(g) for g in data.get("exclude") or ()),
            strip_prefixes=tuple(str(p) for p in data.get("strip_prefixes") or ()),
            renames=tuple(KeyRule.from_json(r) for r in data.get("renames") or ()),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            force=bool(data.get("force", False)),
            allowed_globals=tuple(str(g) for g in data.get("allowed_globals") or ()),
            trusted=bool(data.get("trusted", False)),
            temp_path=str(data.get("temp_path") or ""),
            only_keys=tuple(str(k) for k in data.get("only_keys") or ()),
            max_shard_size=int(data.get("max_shard_size") or 0),
            provenance=bool(data.get("provenance", True)),
        )


@dataclass(frozen=True)
class MappedTensor:
    """One tensor of the source that will be written, and how."""

    source_key: str  # the static tree's key (full, as ``info`` prints it)
    source_path: tuple[PathPart, ...]  # its container path in the source
    output_key: str  # its key in the written file (as ``info`` will print it)
    output_path: tuple[PathPart, ...]  # its container path in the written object
    shape: tuple[int, ...]
    dtype: str
    output_dtype: str
    saved_device: str
    output_device: str
    storage_key: str  # the source storage it views (shared storages share it)
    nbytes: int  # of the output view
    alias_of: str | None = None  # safetensors: stored once under this output key (exact alias)
    cloned_from: str | None = None  # safetensors: a view of another exported tensor, written apart

    @property
    def converted(self) -> bool:
        return self.output_dtype != self.dtype


@dataclass(frozen=True)
class ValueFate:
    """What happens to one non-tensor value (or tensor-free container) of the source."""

    source_key: str
    source_path: tuple[PathPart, ...]
    fate: str  # "kept" (torch formats), "metadata" (JSON in safetensors metadata), "dropped"
    reason: str = ""
    kind: str = "value"  # node kind: value, dict, list, object, ref
    text: str = ""  # "metadata": the JSON text written


@dataclass
class KeyMapping:
    """The outcome of ``map_keys``: what will be written, what not, and what blocks writing."""

    tensors: list[MappedTensor] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # source keys of tensors left out by filters
    values: list[ValueFate] = field(default_factory=list)
    collisions: dict[str, list[str]] = field(default_factory=dict)  # output key → source keys
    problems: list[str] = field(default_factory=list)  # sentences; any one blocks writing
    notes: list[str] = field(default_factory=list)  # how the source is read (``source_notes``)
    estimated_bytes: int = 0
    subtree_path: tuple[PathPart, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def by_source_path(self) -> dict[tuple[PathPart, ...], MappedTensor]:
        return {t.source_path: t for t in self.tensors}

    def value_fates(self) -> dict[tuple[PathPart, ...], ValueFate]:
        return {v.source_path: v for v in self.values}

    def aliases(self) -> dict[str, str]:
        return {t.output_key: t.alias_of for t in self.tensors if t.alias_of is not None}

    def cloned(self) -> dict[str, str]:
        return {t.output_key: t.cloned_from for t in self.tensors if t.cloned_from is not None}

    def metadata_keys(self) -> list[str]:
        return [
            join_key(v.source_path[len(self.subtree_path) :]) for v in self.values if v.fate == "metadata"
        ]


@functools.lru_cache(maxsize=4)
def _key_set(keys: tuple[str, ...]) -> frozenset[str]:
    return frozenset(keys)


def _matches(key: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(key, g) for g in globs)


def _passes(key: str, plan: ExportPlan) -> bool:
    if plan.only_keys and key not in _key_set(plan.only_keys):
        return False
    if plan.include and not _matches(key, plan.include):
        return False
    return not (plan.exclude and _matches(key, plan.exclude))


def find_subtree(index: CheckpointIndex, key: str) -> Node:
    """The container node whose key is ``key``; ``ExportPlanError`` with a sentence otherwise."""
    for node in index.root.walk():
        if node.key != key:
            continue
        if node.kind in (NodeKind.DICT, NodeKind.LIST):
            return node
        if node.kind is NodeKind.GROUP:
            raise ExportPlanError(
                f"“{key}” is a group of dotted keys, not a container of the file; keep it with "
                f"--include '{key}.*' instead (and --strip-prefix '{key}.' to drop the prefix)."
            )
        raise ExportPlanError(f"“{key}” is a {node.kind.value}, not a container of tensors.")
    raise ExportPlanError(f"The file has no container with the key “{key}”.")


def _container_of(node: Node) -> Node | None:
    """The real container (dict / list / object) holding ``node``, skipping dotted-key groups."""
    up = node.parent
    while up is not None and up.kind is NodeKind.GROUP:
        up = up.parent
    return up


def _relative_key(key: str, base: str) -> str | None:
    """A tensor's key below the exported subtree (the name the tree shows: a module's tensors by
    their state_dict names); None when it does not lie below it."""
    if not base:
        return key
    return key[len(base) + 1 :] if key.startswith(base + ".") else None


def _has_tensor(node: Node) -> bool:
    return any(n.kind is NodeKind.TENSOR for n in node.walk())


def map_keys(index: CheckpointIndex, plan: ExportPlan) -> KeyMapping:
    """Map every tensor of ``index`` to what the plan writes; collisions and problems are listed.

    Pure: reads the static tree only. Key rules apply to each tensor's key relative to the
    subtree; in torch formats the written object keeps its containers, so a rule may change only
    the part of a key inside its own dict. Include/exclude globs match the same relative keys.
    An HF shard set is mapped as safetensors (its shards are safetensors files).
    """
    out = KeyMapping(problems=list(plan.problems()))
    target_format = plan.format
    if plan.format == "hf-sharded":
        plan = replace(plan, format="safetensors", temp_path=plan.temp_path)
    if source_read(index.format, target_format) is None:
        out.problems.append(_unexportable(index.format, target_format))
        return out
    out.notes = source_notes(index.format, target_format)
    root = index.root
    if plan.subtree:
        try:
            root = find_subtree(index, plan.subtree)
        except ExportPlanError as exc:
            out.problems.append(exc.message)
            return out
    base = root.path if root is not index.root else ()
    out.subtree_path = base
    rules = []
    for rule in plan.rules():
        try:
            rule.check()
            rules.append(rule)
        except ExportPlanError:
            pass  # already reported by plan.problems()
    torch_format = plan.format != "safetensors"

    tensors = list(root.tensors())  # a bare tensor file: one "(tensor)" child with path ()
    occupied: dict[tuple[PathPart, ...], str] = {}
    mapped: list[MappedTensor] = []
    leaving: list[tuple[str, str, str]] = []  # (key, what a rule makes it, the container it would leave)
    if torch_format and is_module(root):  # nested modules are refused with the other objects below
        out.problems.append(
            f"“{escape_text(root.key) or 'the file'}” is a {escape_text(root.value or 'module')} holding "
            "tensors; export to pth can only rewrite tensors inside dicts and lists (export to "
            "safetensors, or pick a subtree)."
        )
    for node in tensors:
        info = node.tensor
        assert info is not None
        rel_path = node.path[len(base) :]
        rel_key = _relative_key(node.key, root.key if root is not index.root else "") or join_key(rel_path)
        if not _passes(rel_key, plan):
            out.excluded.append(node.key)
            continue
        if node.children:  # a sparse, nested or per-channel quantized tensor, made of other tensors
            out.problems.append(
                f"“{escape_text(node.key)}” is a {info.layout} tensor made of several tensors; export "
                "writes plain and per-tensor quantized tensors only (exclude it)."
            )
            continue
        new_key = rel_key
        for rule in rules:
            new_key = rule.apply(new_key)
        output_path: tuple[PathPart, ...]
        if not torch_format:
            output_path = (new_key,)
        elif not rel_path:
            output_path = ()
            if new_key:
                out.problems.append("The file holds one bare tensor; it has no key to rename.")
        else:
            prefix = join_key(rel_path[:-1])
            leaf = rel_path[-1]
            if new_key == rel_key:
                output_path = rel_path
            elif prefix and not new_key.startswith(prefix + "."):
                leaving.append((rel_key, new_key, prefix))
                output_path = rel_path
            else:
                container = _container_of(node)
                new_leaf = new_key[len(prefix) + 1 :] if prefix else new_key
                if container is not None and container.kind is not NodeKind.DICT:
                    out.problems.append(
                        f"{_shown_key(rel_key)} is an item of a list, so it cannot be renamed to "
                        f"{_shown_key(new_key)}."
                    )
                    output_path = rel_path
                else:
                    output_path = (*rel_path[:-1], new_leaf if new_leaf != str(leaf) else leaf)
        output_key = join_key(output_path) if torch_format else new_key
        dtype = info.dtype
        convert = (
            plan.dtype is not None
            and dtype in CONVERTIBLE_DTYPES
            and node.name.rsplit(".", 1)[-1] != "step"
            and (not plan.convert_only or _matches(rel_key, plan.convert_only))
        )
        output_dtype = plan.dtype if convert and plan.dtype else dtype
        output_device = plan.target_device(info.saved_device) if torch_format else "cpu"
        mapped.append(
            MappedTensor(
                source_key=node.key,
                source_path=node.path,
                output_key=output_key,
                output_path=output_path,
                shape=info.shape,
                dtype=dtype,
                output_dtype=output_dtype,
                saved_device=info.saved_device,
                output_device=output_device,
                storage_key=info.storage_key or node.key,
                nbytes=info.numel * ITEMSIZE.get(output_dtype, info.itemsize),
            )
        )

    _check_formats(mapped, plan, out)
    if torch_format:
        _check_storage_conversions(mapped, out)
    else:
        mapped = _dedupe_for_safetensors(mapped, index)
    groups: dict[tuple[PathPart, ...], list[str]] = {}
    for t in mapped:
        if t.alias_of is None:
            groups.setdefault(t.output_path, []).append(t.source_key)
        occupied[t.output_path] = t.source_key
    out.tensors = mapped

    _value_fates(root, base, plan, out)
    if target_format == "hf-sharded":  # its shards hold tensors only, and its index no values
        out.values = [
            v if v.fate == "dropped" else replace(v, fate="dropped", reason=SHARD_SET_VALUES, text="")
            for v in out.values
        ]
    if torch_format:
        for fate in out.values:
            if fate.fate == "kept" and fate.source_path[len(base) :] in groups:
                groups[fate.source_path[len(base) :]].append(fate.source_key)
    else:
        meta_keys = set(plan.effective_metadata()) | {t.output_key for t in mapped if t.alias_of}
        for key in out.metadata_keys():
            if key in meta_keys:
                out.problems.append(
                    f"The value {_shown_key(key)} would be stored in the metadata under a key that is "
                    "already used."
                )
            meta_keys.add(key)
    if leaving:
        out.problems.append(leaving_message(leaving))
    for path, sources in groups.items():
        if len(sources) > 1:
            key = join_key(path) if torch_format else str(path[0])
            out.collisions[key] = sources
    if out.collisions:
        out.problems.append(collision_message(out.collisions))
    if not mapped and not out.problems:
        out.problems.append("No tensor is left to export; loosen the include/exclude patterns.")
    out.estimated_bytes = estimate_bytes(mapped, index, plan)
    return out


_SHOWN_COLLISIONS = 3
_SHOWN_SOURCES = 3
_SHOWN_KEY_CHARS = 80


def _shown_key(key: str) -> str:
    key = escape_text(key)
    return f"“{key if len(key) <= _SHOWN_KEY_CHARS else key[: _SHOWN_KEY_CHARS - 1] + '…'}”"


def leaving_message(leaving: list[tuple[str, str, str]]) -> str:
    """Keys that rules would move out of their container (``(key, new key, container)``), the first
    named and the rest counted, in one sentence."""
    key, new_key, prefix = leaving[0]
    more = f", and so would {count_of(len(leaving) - 1, 'more key')}" if len(leaving) > 1 else ""
    return (
        f"{_shown_key(key)} would become {_shown_key(new_key)}, which moves it out of "
        f"{_shown_key(prefix)}{more}; in torch formats a rule can "
        "only rename keys inside their own container (export the container with --subtree, or write "
        "safetensors)."
    )


def collision_message(collisions: dict[str, list[str]]) -> str:
    """Output keys that several source keys would become, a few of each listed, as short sentences:
    "Keys would become one: “x” from 28 keys (“a”, “b”, “c” and 25 more). Change the rules." """
    parts = []
    for key, sources in list(collisions.items())[:_SHOWN_COLLISIONS]:
        shown = ", ".join(_shown_key(s) for s in sources[:_SHOWN_SOURCES])
        rest = len(sources) - _SHOWN_SOURCES
        parts.append(f"{_shown_key(key)} from {count_of(len(sources), 'key')} ({shown}"
                     + (f" and {rest:,} more)" if rest > 0 else ")"))  # fmt: skip
    more = len(collisions) - _SHOWN_COLLISIONS
    tail = f"; {count_of(more, 'more output key')} likewise" if more > 0 else ""
    return f"Keys would become one: {'; '.join(parts)}{tail}. Change the rules."


def _check_formats(mapped: list[MappedTensor], plan: ExportPlan, out: KeyMapping) -> None:
    if plan.format == "pth-legacy":
        bad = sorted({t.output_dtype for t in mapped if t.output_dtype not in LEGACY_DTYPES})
        if bad:
            out.problems.append(
                f"torch's legacy format cannot store {', '.join(bad)} tensors (torch.load fails on "
                "such files); choose pth or safetensors."
            )
    elif plan.format == "safetensors":
        bad = sorted({t.output_dtype for t in mapped if t.output_dtype not in SAFETENSORS_CODES})
        if bad:
            out.problems.append(f"safetensors has no code for {', '.join(bad)} tensors; choose pth.")


def _check_storage_conversions(mapped: list[MappedTensor], out: KeyMapping) -> None:
    """Views of one storage stay one storage, so they must all be converted or none."""
    by_storage: dict[str, list[MappedTensor]] = {}
    for t in mapped:
        by_storage.setdefault(t.storage_key, []).append(t)
    for views in by_storage.values():
        if len({t.output_dtype for t in views}) > 1:
            names = ", ".join(t.source_key for t in views[:4])
            out.problems.append(
                f"{names} share one storage, so they must all be converted or none; "
                "adjust the conversion patterns."
            )


def _dedupe_for_safetensors(mapped: list[MappedTensor], index: CheckpointIndex) -> list[MappedTensor]:
    """Exact aliases are stored once (recorded in metadata); other views of a storage are cloned."""
    infos = {n.path: n.tensor for n in index.root.tensors()}
    first_view: dict[tuple[Any, ...], str] = {}
    first_of_storage: dict[str, str] = {}
    result: list[MappedTensor] = []
    for t in mapped:
        info = infos.get(t.source_path)
        view = (t.storage_key, info.storage_offset if info else 0, t.shape,
                info.stride if info else (), t.output_dtype)  # fmt: skip
        alias = first_view.get(view)
        if alias is not None:
            result.append(_replace(t, alias_of=alias))
            continue
        first_view[view] = t.output_key
        owner = first_of_storage.setdefault(t.storage_key, t.output_key)
        result.append(_replace(t, cloned_from=owner) if owner != t.output_key else t)
    return result


def _replace(t: MappedTensor, **changes: Any) -> MappedTensor:
    return replace(t, **changes)


def _value_fates(root: Node, base: tuple[PathPart, ...], plan: ExportPlan, out: KeyMapping) -> None:
    torch_format = plan.format != "safetensors"
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        if node.kind in (NodeKind.TENSOR,):
            continue
        if node.kind is NodeKind.GROUP:
            stack.extend(reversed(node.children))
            continue
        rel_key = join_key(node.path[len(base) :])
        if node.kind is NodeKind.VALUE or node.kind is NodeKind.REF:
            kind = node.kind.value
            if not _passes(rel_key, plan):
                out.values.append(ValueFate(node.key, node.path, "dropped", "left out by the filters", kind))
            elif torch_format:
                out.values.append(ValueFate(node.key, node.path, "kept", "", kind))
            elif node.kind is NodeKind.REF:
                out.values.append(
                    ValueFate(node.key, node.path, "dropped", f"a second reference to {node.value}", kind)
                )
            else:
                out.values.append(_metadata_fate(node))
            continue
        has_tensor = _has_tensor(node)
        if node.kind is NodeKind.OBJECT:
            if has_tensor and torch_format:
                out.problems.append(
                    f"“{node.key}” is a {node.value or 'Python object'} holding tensors; export to pth "
                    "can only rewrite tensors inside dicts and lists (export to safetensors, exclude it "
                    "or pick a subtree)."
                )
            elif has_tensor:  # safetensors: its tensors are written under their keys, nothing else
                out.values.append(
                    ValueFate(node.key, node.path, "dropped",
                              f"a {node.value or 'Python object'}: only its tensors are written", "object")
                )  # fmt: skip
            elif not _passes(rel_key, plan):
                out.values.append(
                    ValueFate(node.key, node.path, "dropped", "left out by the filters", "object")
                )
            elif torch_format:
                out.values.append(ValueFate(node.key, node.path, "kept", "", "object"))
            else:
                out.values.append(
                    ValueFate(node.key, node.path, "dropped",
                              f"a {node.value or 'Python object'} is not plain data", "object")
                )  # fmt: skip
            continue
        if not torch_format and not has_tensor:
            kind = node.kind.value
            if _passes(rel_key, plan):
                out.values.append(_metadata_fate(node))
            else:
                out.values.append(ValueFate(node.key, node.path, "dropped", "left out by the filters", kind))
            continue
        stack.extend(reversed(node.children))


class _NotPlain(Exception):
    """A value the static tree does not show as plain data in full."""


#: Most nodes of one value turned into metadata JSON (a config is a few hundred).
_MAX_METADATA_NODES = 100_000


def plain_value(node: Node) -> Any:
    """The plain data a value or tensor-free container of the static tree stands for (JSON-able:
    None, bool, numbers, str, lists and dicts of them), read from the rows as the static read
    shows them; raises ``_NotPlain`` for anything else (objects, bytes, a text shown only in part)."""
    budget = [_MAX_METADATA_NODES]

    def value(n: Node) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _NotPlain("too large")
        if n.kind is NodeKind.VALUE:
            try:
                parsed = ast.literal_eval(n.value or "")
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise _NotPlain("not plain data") from None
            return _jsonable(parsed)
        if n.kind in (NodeKind.DICT, NodeKind.LIST):
            entries = list(_entries(n))
            if len(entries) != n.entries:
                raise _NotPlain("not shown in full")
            if n.kind is NodeKind.LIST:
                return [value(e) for e in entries]
            return {e.path[-1]: value(e) for e in entries}
        raise _NotPlain("not plain data")

    return value(node)


def _entries(node: Node) -> list[Node]:
    """A container's entries in order, through the rows that group dotted keys."""
    found: list[Node] = []
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.kind is NodeKind.GROUP:
            stack.extend(reversed(child.children))
        else:
            found.append(child)
    return found


def _jsonable(parsed: Any) -> Any:
    if parsed is None or isinstance(parsed, (bool, int, float, str)):
        return parsed
    if isinstance(parsed, (list, tuple)):
        return [_jsonable(x) for x in parsed]
    raise _NotPlain("not plain data")


def _metadata_fate(node: Node) -> ValueFate:
    """A value bound for safetensors metadata: its JSON text, or why it is not written."""
    kind = node.kind.value
    try:
        text = json_metadata_value(plain_value(node))
    except (_NotPlain, RecursionError):  # nested past what a config holds: not written
        text = None
    if text is None:
        what = "a value the static read shows only in part" if _cut_short(node) else "not plain data"
        return ValueFate(node.key, node.path, "dropped", what, kind)
    return ValueFate(node.key, node.path, "metadata", "", kind, text)


def _cut_short(node: Node) -> bool:
    """True when a value's text in the tree was cut (a long string, a long list)."""
    rows = [node, *node.walk()]
    return any(n.kind is NodeKind.VALUE and (n.value or "").endswith(("…", "characters)")) for n in rows)


def estimate_bytes(mapped: list[MappedTensor], index: CheckpointIndex, plan: ExportPlan) -> int:
    """About how large the written file will be (tensor data plus a per-tensor allowance)."""
    total = _FIXED_OVERHEAD + _PER_TENSOR_OVERHEAD * len(mapped)
    if plan.format == "safetensors":
        return total + sum(t.nbytes for t in mapped if t.alias_of is None)
    infos = {n.path: n.tensor for n in index.root.tensors()}
    storages: dict[str, int] = {}
    for t in mapped:
        info = infos.get(t.source_path)
        if info is None:
            continue
        scale = ITEMSIZE.get(t.output_dtype, info.itemsize) / max(1, info.itemsize)
        storages[t.storage_key] = int(info.storage_nbytes * scale)
    return total + sum(storages.values()) + 64 * len(storages)


def render_preview(mapping: KeyMapping, limit: int | None = None) -> list[str]:
    """Lines of the before → after list (``--dry-run`` and the dialog's text export)."""
    lines: list[str] = []
    for t in mapping.tensors[:limit] if limit else mapping.tensors:
        note = ""
        if t.converted:
            note += f"  {t.dtype}→{t.output_dtype}"
        if t.output_device != t.saved_device:
            note += f"  {t.saved_device}→{t.output_device}"
        if t.alias_of:
            note += f"  (alias of {t.alias_of})"
        if t.cloned_from:
            note += f"  (cloned: shared storage with {t.cloned_from})"
        lines.append(f"{t.source_key or '(tensor)'} → {t.output_key or '(tensor)'}{note}")
    return lines


def values_summary(mapping: KeyMapping) -> list[str]:
    """One line per non-tensor value: kept, stored as JSON in metadata, or dropped (and why)."""
    words = {"kept": "kept", "metadata": "stored as JSON in the metadata"}
    return [
        f"{v.source_key}: {words.get(v.fate, 'dropped')}" + (f" ({v.reason})" if v.reason else "")
        for v in mapping.values
    ]


def json_metadata_value(value: object) -> str | None:
    """The JSON text stored in safetensors metadata for a plain value, or None if it is not plain."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError):
        return None


def replaced_path(temp_path: str) -> str:
    """Where a folder being replaced waits while the new one is renamed in, on systems that cannot
    exchange two folders in one step (beside the temporary path, so a kill's leftover is found)."""
    return temp_path + ".old"


def discard_partial(plan: ExportPlan) -> bool:
    """Delete the temporary file (or shard-set folder) a killed or crashed export left beside the target.

    A folder that was being replaced goes back in place if the new one never arrived, else it is
    removed. The engine cleans up itself on every failure it survives; the caller that killed the
    engine (a cancel, a crash) calls this. True when something was removed or put back.
    """
    found = remove_partial(plan.temp_path)
    replaced = replaced_path(plan.temp_path)
    if not os.path.lexists(replaced):
        return found
    if os.path.lexists(plan.target):
        remove_partial(replaced)
    else:
        os.rename(replaced, plan.target)
    return True


def remove_partial(path: str) -> bool:
    """Remove an export's temporary file or folder (``default_temp_path``); True when one was there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
