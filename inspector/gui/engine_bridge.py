"""Turns the engine client's reader-thread callbacks into Qt signals delivered on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from inspector.core.export_plan import ExportPlan, discard_partial
from inspector.core.load_options import LoadOptions
from inspector.core.model import PathPart


def loaded_devices(result: dict[str, Any]) -> dict[tuple[PathPart, ...], str]:
    """A load result's ``devices`` as {tensor path: device}; entries are {"path", "device"} objects
    (or ``[path, device]`` pairs)."""
    out: dict[tuple[PathPart, ...], str] = {}
    for entry in result.get("devices") or []:
        if isinstance(entry, dict):
            path, device = entry.get("path") or [], entry.get("device")
        else:
            path, device = entry
        out[tuple(path)] = str(device)
    return out


class EngineClientLike(Protocol):
    """What the window needs of ``inspector.engine.client.EngineClient``."""

    @property
    def ready(self) -> bool: ...
    @property
    def devices(self) -> list[str]: ...
    @property
    def torch_version(self) -> str | None: ...
    @property
    def pickle_modules(self) -> list[str]: ...

    def start(self) -> None: ...
    def submit(self, kind: str, payload: dict[str, Any]) -> int: ...
    def cancel(self, job_id: int) -> None: ...
    def close(self) -> None: ...


ClientFactory = Callable[[Callable[[dict[str, Any]], None]], EngineClientLike]


class EngineBridge(QObject):
    """Owns one engine client; signals are emitted on the reader thread, so they arrive queued.

    Jobs are routed by id: each tab remembers the id of its current load and ignores any other.
    """

    engine_ready = Signal(list, str)  # devices, torch version
    job_finished = Signal(int, object)  # job id, result dict
    job_failed = Signal(int, object)  # job id, error event dict
    engine_failed = Signal(str)  # a sentence: the worker could not start
    job_progress = Signal(int, object, object)  # job id, bytes done, bytes total (may exceed 2**31)

    def __init__(self, client_factory: ClientFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client_factory(self._on_event)
        self._started = False
        self._closed = False
        self._exports: dict[int, ExportPlan] = {}  # running exports, to clean up after a kill

    @property
    def client(self) -> EngineClientLike:
        return self._client

    @property
    def devices(self) -> list[str]:
        return list(self._client.devices or []) if self._client.ready else []

    @property
    def is_ready(self) -> bool:
        return bool(self._client.ready)

    def start(self) -> None:
        """Spawn the worker (returns at once); later calls do nothing."""
        if not self._started and not self._closed:
            self._started = True
            self._client.start()

    def submit_load(self, path: str, options: LoadOptions) -> int:
        self.start()
        return self._client.submit("load", {"path": path, "options": options.to_json()})

    def submit_export(self, plan: ExportPlan) -> int:
        """Run an export in the engine; if it is cancelled or the engine dies, its partial file goes."""
        self.start()
        job = self._client.submit("export", {"plan": plan.to_json()})
        self._exports[job] = plan
        return job

    def submit_job(self, kind: str, payload: dict[str, Any]) -> int:
        """Run a "look inside" job (``stats``, ``stats-all``, ``slice``, ``diff``) with a JSON payload."""
        self.start()
        return self._client.submit(kind, payload)

    def cancel(self, job_id: int) -> None:
        if self._started and not self._closed:
            self._client.cancel(job_id)

    def close(self) -> None:
        """Stop the worker and the reader thread; no signal is emitted afterwards."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def _on_event(self, event: dict[str, Any]) -> None:
        # Runs on the client's reader thread: only emit, touch nothing else.
        if self._closed:
            return
        kind = event.get("event")
        if kind == "ready":
            self.engine_ready.emit(list(event.get("devices") or []), str(event.get("torch_version")))
        elif kind == "result":
            self._exports.pop(int(event["job"]), None)
            self.job_finished.emit(int(event["job"]), event.get("result") or {})
        elif kind == "error":
            job = event.get("job")
            plan = self._exports.pop(job, None) if isinstance(job, int) else None
            if plan is not None:
                discard_partial(plan)  # a killed worker could not remove its temporary file
            self.job_failed.emit(job if isinstance(job, int) else -1, event)
        elif kind == "progress" and isinstance(event.get("job"), int):
            self.job_progress.emit(int(event["job"]), event.get("done", 0), event.get("total", 0))
        elif kind == "engine-failed":
            self.engine_failed.emit(str(event.get("message") or self.tr("The loader could not start.")))
