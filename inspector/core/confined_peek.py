"""The static read in a short-lived child process with limits on its memory and processor time.

``peek`` bounds its own work, but it runs in the caller's process: a file that still finds a way
to exhaust memory (or a bug in the reader) would take the caller down with it. ``confined_peek``
runs the same read in a child process whose address space and CPU time are capped with
``resource.setrlimit`` and hands back the index as plain JSON, so that no file can take a window
down whatever its shape. Nothing is unpickled on either side; the child is started fresh for each
file and ends with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .formats import Format
from .model import CheckpointIndex, ChunkInfo, GlobalClass, GlobalRef, Node, NodeKind, TensorInfo
from .peek import DamagedCheckpointError, ReaderOutOfMemory, display_name, peek

MEMORY_LIMIT = 4 << 30  # bytes of address space the reading process may map
CPU_LIMIT = 120  # seconds of processor time it may use
_WALL_FACTOR = 3  # the child is killed after this many times its CPU limit in wall time


def reader_command(python: str = sys.executable) -> list[str]:
    """How to start the reader: ``python -m …``, or the frozen app's own binary with a flag."""
    if getattr(sys, "frozen", False) and python == sys.executable:
        return [sys.executable, "--confined-peek"]
    return [python, "-m", "inspector.core.confined_peek"]


def confined_peek(
    path: str | os.PathLike[str],
    *,
    whole_set: bool = True,
    memory_bytes: int = MEMORY_LIMIT,
    cpu_seconds: int = CPU_LIMIT,
) -> CheckpointIndex:
    """``peek(path)`` run in a child process under the given limits: the same index, or the same
    ``CheckpointError`` (with the globals of a damaged file), or a sentence naming the limit."""
    p = os.fspath(path)
    name = display_name(p)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # so the child imports this same package
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    command = [*reader_command(), p, "1" if whole_set else "0", str(memory_bytes), str(cpu_seconds)]
    try:
        proc = subprocess.run(
            command, capture_output=True, env=env, timeout=cpu_seconds * _WALL_FACTOR, check=False
        )
    except subprocess.TimeoutExpired:
        raise CheckpointError(
            f"{name} was not read: the static read took longer than {cpu_seconds * _WALL_FACTOR:,} s."
        ) from None
    except OSError as exc:
        raise CheckpointError(
            f"{name} was not read: the reading process could not be started ({exc})."
        ) from None
    if proc.returncode != 0 or not proc.stdout:
        raise CheckpointError(_ended_sentence(name, proc.returncode, memory_bytes, cpu_seconds),
                              proc.stderr.decode("utf-8", "replace")[-2000:] or None)  # fmt: skip
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        raise CheckpointError(f"{name} was not read: the reading process gave no answer.") from None
    if "error" in answer:
        raise _error_from_data(answer["error"])
    return index_from_data(answer["index"])


def _ended_sentence(name: str, code: int, memory_bytes: int, cpu_seconds: int) -> str:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"{name} was not read: the static read used more than its {cpu_seconds:,} s of processor time."
    if code < 0:
        return f"{name} was not read: the reading process was stopped by signal {-code}."
    return (
        f"{name} was not read: the reading process ended without an answer (it may have needed more "
        f"than its {memory_bytes >> 20:,} MB of memory)."
    )


# --- the index as plain data ---------------------------------------------------------------------


def _global_data(g: GlobalRef) -> list[Any]:
    return [g.module, g.name, g.verdict.value, g.pickle, g.offset, g.written]


def _global_from(d: list[Any]) -> GlobalRef:
    return GlobalRef(d[0], d[1], GlobalClass(d[2]), d[3], d[4], d[5])


def _tensor_data(t: TensorInfo) -> list[Any]:
    return [list(t.shape), t.dtype, t.saved_device, t.storage_key, t.storage_offset, list(t.stride),
            t.storage_nbytes, t.itemsize, t.requires_grad, t.is_parameter, t.layout, t.shard,
            [asdict(c) for c in t.chunks]]  # fmt: skip


def _tensor_from(d: list[Any]) -> TensorInfo:
    chunks = tuple(
        ChunkInfo(c["file"], tuple(c["offsets"]), tuple(c["sizes"]), c["byte_offset"], c["byte_length"])
        for c in d[12]
    )
    return TensorInfo(
        tuple(d[0]), d[1], d[2], d[3], d[4], tuple(d[5]), d[6], d[7], d[8], d[9], d[10], d[11], chunks
    )


