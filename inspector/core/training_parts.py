"""The parts of a training checkpoint beside the model: optimizers and their kind, a scheduler, the
epoch and step, an EMA copy of the weights — told from names in the static tree. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formatting import count_of
from .model import CheckpointIndex, Node, NodeKind
from .optimizer_map import find_optimizers

#: Optimizer kinds by the state each parameter keeps (torch.optim's names), most specific first.
_OPTIMIZER_STATE = (
    ({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, "Adam/AdamW with amsgrad"),
    ({"exp_avg", "exp_avg_sq"}, "Adam/AdamW"),
    ({"exp_avg", "exp_inf"}, "Adamax"),
    ({"square_avg", "acc_delta"}, "Adadelta"),
    ({"square_avg"}, "RMSprop"),
    ({"sum"}, "Adagrad"),
    ({"momentum_buffer"}, "SGD with momentum"),
    ({"prev", "step_size"}, "Rprop"),
    ({"eta", "mu", "ax"}, "ASGD"),
)

#: Scheduler kinds by an entry of their state_dict (torch.optim.lr_scheduler's attribute names).
_SCHEDULER_ENTRIES = (
    ("_schedulers", "SequentialLR/ChainedScheduler"),
    ("T_max", "CosineAnnealingLR"),
    ("T_0", "CosineAnnealingWarmRestarts"),
    ("total_steps", "OneCycleLR"),
    ("milestones", "MultiStepLR"),
    ("patience", "ReduceLROnPlateau"),
    ("lr_lambdas", "LambdaLR"),
    ("step_size", "StepLR"),
    ("start_factor", "LinearLR"),
    ("power", "PolynomialLR"),
    ("factor", "ConstantLR"),
    ("gamma", "ExponentialLR"),
)

_SCHEDULER_NAMES = (
    "scheduler",
    "lr_scheduler",
    "lr_schedulers",
    "scheduler_state_dict",
    "sched",
    "schedulers",
)
_COUNTER_NAMES = ("epoch", "epochs", "global_step", "step", "steps", "iteration", "iter", "it")
#: Names an EMA copy of the weights goes by, as a top-level part or inside the model part.
EMA_NAMES = ("ema", "model_ema", "ema_model", "ema_state_dict", "state_dict_ema", "ema_weights", "shadow")


@dataclass(frozen=True)
class TrainingPart:
    """One part of a training checkpoint: what it is (``optimizer``, ``scheduler``, ``epoch``,
    ``step``, ``ema``), where it is, and what it says."""

    role: str
    key: str
    text: str
    evidence: tuple[str, ...] = ()


def _child(node: Node, name: str) -> Node | None:
    return next((c for c in node.children if c.name == name), None)


def optimizer_kind(optimizer: Node) -> tuple[str, tuple[str, ...]]:
    """The optimizer's kind from its per-parameter state names, and the names it rests on."""
    state = _child(optimizer, "state")
    slot = next((c for c in state.children if c.children), None) if state is not None else None
    names = {c.name for c in slot.children} if slot is not None else set()
    groups = _child(optimizer, "param_groups")
    group = groups.children[0] if groups is not None and groups.children else None
    settings = {c.name: c.value for c in group.children} if group is not None else {}
    for needed, kind in _OPTIMIZER_STATE:
        if needed <= names:
            shown = tuple(f"{slot.key}.{n}" for n in sorted(needed)) if slot is not None else ()
            if kind.startswith("Adam/AdamW") and settings.get("decoupled_weight_decay") in ("True", "False"):
                kind = kind.replace(
                    "Adam/AdamW", "AdamW" if settings["decoupled_weight_decay"] == "True" else "Adam"
                )
                shown += (
                    (f"{group.key}.decoupled_weight_decay = {settings['decoupled_weight_decay']}",)
                    if group
                    else ()
                )
            return kind, shown
    if not names and {"momentum", "dampening", "nesterov"} <= settings.keys():
        return "SGD without momentum state", (
            f"{group.key}.momentum = {settings['momentum']}",
        ) if group else ()
    return "optimizer of an unrecognised kind", tuple(sorted(names))[:4]


def _scheduler_kind(node: Node) -> str:
    names = {c.name for c in node.children}
    return next((kind for entry, kind in _SCHEDULER_ENTRIES if entry in names), "scheduler")


def training_parts(
    index: CheckpointIndex, model: Node | None, optimizers: list[Node] | None = None
) -> list[TrainingPart]:
    """Optimizers (with kind and parameter count), schedulers, counters and EMA copies beside the model;
    ``optimizers`` as ``find_optimizers`` gives them, where the caller has them."""
    parts: list[TrainingPart] = []
    for opt in find_optimizers(index) if optimizers is None else optimizers:
        kind, evidence = optimizer_kind(opt)
        slots = _child(opt, "state")
        held = count_of(len(slots.children), "parameter") if slots is not None else "no"
        parts.append(TrainingPart("optimizer", opt.key, f"{kind}, state for {held}", evidence))
    for top in index.root.children:
        name = top.name.lower()
        if name in _SCHEDULER_NAMES and top.kind in (NodeKind.DICT, NodeKind.LIST, NodeKind.OBJECT):
            inner = top.children[0] if top.kind is NodeKind.LIST and top.children else top
            kind = _scheduler_kind(inner)
            parts.append(TrainingPart("scheduler", top.key, kind, (inner.key,)))
        elif name in _COUNTER_NAMES and top.kind is NodeKind.VALUE:
            role = "epoch" if name.startswith("epoch") else "step"
            parts.append(TrainingPart(role, top.key, f"{top.name} = {top.value}", (top.key,)))
    places = list(index.root.children) + (list(model.children) if model is not None else [])
    for node in places:
        if node is not model and node.name.lower() in EMA_NAMES and node.params:
            text = f"an EMA copy of the weights: {count_of(node.params, 'param')}"
            parts.append(TrainingPart("ema", node.key, text, (node.key,)))
    return parts
