"""Which model parameter each optimizer-state entry belongs to, from the static tree alone.

A saved ``optimizer.state_dict()`` names parameters by number (``state[3]['exp_avg']``); the numbers
are positions in ``param_groups[*]['params']``, which follow the order the parameters were handed
to the optimizer (usually ``model.parameters()``, i.e. the model's ``state_dict`` order without
buffers). Newer torch may save ``param_names`` beside ``params``: then those names are used as they
are. Otherwise positions are matched to the model's tensors in order, skipping buffers and, when
the counts differ, tensors whose shape does not fit the state. Standard library only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from .formatting import count_of
from .model import MODULE_ATTRIBUTES, CheckpointIndex, Node, NodeKind, PathPart, tensor_totals

#: Top-level names that hold the model's state_dict, most likely first (an EMA copy only when the
#: file has nothing else by these names).
MODEL_PART_NAMES = (
    "model", "model_state_dict", "state_dict", "net", "network", "module", "generator",
    "ema", "model_ema", "ema_model", "ema_state_dict", "state_dict_ema",
)  # fmt: skip

#: state_dict entries of ``nn.Module`` buffers that never have optimizer state.
BUFFER_NAMES = frozenset({"running_mean", "running_var", "num_batches_tracked"})

#: Optimizer-state tensors that do not have the parameter's shape.
_SCALAR_STATE = frozenset({"step"})

_FLOATING_PREFIXES = ("float", "bfloat", "complex")


@dataclass
class ParamState:
    """One parameter's optimizer state: its number, its model key (if found) and its state tensors."""

    param_id: PathPart
    group: int
    param_key: str | None  # the model tensor's key (``model.embed.weight``), None when unmatched
    slot_key: str | None = None  # the ``optimizer.state.N`` container's key, None without state
    state_keys: list[str] = field(default_factory=list)  # ``optimizer.state.0.exp_avg`` …
    state_nbytes: int = 0
    shape_mismatch: bool = False  # matched by position, but the state's shape differs


