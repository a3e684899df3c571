"""The GUI's handle on the engine process: start it, send jobs, cancel them, survive its crashes.

Standard library only: importing this module must never import torch (the GUI process imports it).
Events arrive as plain dicts through ``on_event``, called from a background thread (or, for
``cancelled``, from the thread that called ``cancel``); wrap it in a queued Qt signal to reach
widgets. Nothing here blocks its caller beyond starting a process.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from inspector.core.model import PathPart

log = logging.getLogger(__name__)

#: Frame header: the JSON body's length, 4 bytes big-endian.
HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 1 << 30

EventCallback = Callable[[dict[str, Any]], None]

#: How often a worker may die before saying it is ready, before the client stops restarting it.
MAX_START_FAILURES = 3
_STOP_TIMEOUT_S = 5.0
#: How long a worker that closed its output may take to exit before the client ends it.
_EXIT_GRACE_S = 2.0


def encode_frame(obj: dict[str, Any]) -> bytes:
    """One protocol frame: the length header and the JSON of ``obj`` in ASCII.

    ASCII escapes carry every string, lone surrogates too (a key or file name with undecodable
    bytes), and ``read_frame`` gives back the very same string. ``TypeError`` or ``ValueError``
    for an object JSON cannot hold.
    """
    body = json.dumps(obj, ensure_ascii=True).encode("ascii")
    return HEADER.pack(len(body)) + body


def read_frame(stream: IO[bytes], max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any] | None:
    """The next frame's object, or ``None`` when the stream ends cleanly between frames.

    Raises ``EOFError`` for a stream cut inside a frame and ``ValueError`` for a malformed one.
    """
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > max_bytes:
        raise ValueError(f"a frame of {length} bytes is larger than {max_bytes}")
    body = _read_exactly(stream, length) if length else b""
    if body is None:
        raise EOFError("the stream ended inside a frame")
    obj = json.loads(body.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("a frame must hold a JSON object")
    return obj


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            if remaining == size:
                return None
            raise EOFError("the stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def loaded_devices(result: dict[str, Any]) -> dict[tuple[PathPart, ...], str]:
    """A load result's ``devices`` as {container path: device}, to match the static read's paths."""
    return {tuple(entry["path"]): str(entry["device"]) for entry in result.get("devices", [])}


@dataclass
class _Job:
    id: int
    kind: str
    payload: dict[str, Any]
    frame: bytes = b""

    def request(self) -> dict[str, Any]:
        return {"job": self.id, "kind": self.kind, "payload": self.payload}

    def subject(self) -> str:
        path = self.payload.get("path")
        if self.kind == "load" and isinstance(path, str):
            return f"loading “{os.path.basename(path) or path}”"
        return f"working on a {self.kind} request"


@dataclass(eq=False)
class _Worker:
    """One engine process and the threads that read its stdout and stderr."""

    proc: subprocess.Popen[bytes]
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    threads: list[threading.Thread] = field(default_factory=list)
    was_ready: bool = False
    #: Why the client itself ended this process, if it did (so its SIGKILL is not blamed on memory).
    stopped_because: str | None = None


class EngineClient:
    """Runs jobs in the engine worker process, one at a time, restarting it when it dies."""

    def __init__(self, on_event: EventCallback, python: str = sys.executable) -> None:
        self._on_event = on_event
        self._python = python
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._retired: list[_Worker] = []
        self._queue: collections.deque[_Job] = collections.deque()
        self._in_flight: _Job | None = None
        self._next_id = 1
        self._started = False
        self._closed = False
        self._failed = False
        self._start_failures = 0
        self._ready = False
        self._devices: list[str] = []
        self._torch_version: str | None = None
        self._pickle_modules: list[str] = []

    # -- public API ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the current worker has imported torch and can take a job at once."""
        with self._lock:
            return self._ready

    @property
    def devices(self) -> list[str]:
        """What the worker reported it can load onto (``cpu``, ``meta``, ``cuda:N``, ``mps``)."""
        with self._lock:
            return list(self._devices)

    @property
    def torch_version(self) -> str | None:
        with self._lock:
            return self._torch_version

    @property
    def pickle_modules(self) -> list[str]:
        """The pickle modules a trusted load may use there (``pickle``, and ``dill`` if installed)."""
        with self._lock:
            return list(self._pickle_modules)

    @property
    def pid(self) -> int | None:
        """The current worker process's id (``None`` before ``start`` and after ``close``)."""
        with self._lock:
            return self._worker.proc.pid if self._worker is not None else None

    def start(self) -> None:
        """Spawn the worker; it imports torch in the background and announces ``ready``."""
        events: list[dict[str, Any]] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine client is closed")
            if self._started:
                return
            self._started = True
            self._spawn_locked(events)
        self._emit(events)

    def submit(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue a job and return its id; it is sent as soon as the worker is free."""
        events: list[dict[str, Any]] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine client is closed")
            job = _Job(self._next_id, kind, dict(payload))
            self._next_id += 1
            try:
                job.frame = encode_frame(job.request())
            except (TypeError, ValueError) as exc:  # answered at once; nothing reaches the worker
                message = f"The request could not be sent to the loader: {exc}."
                events.append({"event": "error", "job": job.id, "kind": "bad-request", "message": message,
                               "details": None, "extra": {}})  # fmt: skip
            else:
                self._queue.append(job)
            if self._failed:  # the last start failed: a new request is worth another try
                self._failed = False
                self._start_failures = 0
                self._spawn_locked(events)
            else:
                self._pump_locked()
        self._emit(events)
        return job.id

    def cancel(self, job_id: int) -> None:
        """Drop a queued job, or stop the running one by restarting the worker; else do nothing."""
        events: list[dict[str, Any]] = []
        with self._lock:
            queued = next((job for job in self._queue if job.id == job_id), None)
            if queued is not None:
                self._queue.remove(queued)
            elif self._in_flight is not None and self._in_flight.id == job_id:
                self._in_flight = None
                self._retire_locked()
                if not self._closed:
                    self._spawn_locked(events)
            else:
                return
            events.insert(0, _cancelled(job_id))
        self._emit(events)

    def close(self) -> None:
        """Stop the worker and its threads; pending jobs are dropped. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            # A busy or still-starting worker is killed; an idle one ends cleanly on end of input.
            worker, busy = self._worker, self._in_flight is not None or not self._ready
            self._worker = None
            self._in_flight = None
            self._ready = False
            workers = [*self._retired, *([worker] if worker is not None else [])]
            self._retired = []
        if worker is not None:
            if busy:
                _kill(worker.proc)
            else:
                _close_stdin(worker.proc)
        for w in workers:
            try:
                w.proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill(w.proc)
                w.proc.wait()
            for thread in w.threads:
                if thread is not threading.current_thread():
                    thread.join(timeout=_STOP_TIMEOUT_S)
            with self._lock:
                _close_streams(w)

    def __enter__(self) -> EngineClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals (names ending in _locked run with self._lock held) ------------------------

    def _spawn_locked(self, events: list[dict[str, Any]]) -> None:
        self._ready = False
        self._retired = [w for w in self._retired if any(t.is_alive() for t in w.threads)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # so the child imports this same package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                worker_command(self._python),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                close_fds=True,
                start_new_session=True,  # Ctrl+C in a terminal must not kill the engine mid-job
            )
        except OSError as exc:
            self._fail_locked(events, f"The loader process could not be started: {exc}.", str(exc))
            return
        worker = _Worker(proc)
        worker.threads = [
            # stderr first: the events thread joins it when the process ends
            threading.Thread(target=_drain_stderr, args=(worker,), daemon=True,
                             name=f"engine-stderr-{proc.pid}"),
            threading.Thread(target=self._read_events, args=(worker,), daemon=True,
                             name=f"engine-events-{proc.pid}"),
        ]  # fmt: skip
        self._worker = worker
        for thread in worker.threads:
            thread.start()

    def _retire_locked(self) -> None:
        worker = self._worker
        self._worker = None
        self._ready = False
        if worker is not None:
            _kill(worker.proc)
            self._retired.append(worker)

    def _fail_locked(self, events: list[dict[str, Any]], message: str, details: str | None) -> None:
        self._failed = True
        events.append({"event": "engine-failed", "message": message, "details": details})
        for job in self._queue:
            events.append(
                {
                    "event": "error",
                    "job": job.id,
                    "kind": "engine-unavailable",
                    "message": "The loader process is not running, so this could not be done.",
                    "details": details,
                    "extra": {},
                }
            )
        self._queue.clear()

    def _pump_locked(self) -> None:
        worker = self._worker
        if worker is None or not self._ready or self._in_flight is not None or not self._queue:
            return
        job = self._queue.popleft()
        stdin = worker.proc.stdin
        assert stdin is not None
        try:
            stdin.write(job.frame)
            stdin.flush()
        except (OSError, ValueError):
            # The worker is gone; its reader thread notices and restarts it, then this job goes.
            self._queue.appendleft(job)
            return
        self._in_flight = job

    def _read_events(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        while True:
            try:
                event = read_frame(stdout)
            except (OSError, ValueError, EOFError) as exc:
                worker.stderr_tail.append(f"[engine client] unreadable frame: {exc}")
                if _kill(worker.proc):  # still running after a malformed frame
                    worker.stopped_because = "its answer could not be read"
                break
            if event is None:
                break
            self._on_worker_event(worker, event)
        try:
            returncode = worker.proc.wait(timeout=_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            if _kill(worker.proc):
                worker.stopped_because = "it closed its output without exiting"
            returncode = worker.proc.wait()
        for thread in worker.threads:
            if thread is not threading.current_thread():
                thread.join(timeout=_STOP_TIMEOUT_S)
        self._on_worker_exit(worker, returncode)
        with self._lock:  # no pump writes to this worker any more: it is no longer current
            _close_streams(worker)

    def _on_worker_event(self, worker: _Worker, event: dict[str, Any]) -> None:
        events: list[dict[str, Any]] = []
        with self._lock:
            if worker is not self._worker:
                return  # a cancelled or closed worker's last words
            kind = event.get("event")
            if kind == "ready":
                worker.was_ready = True
                self._ready = True
                self._start_failures = 0
                self._devices = [str(d) for d in event.get("devices", [])]
                self._torch_version = str(event.get("torch_version"))
                self._pickle_modules = [str(m) for m in event.get("pickle_modules", [])]
            elif kind in {"result", "error"}:
                if self._in_flight is None or self._in_flight.id != event.get("job"):
                    return  # an answer to a job that was cancelled meanwhile
                self._in_flight = None
            events.append(event)
            self._pump_locked()
        self._emit(events)

    def _on_worker_exit(self, worker: _Worker, returncode: int) -> None:
        events: list[dict[str, Any]] = []
        with self._lock:
            if worker is not self._worker or self._closed:
                return
            self._worker = None
            self._ready = False
            self._retired.append(worker)
            job, self._in_flight = self._in_flight, None
            how = _describe_exit(returncode, worker.stopped_because)
            details = "\n".join(worker.stderr_tail) or None
            if job is not None:
                events.append(
                    {
                        "event": "error",
                        "job": job.id,
                        "kind": "crashed",
                        "message": f"The loader process stopped ({how}) while {job.subject()}; "
                        "the window is fine and the loader was restarted.",
                        "details": details,
                        "extra": {"returncode": returncode},
                    }
                )
            if not worker.was_ready:
                self._start_failures += 1
            if not worker.was_ready and (returncode >= 0 or self._start_failures >= MAX_START_FAILURES):
                self._fail_locked(events, f"The loader process could not start ({how}).", details)
            else:
                self._spawn_locked(events)
                events.append({"event": "worker-restarted", "reason": how})
        self._emit(events)

    def _emit(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the engine event handler failed on %s", event.get("event"))


def _cancelled(job_id: int) -> dict[str, Any]:
    return {
        "event": "error",
        "job": job_id,
        "kind": "cancelled",
        "message": "Loading was cancelled.",
        "details": None,
        "extra": {},
    }


def _describe_exit(returncode: int, stopped_because: str | None = None) -> str:
    """How a worker ended, in words; a SIGKILL the client sent itself says the client's reason."""
    if stopped_because is not None and returncode == -signal.SIGKILL:
        return f"ended by the window because {stopped_because}"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            return "killed by SIGKILL, often a sign that memory ran out"
        return f"killed by {name}"
    return f"exit status {returncode}"


def worker_command(python: str) -> list[str]:
    """How to start the worker: ``python -m …``, or the frozen app's own binary with a flag."""
    if getattr(sys, "frozen", False) and python == sys.executable:
        return [sys.executable, "--engine-worker"]
    return [python, "-m", "inspector.engine.worker"]


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """End ``proc`` if it still runs; True when this call sent the signal."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
            return True
    return False


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _close_streams(worker: _Worker) -> None:
    """Close the pipes to a finished worker (stderr only once its reader thread is done)."""
    drained = not any(t.is_alive() and t.name.startswith("engine-stderr") for t in worker.threads)
    proc = worker.proc
    for stream in (proc.stdin, proc.stdout, proc.stderr if drained else None):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _drain_stderr(worker: _Worker) -> None:
    """Keep the worker's last stderr lines (for crash details) and never let the pipe fill up."""
    stderr = worker.proc.stderr
    assert stderr is not None
    for raw in iter(stderr.readline, b""):
        worker.stderr_tail.append(raw.decode("utf-8", "replace").rstrip())
