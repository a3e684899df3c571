"""The engine process: ``python -m inspector.engine.worker``.

Speaks length-prefixed JSON frames (4-byte big-endian length, JSON object; see ``encode_frame``) on
the stdin and stdout it was started with; plain data only, never pickles. Everything else that
writes to stdout (torch, user code in trusted files) ends up on stderr, so it cannot corrupt a frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from inspector.core.load_options import LoadOptions
from inspector.engine.client import encode_frame, read_frame


def available_devices() -> list[str]:
    """The devices a user may load onto here: cpu, meta, each CUDA device, mps when present."""
    from inspector.engine.export import visible_devices

    cpu, *accelerators = visible_devices()
    return [cpu, "meta", *accelerators]


def _run_load(payload: dict[str, Any]) -> dict[str, Any]:
    from inspector.engine.loader import load_checkpoint

    options = LoadOptions.from_json(dict(payload.get("options") or {}))
    return load_checkpoint(str(payload["path"]), options).to_json()


class JobEvents:
    """Where a running job sends its intermediate events (export progress); set by ``main``."""

    job: Any = None
    send: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    def progress(cls, done: int, total: int) -> None:
        if cls.send is not None:
            cls.send({"event": "progress", "job": cls.job, "done": done, "total": total})


def _run_export(payload: dict[str, Any]) -> dict[str, Any]:
    from inspector.core.export_plan import ExportPlan
    from inspector.engine.export import ExportError, export_checkpoint
    from inspector.engine.loader import LoadError

    try:
        report = export_checkpoint(ExportPlan.from_json(dict(payload.get("plan") or {})), JobEvents.progress)
    except ExportError as exc:
        raise LoadError(exc.message, exc.details, exc.kind) from None
    return report.to_json()


def _inspect_handler(kind: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A handler for one of the "look inside" jobs (stats, stats-all, slice, diff)."""

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        from inspector.engine.inspect_jobs import run_inspect_job

        def report(event: dict[str, Any]) -> None:
            if JobEvents.send is not None:
                JobEvents.send({"event": "progress", "job": JobEvents.job, **event})

        return run_inspect_job(kind, payload, report)

    return run


HANDLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "load": _run_load,
    "export": _run_export,
    **{kind: _inspect_handler(kind) for kind in ("stats", "stats-all", "slice", "diff")},
}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """The event that answers one request (a result or an error); never raises."""
    from inspector.engine.loader import LoadError

    job = request.get("job")
    kind = request.get("kind")
    handler = HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        return {
            "event": "error",
            "job": job,
            "kind": "bad-request",
            "message": f"The loader does not know the request {kind!r}.",
            "details": None,
            "extra": {},
        }
    payload = request.get("payload")
    try:
        result = handler(payload if isinstance(payload, dict) else {})
    except LoadError as exc:
        return {"event": "error", "job": job, **exc.to_json()}
    except Exception as exc:  # a bug or an unexpected torch failure: still an answer, not a crash
        return {
            "event": "error",
            "job": job,
            "kind": "other",
            "message": f"The loader failed unexpectedly: {type(exc).__name__}: {exc}",
            "details": repr(exc),
            "extra": {},
        }
    return {"event": "result", "job": job, "result": result}


def answer_frame(request: dict[str, Any]) -> bytes:
    """The frame that answers ``request``: its answer, or an error answer when that cannot be encoded."""
    answer = handle(request)
    try:
        return encode_frame(answer)
    except (TypeError, ValueError, RecursionError) as exc:
        return encode_frame(
            {
                "event": "error",
                "job": answer.get("job"),
                "kind": "other",
                "message": f"The loader's answer could not be sent: {type(exc).__name__}: {exc}",
                "details": None,
                "extra": {},
            }
        )


def main() -> int:
    # Keep the protocol on private descriptors; stray prints go to stderr, stray reads get EOF.
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=0)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    def send(obj: dict[str, Any]) -> None:
        protocol_out.write(encode_frame(obj))

    import torch

    from inspector.engine.loader import available_pickle_modules

    send(
        {
            "event": "ready",
            "devices": available_devices(),
            "torch_version": str(torch.__version__),
            "pickle_modules": available_pickle_modules(),
            "pid": os.getpid(),
        }
    )
    while True:
        try:
            request = read_frame(protocol_in)
        except (ValueError, EOFError) as exc:
            print(f"inspector engine: unreadable request, stopping: {exc}", file=sys.stderr)
            return 2
        if request is None:
            return 0
        JobEvents.job, JobEvents.send = request.get("job"), send
        protocol_out.write(answer_frame(request))


if __name__ == "__main__":
    sys.exit(main())