@dataclass
class OptimizerMap:
    """How one optimizer's state lines up with the model's parameters."""

    optimizer_key: str  # ``optimizer``, ``optimizer_states.0`` …
    model_key: str | None  # the model part's key, None when no model part was found
    method: str  # "param_names", "order" (counts equal) or "shape" (positions skipped by shape)
    params: list[ParamState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sentences about what did not line up


# -- finding the parts -----------------------------------------------------------------------------


def _child(node: Node, name: str) -> Node | None:
    return next((c for c in node.children if c.name == name), None)


def find_optimizers(index: CheckpointIndex, max_depth: int = 3) -> list[Node]:
    """Containers holding both ``state`` and ``param_groups`` (optimizer state dicts), in tree order."""
    found: list[Node] = []
    group = NodeKind.GROUP
    stack: list[tuple[Node, int]] = [(index.root, 0)]
    while stack:
        node, depth = stack.pop()
        if (
            node.kind in (NodeKind.DICT, NodeKind.OBJECT)
            and _child(node, "state")
            and _child(node, "param_groups")
        ):
            found.append(node)
            continue
        if depth + 1 < max_depth:
            stack.extend((c, depth + 1) for c in reversed(node.children) if c.children)
        elif depth < max_depth:  # the children are only looked at, not entered: a group is no optimizer
            last = [(c, max_depth) for c in reversed(node.children) if c.kind is not group and c.children]
            stack.extend(last)
    return found


def _contains(outer: Node, inner: Node) -> bool:
    up: Node | None = inner
    while up is not None:
        if up is outer:
            return True
        up = up.parent
    return False


def _model_candidates(index: CheckpointIndex, optimizers: list[Node]) -> list[Node]:
    """Top-level parts with tensors that hold no optimizer: where a model's state_dict can be."""
    return [
        c
        for c in index.root.children
        if c.kind in (NodeKind.DICT, NodeKind.OBJECT)
        and c.params
        and not any(_contains(c, o) for o in optimizers)
    ]


def find_model_part(index: CheckpointIndex) -> Node | None:
    """The top-level part holding the model's tensors (``model``, ``state_dict`` …), or None."""
    return _by_name(_model_candidates(index, find_optimizers(index)))


def _by_name(candidates: list[Node]) -> Node | None:
    return _named(candidates) or max(candidates, key=lambda c: c.params, default=None)


def _named(candidates: list[Node]) -> Node | None:
    for name in MODEL_PART_NAMES:
        for c in candidates:
            if c.name == name:
                return c
    return None


def _common_ancestor(nodes: list[Node]) -> Node | None:
    """The deepest container (not a group) holding all of ``nodes``."""
    if not nodes:
        return None
    chains = []
    for node in nodes:
        chain: list[Node] = []
        up = node.parent
        while up is not None:
            chain.append(up)
            up = up.parent
        chains.append(chain[::-1])
    shared: Node | None = None
    for level in zip(*chains, strict=False):
        if any(n is not level[0] for n in level):
            break
        if level[0].kind is not NodeKind.GROUP:
            shared = level[0]
    return shared


def is_module(node: Node) -> bool:
    """A pickled ``nn.Module``: the tree shows it with its attributes folded into one row."""
    return node.kind is NodeKind.OBJECT and any(
        c.kind is NodeKind.GROUP and c.name == MODULE_ATTRIBUTES for c in node.children
    )


def model_part(index: CheckpointIndex, optimizers: list[Node] | None = None) -> Node | None:
    """The model's part of the file where it can be told, else None: a top-level part by its
    conventional name (``model``, ``state_dict`` …), else the container the optimizer's state maps
    onto, else the whole file when it is a state_dict or a pickled module."""
    optimizers = find_optimizers(index) if optimizers is None else optimizers
    named = _named(_model_candidates(index, optimizers))
    if named is not None:
        return named
    if optimizers:
        by_key = index.tensors_by_key()
        mapped = [
            by_key[p.param_key]
            for opt in optimizers
            for p in map_optimizer(index, opt, None).params
            if p.param_key is not None and p.param_key in by_key
        ]
        return _common_ancestor(mapped)
    root = index.root
    if index.format.flat or is_module(root) or index.holds_only_tensors():
        return root
    return None


@dataclass(frozen=True)
class ModelCount:
    """The model's part of a file and the elements of its tensors (each distinct tensor once)."""

    part: Node
    params: int


def count_model(index: CheckpointIndex, optimizers: list[Node] | None = None) -> ModelCount | None:
    """The model's part and its parameters, None when no part can be told to be the model. A
    module's folded attributes and any optimizer state inside the part are not counted."""
    optimizers = find_optimizers(index) if optimizers is None else optimizers
    part = model_part(index, optimizers)
    if part is None:
        return None
    if part is index.root and not optimizers and not is_module(part):
        return ModelCount(part, index.total_params)  # a state_dict: every tensor is the model's
    skip = {id(o) for o in optimizers}
    tensors: list[Node] = []
    stack = [part]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.kind is NodeKind.TENSOR:
                tensors.append(child)
            elif id(child) not in skip and not (
                child.kind is NodeKind.GROUP and child.name == MODULE_ATTRIBUTES
            ):
                stack.append(child)
    return ModelCount(part, tensor_totals(tensors).params)


def model_params(index: CheckpointIndex) -> int | None:
    """Elements of the model's tensors (see ``count_model``), None when the model cannot be told."""
    found = count_model(index)
    return found.params if found is not None else None


# -- reading the optimizer ---------------------------------------------------------------------------


def _literal(text: str | None) -> object:
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _values(node: Node | None) -> list[object] | None:
    """A list stored as a LIST of VALUE rows, or as one VALUE whose text is the list's repr."""
    if node is None:
        return None
    if node.kind is NodeKind.LIST:
        out: list[object] = []
        for child in node.children:
            if child.kind is not NodeKind.VALUE:
                return None
            out.append(_literal(child.value))
        return out
    if node.kind is NodeKind.VALUE:
        value = _literal(node.value)
        if isinstance(value, (list, tuple)):
            return list(value)
    return None


def _param_groups(optimizer: Node) -> list[tuple[int, list[object], list[object] | None]]:
    """(group number, param ids, param names or None) for each group."""
    groups_node = _child(optimizer, "param_groups")
    out: list[tuple[int, list[object], list[object] | None]] = []
    if groups_node is None:
        return out
    for number, group in enumerate(groups_node.children):
        ids = _values(_child(group, "params"))
        if ids is None:
            continue
        names = _values(_child(group, "param_names"))
        out.append((number, ids, names if names is not None and len(names) == len(ids) else None))
    return out


def _state_slots(optimizer: Node) -> dict[object, Node]:
    state = _child(optimizer, "state")
    if state is None:
        return {}
    return {c.path[-1] if c.path else c.name: c for c in state.children if c.kind is NodeKind.DICT}


def _state_shape(slot: Node | None) -> tuple[int, ...] | None:
    """The parameter's shape as its state tensors show it (None when they disagree or are scalars)."""
    if slot is None:
        return None
    shapes = {c.tensor.shape for c in slot.children if c.tensor is not None and c.name not in _SCALAR_STATE}
    return next(iter(shapes)) if len(shapes) == 1 else None


def _is_buffer(node: Node) -> bool:
    info = node.tensor
    assert info is not None
    name = str(node.path[-1]) if node.path else node.name
    if name.rsplit(".", 1)[-1] in BUFFER_NAMES:
        return True
    return not info.dtype.startswith(_FLOATING_PREFIXES)


def model_parameters(model: Node | Iterable[Node]) -> list[Node]:
    """The tensors of a model part that can have optimizer state, in state_dict order."""
    tensors = list(model.tensors()) if isinstance(model, Node) else list(model)
    marked = [t for t in tensors if t.tensor is not None and t.tensor.is_parameter]
    if marked:
        return marked
    return [t for t in tensors if not _is_buffer(t)]


# -- the mapping ---------------------------------------------------------------------------------------


def map_optimizer(index: CheckpointIndex, optimizer: Node, model: Node | None) -> OptimizerMap:
    """Line up one optimizer's state with the model's parameters (see the module docstring)."""
    model_root = model if model is not None else index.root
    tensors = [t for t in model_root.tensors() if not _contains(optimizer, t)]
    result = OptimizerMap(optimizer.key, model.key if model is not None else None, "order")
    slots = _state_slots(optimizer)
    groups = _param_groups(optimizer)
    flat = [(g, pid, names[i] if names else None) for g, ids, names in groups for i, pid in enumerate(ids)]
    for group, pid, _name in flat:
        slot = slots.get(pid)
        entry = ParamState(pid if isinstance(pid, (int, str)) else str(pid), group, None)
        if slot is not None:
            entry.slot_key = slot.key
            for t in slot.tensors():
                assert t.tensor is not None
                entry.state_keys.append(t.key)
                entry.state_nbytes += t.tensor.nbytes
        result.params.append(entry)
    if not flat:
        result.notes.append(f"“{optimizer.key}” has no parameter list in its param_groups.")
        return result

    by_local_key = {_local_key(t, model_root): t for t in tensors}
    if all(name is not None for _, _, name in flat):
        result.method = "param_names"
        for entry, (_, _, name) in zip(result.params, flat, strict=True):
            node = by_local_key.get(str(name))
            entry.param_key = node.key if node is not None else None
        missing = sum(1 for p in result.params if p.param_key is None)
        if missing:
            verb = "is not a tensor" if missing == 1 else "are not tensors"
            result.notes.append(f"{missing:,} of the names in param_names {verb} of the model.")
        return result

    params = model_parameters(tensors)
    shapes = [_state_shape(slots.get(pid)) for _, pid, _ in flat]
    if len(params) == len(flat):
        for entry, node, shape in zip(result.params, params, shapes, strict=True):
            entry.param_key = node.key
            entry.shape_mismatch = (
                shape is not None and node.tensor is not None and node.tensor.shape != shape
            )
        bad = sum(p.shape_mismatch for p in result.params)
        if bad:
            result.notes.append(
                f"{count_of(bad, 'parameter')} {'has' if bad == 1 else 'have'} optimizer state of another "
                "shape: the optimizer was probably not built from model.parameters() in order."
            )
        return result

    # Counts differ (frozen parameters, unrecognised buffers): walk both lists, skipping model
    # tensors whose shape cannot be the next state's.
    result.method = "shape"
    at = 0
    for entry, shape in zip(result.params, shapes, strict=True):
        while at < len(params):
            node = params[at]
            at += 1
            if shape is None or (node.tensor is not None and node.tensor.shape == shape):
                entry.param_key = node.key
                break
        else:
            break
    unmatched = sum(1 for p in result.params if p.param_key is None)
    result.notes.append(
        f"The optimizer lists {count_of(len(flat), 'parameter')} and the model has "
        f"{count_of(len(params), 'trainable-looking tensor')}; they were matched in order by shape, so "
        "check names that matter." + (f" {unmatched:,} could not be matched." if unmatched else "")
    )
    return result


def _local_key(node: Node, model_root: Node) -> str:
    """The key of ``node`` inside the model part (its state_dict key)."""
    prefix = model_root.key + "." if model_root.key else ""
    return node.key[len(prefix) :] if prefix and node.key.startswith(prefix) else node.key


def map_optimizers(index: CheckpointIndex) -> list[OptimizerMap]:
    """Every optimizer in the file mapped onto the model part (empty for a plain state_dict)."""
    model = find_model_part(index)
    return [map_optimizer(index, opt, model) for opt in find_optimizers(index)]
