"""The code a user would write to load a checkpoint safely, from the static read's verdict and the
load options: ``weights_only=True`` with the globals the file needs allowed (``(object, "name")``
where the file names an object otherwise than the object names itself), ``map_location`` and
``mmap`` as chosen, and for a training checkpoint the lines that restore it. A file the safety
policy would not hand to torch gets no code, only the sentence why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .formats import Format
from .load_options import AS_SAVED_ELSE_CPU, LoadOptions
from .model import CheckpointIndex, NodeKind, PathPart
from .optimizer_map import find_optimizers, is_module, model_part
from .safety import load_refusal, renamed, torch_names, unique_names, verdict_of

#: Top-level scalars of a training checkpoint that say where training stopped.
PROGRESS_NAMES = ("epoch", "step", "global_step", "iteration")
#: Top-level parts restored with ``load_state_dict`` of an object of the same role, by name.
_STATEFUL_ROLES = ("scheduler", "scaler", "ema")


@dataclass(frozen=True)
class LoadingCode:
    """Either the lines to load the file (``code``), or why no safe code exists (``reason``)."""

    code: str = ""
    reason: str = ""


def allowlist_entries(qualname: str) -> list[tuple[str, str | None]]:
    """How ``safe_globals`` must list a global the file names ``qualname``: the expression that
    reaches the object (the file's own name, which imports), paired with each name torch looks it
    up by that differs from the object's own (after a known rename such as ``numpy.core`` →
    ``numpy._core``); ``None`` when the bare object is enough."""
    own = (renamed(qualname) or [qualname])[0]
    return [(qualname, None if name == own else name) for name in torch_names(qualname)]


def literal(value: PathPart) -> str:
    """A string or int as Python source (strings double-quoted; every escape JSON writes is Python's too)."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def _entry_text(expression: str, name: str | None) -> str:
    return expression if name is None else f"({expression}, {literal(name)})"


def _map_location_text(options: LoadOptions) -> str | None:
    loc = options.map_location
    if loc is None:
        return None
    if loc == AS_SAVED_ELSE_CPU:
        return 'None if torch.cuda.is_available() else "cpu"'
    if isinstance(loc, str):
        return literal(loc)
    return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in loc.items()) + "}"


def _subscript(root: str, path: tuple[PathPart, ...]) -> str:
    return root + "".join(f"[{literal(part)}]" for part in path)


def restore_lines(index: CheckpointIndex, var: str = "ckpt") -> list[str]:
    """For a training checkpoint: the lines that put its parts back (model, optimizers, schedulers,
    and where training stopped); none for a file that is only weights."""
    optimizers = find_optimizers(index)
    model = model_part(index, optimizers)
    lines: list[str] = []
    if model is not None and not is_module(model) and (optimizers or model is not index.root):
        lines.append(f"model.load_state_dict({_subscript(var, model.path)})")
    for i, opt in enumerate(optimizers):
        name = "optimizer" if len(optimizers) == 1 else f"optimizer_{i}"
        lines.append(f"{name}.load_state_dict({_subscript(var, opt.path)})")
    if index.root.kind is not NodeKind.DICT:
        return lines
    for child in index.root.children:
        if child.kind is NodeKind.DICT and child not in optimizers and child is not model:
            role = next((r for r in _STATEFUL_ROLES if r in str(child.name).lower()), None)
            if role is not None:
                lines.append(f"{role}.load_state_dict({_subscript(var, child.path)})")
    for child in index.root.children:
        if child.kind is NodeKind.VALUE and child.name in PROGRESS_NAMES:
            lines.append(f"{child.name} = {_subscript(var, child.path)}")
    return lines if (optimizers or len(lines) > 1) else []


def needed_globals(index: CheckpointIndex) -> list[str]:
    """The globals a weights-only load of the file must be told to allow (everything outside
    torch's own set), each once."""
    return unique_names(g.qualname for g in index.unsafe_globals)


def loading_code(index: CheckpointIndex, options: LoadOptions, path: str | None = None) -> LoadingCode:
    """The code that loads the file as ``options`` say, with weights-only unpickling; or the
    sentence why the file must not be loaded that way (dangerous, TorchScript, a global that may
    never be allowed, a format ``torch.load`` does not read)."""
    target = index.path if path is None else path
    name = target.rsplit("/", 1)[-1]
    if index.format is Format.SAFETENSORS:
        device = options.map_location if isinstance(options.map_location, str) else "cpu"
        if device == AS_SAVED_ELSE_CPU:
            device = "cpu"
        call = f"tensors = load_file({literal(target)}, device={literal(device)})"
        return LoadingCode(f"from safetensors.torch import load_file\n\n{call}\n")
    needed = needed_globals(index)
    judged = verdict_of(index)
    plain = replace(options, weights_only=True, allowed_globals=())
    refusal = load_refusal(name, judged, plain) or load_refusal(
        name, judged, replace(plain, allowed_globals=tuple(needed))
    )
    if refusal is not None:
        return LoadingCode(reason=refusal.message)
    if not index.format.torch_load:
        return LoadingCode(reason=_not_torch_load(name, index.format))
    modules = {g.qualname: g.module for g in index.unsafe_globals}
    imports = ["import torch", *(f"import {modules[q]}" for q in needed)]
    args = [literal(target)]
    loc = _map_location_text(options)
    if loc is not None:
        args.append(f"map_location={loc}")
    args.append("weights_only=True")
    if options.mmap and index.format.mmap:
        args.append("mmap=True")
    call = f"ckpt = torch.load({', '.join(args)})"
    if needed:
        entries = [_entry_text(e, n) for q in needed for e, n in allowlist_entries(q)]
        body = [
            f"with torch.serialization.safe_globals([{', '.join(unique_names(entries))}]):",
            f"    {call}",
        ]
    else:
        body = [call]
    restore = restore_lines(index)
    lines = [*unique_names(imports), "", *body]
    if restore:
        lines += ["", *restore]
    return LoadingCode("\n".join(lines) + "\n")


def _not_torch_load(name: str, fmt: Format) -> str:
    if fmt.several_files:
        library = "torch.distributed.checkpoint" if fmt is Format.DCP else "transformers (from_pretrained)"
        return f"“{name}” is a set of files that {library} loads, not one torch.load call."
    return f"“{name}” is {fmt} data that torch.load does not read, so no loading code applies."