def index_to_data(index: CheckpointIndex) -> dict[str, Any]:
    """Everything a ``CheckpointIndex`` holds, as JSON-able lists (nodes flat, in display order)."""
    nodes: list[list[Any]] = []
    number: dict[int, int] = {id(index.root): -1}
    for node in index.root.walk():
        number[id(node)] = len(nodes)
        parent = number[id(node.parent)] if node.parent is not None else -1
        nodes.append([node.name, node.kind.value, node.key, list(node.path), parent,
                      _tensor_data(node.tensor) if node.tensor is not None else None,
                      node.value, node.params, node.nbytes])  # fmt: skip
    root = index.root
    return {
        "path": index.path, "format": index.format, "file_size": index.file_size,
        "root": [root.name, root.kind.value, root.key, list(root.path), root.value, root.params, root.nbytes],
        "nodes": nodes, "globals": [_global_data(g) for g in index.globals], "warnings": index.warnings,
        "total_params": index.total_params, "total_bytes": index.total_bytes,
        "tensor_count": index.tensor_count,
        "storage_spans": {k: list(v) for k, v in index.storage_spans.items()}, "byteorder": index.byteorder,
        "differentials": index.differentials, "unread": index.unread,
    }  # fmt: skip


def index_from_data(data: dict[str, Any]) -> CheckpointIndex:
    name, kind, key, path, value, params, nbytes = data["root"]
    root = Node(name, NodeKind(kind), key, tuple(path), value=value, params=params, nbytes=nbytes)
    made: list[Node] = []
    for name, kind, key, path, parent, tensor, value, params, nbytes in data["nodes"]:
        node = Node(name, NodeKind(kind), key, tuple(path), tensor=_tensor_from(tensor) if tensor else None,
                    value=value, params=params, nbytes=nbytes)  # fmt: skip
        (made[parent] if parent >= 0 else root).add(node)
        made.append(node)
    return CheckpointIndex(
        path=data["path"], format=Format(data["format"]), root=root,
        globals=[_global_from(g) for g in data["globals"]], file_size=data["file_size"],
        warnings=list(data["warnings"]), total_params=data["total_params"], total_bytes=data["total_bytes"],
        tensor_count=data["tensor_count"],
        storage_spans={k: (v[0], v[1]) for k, v in data["storage_spans"].items()},
        byteorder=data["byteorder"], differentials=list(data["differentials"]), unread=list(data["unread"]),
    )  # fmt: skip


def _error_data(exc: CheckpointError) -> dict[str, Any]:
    damaged = exc if isinstance(exc, DamagedCheckpointError) else None
    return {
        "message": exc.message,
        "details": exc.details,
        "damaged": damaged is not None,
        "globals": [_global_data(g) for g in damaged.globals] if damaged else [],
        "differentials": damaged.differentials if damaged else [],
    }


def _error_from_data(d: dict[str, Any]) -> CheckpointError:
    if d["damaged"]:
        return DamagedCheckpointError(
            d["message"], d["details"], [_global_from(g) for g in d["globals"]], d["differentials"]
        )
    return CheckpointError(d["message"], d["details"])


# --- the child ------------------------------------------------------------------------------------


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # no such limits on this platform: the read's own budgets still hold
        return
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def main(argv: list[str] | None = None) -> int:
    """``confined_peek PATH WHOLE_SET MEMORY_BYTES CPU_SECONDS``: one JSON answer on stdout."""
    args = sys.argv[1:] if argv is None else argv
    path, whole_set, memory_bytes, cpu_seconds = args[0], args[1] == "1", int(args[2]), int(args[3])
    _limit(memory_bytes, cpu_seconds)
    try:
        answer: dict[str, Any] = {"index": index_to_data(peek(path, whole_set=whole_set))}
    except ReaderOutOfMemory as exc:
        exc.message = (
            f"{display_name(path)} needs more than the {memory_bytes >> 20:,} MB of memory the static read "
            "is allowed."
        )
        answer = {"error": _error_data(exc)}
    except CheckpointError as exc:
        answer = {"error": _error_data(exc)}
    text = json.dumps(answer, ensure_ascii=True)  # lone surrogates from a file travel as \\u escapes
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
