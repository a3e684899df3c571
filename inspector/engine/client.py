"""The GUI's handle on the engine process: start it, send jobs, cancel them, survive its crashes.

Standard library only: importing this module must never import torch (the GUI process imports it).
Events (``inspector.engine.protocol``) arrive through ``on_event``, called from a background
thread (or from the thread that called ``cancel``, for a job that never reached the worker); wrap
it in a queued Qt signal to reach widgets. Nothing here blocks its caller beyond starting a process.

Cancelling: a queued job is dropped at once. A running job whose request checks for a cancel
between tensors is sent ``Cancel`` and stops without a restart; one that does not check (a load),
or that reaches no check within ``cancel_grace_s`` (a long ``torch.load`` inside an export), is
stopped by ending the worker, which restarts. Whatever a worker that died mid-job left on disk
(an export's temporary file or folder) is removed once that process is gone.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import (
    PROTOCOL_VERSION,
    Cancel,
    Cancelled,
    EngineFailed,
    ErrorKind,
    Event,
    EventCallback,
    Failure,
    Message,
    Progress,
    Ready,
    Request,
    Result,
    Submit,
    WorkerRestarted,
    encode,
    read_message,
)

#: How often a worker may die before saying it is ready, before the client stops restarting it.
MAX_START_FAILURES = 3
#: How long a job that checks for cancels may run on after ``Cancel`` before its worker is ended.
CANCEL_GRACE_S = 2.0
_STOP_TIMEOUT_S = 5.0
#: How long a worker that closed its output may take to exit before the client ends it.
_EXIT_GRACE_S = 2.0


@dataclass
class _Job:
    id: int
    request: Request
    frame: bytes = b""


@dataclass(eq=False)
class _Worker:
    """One engine process, the threads that read its stdout and stderr, and the job it runs."""

    proc: subprocess.Popen[bytes]
    stderr_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    threads: list[threading.Thread] = field(default_factory=list)
    was_ready: bool = False
    #: Why the client itself ended this process, if it did (so its SIGKILL is not blamed on memory).
    stopped_because: str | None = None
    job: _Job | None = None
    #: ``Cancel`` was sent for ``job``; the timer ends the process if the job does not stop in time.
    cancel_timer: threading.Timer | None = None
    #: Timers called off, to be joined once the process is gone (outside the client's lock).
    spent_timers: list[threading.Timer] = field(default_factory=list)
    #: The client ended this process to cancel ``job``.
    killed_for_cancel: bool = False


class EngineClient:
    """Runs jobs in the engine worker process, one at a time, restarting it when it dies."""

    def __init__(
        self, on_event: EventCallback, python: str = sys.executable, cancel_grace_s: float = CANCEL_GRACE_S
    ) -> None:
        self._on_event = on_event
        self._python = python
        self._cancel_grace_s = cancel_grace_s
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._retired: list[_Worker] = []
        self._queue: collections.deque[_Job] = collections.deque()
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
        """Spawn the worker; it imports torch in the background and announces ``Ready``."""
        events: list[Event] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine client is closed")
            if self._started:
                return
            self._started = True
            self._spawn_locked(events)
        self._emit(events)

    def submit(self, request: Request) -> int:
        """Queue a job and return its id; it is sent as soon as the worker is free."""
        events: list[Event] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the engine client is closed")
            job = _Job(self._next_id, request)
            self._next_id += 1
            try:
                job.frame = encode(Submit(job.id, request))
            except (TypeError, ValueError) as exc:  # answered at once; nothing reaches the worker
                message = f"The request could not be sent to the loader: {exc}."
                events.append(Failure(job.id, ErrorKind.BAD_REQUEST, message))
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

    def withdraw(self, job_id: int) -> bool:
        """Take back a job the worker has not started: True, and it ends here without any event
        (to be run elsewhere); False when it is running or ended, and it goes on as it would."""
        with self._lock:
            queued = next((job for job in self._queue if job.id == job_id), None)
            if queued is None:
                return False
            self._queue.remove(queued)
            return True

    def cancel(self, job_id: int) -> None:
        """Stop a job: drop it if queued, ask a running one to stop, or end its worker; the job then
        ends with ``Cancelled`` (or its own answer, if that was already on the way)."""
        events: list[Event] = []
        with self._lock:
            queued = next((job for job in self._queue if job.id == job_id), None)
            worker = self._worker
            running = worker.job if worker is not None else None
            if queued is not None:
                self._queue.remove(queued)
                events.append(Cancelled(job_id))
            elif (
                worker is not None
                and running is not None
                and running.id == job_id
                and (not running.request.checks_for_cancel or not self._send_cancel_locked(worker))
            ):
                self._end_for_cancel_locked(worker, events)
        self._emit(events)

    def close(self) -> None:
        """Stop the worker and its threads; pending jobs are dropped. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            # A busy or still-starting worker is killed; an idle one ends cleanly on end of input.
            worker = self._worker
            busy = worker is not None and (worker.job is not None or not self._ready)
            self._worker = None
            self._ready = False
            workers = [*self._retired, *([worker] if worker is not None else [])]
            self._retired = []
            for w in workers:
                _stop_timer(w)
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
            _join_timers(w)
            with self._lock:
                _close_streams(w)

    def __enter__(self) -> EngineClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals (names ending in _locked run with self._lock held) ------------------------

    def _spawn_locked(self, events: list[Event]) -> None:
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

    def _retire_locked(self, why: str | None = None) -> None:
        """End the current worker (its reader thread reaps it and removes what its job left)."""
        worker = self._worker
        self._worker = None
        self._ready = False
        if worker is not None:
            _stop_timer(worker)
            if _kill(worker.proc) and why is not None:
                worker.stopped_because = why
            self._retired.append(worker)

    def _send_cancel_locked(self, worker: _Worker) -> bool:
        """Ask the running job to stop at its next check; False when that cannot be sent."""
        job = worker.job
        assert job is not None
        if worker.cancel_timer is not None:
            return True  # asked already; the timer is running
        stdin = worker.proc.stdin
        assert stdin is not None
        try:
            stdin.write(encode(Cancel(job.id)))
            stdin.flush()
        except (OSError, ValueError):
            return False
        timer = threading.Timer(self._cancel_grace_s, self._on_cancel_overdue, args=(worker, job.id))
        timer.name = f"engine-cancel-{worker.proc.pid}"
        timer.daemon = True
        worker.cancel_timer = timer
        timer.start()
        return True

    def _end_for_cancel_locked(self, worker: _Worker, events: list[Event]) -> None:
        """Stop the worker's job by ending the process; ``Cancelled`` follows once it is gone."""
        worker.killed_for_cancel = True
        self._retire_locked("its job was cancelled")
        if not self._closed:
            self._spawn_locked(events)

    def _on_cancel_overdue(self, worker: _Worker, job_id: int) -> None:
        events: list[Event] = []
        with self._lock:
            job = worker.job
            if worker is self._worker and not self._closed and job is not None and job.id == job_id:
                self._end_for_cancel_locked(worker, events)
        self._emit(events)

    def _fail_locked(self, events: list[Event], message: str, details: str | None) -> None:
        self._failed = True
        events.append(EngineFailed(message, details))
        for job in self._queue:
            events.append(
                Failure(
                    job.id,
                    ErrorKind.ENGINE_UNAVAILABLE,
                    "The loader process is not running, so this could not be done.",
                    details,
                )
            )
        self._queue.clear()

    def _pump_locked(self) -> None:
        worker = self._worker
        if worker is None or not self._ready or worker.job is not None or not self._queue:
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
        worker.job = job

    def _read_events(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        while True:
            try:
                message = read_message(stdout)
            except (OSError, ValueError, EOFError) as exc:  # a ProtocolError is a ValueError
                worker.stderr_tail.append(f"[engine client] unreadable frame: {exc}")
                if not worker.was_ready:
                    self._on_foreign_worker(worker, "its first answer could not be read")
                elif _kill(worker.proc):  # still running after a malformed frame
                    worker.stopped_because = "its answer could not be read"
                break
            if message is None:
                break
            self._on_worker_message(worker, message)
        try:
            returncode = worker.proc.wait(timeout=_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            if _kill(worker.proc):
                worker.stopped_because = "it closed its output without exiting"
            returncode = worker.proc.wait()
        for thread in worker.threads:
            if thread is not threading.current_thread():
                thread.join(timeout=_STOP_TIMEOUT_S)
        with self._lock:
            _stop_timer(worker)
        _join_timers(worker)
        self._on_worker_exit(worker, returncode)
        with self._lock:  # no pump writes to this worker any more: it is no longer current
            _close_streams(worker)

    def _on_worker_message(self, worker: _Worker, message: Message) -> None:
        events: list[Event] = []
        with self._lock:
            if worker is not self._worker:
                return  # a cancelled or closed worker's last words
            if isinstance(message, Ready):
                if message.version != PROTOCOL_VERSION:
                    self._on_foreign_worker_locked(
                        worker, f"it speaks protocol version {message.version}", events
                    )
                else:
                    worker.was_ready = True
                    self._ready = True
                    self._start_failures = 0
                    self._devices = list(message.devices)
                    self._torch_version = message.torch_version
                    self._pickle_modules = list(message.pickle_modules)
                    events.append(message)
            elif isinstance(message, (Result, Failure, Cancelled, Progress)):
                job = worker.job
                if job is None or job.id != message.job:
                    return  # an answer to a job that was cancelled meanwhile
                if not isinstance(message, Progress):
                    worker.job = None
                    _stop_timer(worker)
                events.append(message)
            self._pump_locked()
        self._emit(events)

    def _on_foreign_worker(self, worker: _Worker, why: str) -> None:
        events: list[Event] = []
        with self._lock:
            if worker is self._worker:
                self._on_foreign_worker_locked(worker, why, events)
        self._emit(events)

    def _on_foreign_worker_locked(self, worker: _Worker, why: str, events: list[Event]) -> None:
        """A worker that does not speak this window's protocol: a clear failure, never a restart loop."""
        self._retire_locked("it does not speak this window's protocol")
        self._fail_locked(
            events,
            f"The loader process does not speak this window's protocol (version {PROTOCOL_VERSION}): "
            f"{why}. It comes from another installation of Checkpoint Inspector; reinstall or restart it.",
            "\n".join(worker.stderr_tail) or None,
        )

    def _on_worker_exit(self, worker: _Worker, returncode: int) -> None:
        with self._lock:
            job, worker.job = worker.job, None
            if worker is self._worker:
                self._ready = False  # nothing more is sent to this process
        if job is not None:
            job.request.discard_leftovers()  # the process is gone: nothing writes there any more
        events: list[Event] = []
        with self._lock:
            if worker.killed_for_cancel and job is not None and not self._closed:
                events.append(Cancelled(job.id))
            if worker is self._worker and not self._closed:
                self._on_current_worker_exit_locked(worker, job, returncode, events)
        self._emit(events)

    def _on_current_worker_exit_locked(
        self, worker: _Worker, job: _Job | None, returncode: int, events: list[Event]
    ) -> None:
        self._worker = None
        self._retired.append(worker)
        how = _describe_exit(returncode, worker.stopped_because)
        details = "\n".join(worker.stderr_tail) or None
        if job is not None:
            message = (
                f"The loader process stopped ({how}) while {job.request.subject()}; "
                "the window is fine and the loader was restarted."
            )
            events.append(Failure(job.id, ErrorKind.CRASHED, message, details, {"returncode": returncode}))
        if not worker.was_ready:
            self._start_failures += 1
        if not worker.was_ready and (returncode >= 0 or self._start_failures >= MAX_START_FAILURES):
            self._fail_locked(events, f"The loader process could not start ({how}).", details)
        else:
            self._spawn_locked(events)
            events.append(WorkerRestarted(how))

    def _emit(self, events: list[Event]) -> None:
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                import logging  # (only for a handler's failure: the window starts without it)

                logging.getLogger(__name__).exception(
                    "the engine event handler failed on %s", type(event).__name__
                )


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


def _stop_timer(worker: _Worker) -> None:
    """Call off the cancel timer (it is joined later, outside the client's lock)."""
    timer, worker.cancel_timer = worker.cancel_timer, None
    worker.spent_timers = [t for t in worker.spent_timers if t.is_alive()]
    if timer is not None:
        timer.cancel()
        worker.spent_timers.append(timer)


def _join_timers(worker: _Worker) -> None:
    for timer in worker.spent_timers:
        if timer is not threading.current_thread():
            timer.join(timeout=_STOP_TIMEOUT_S)


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
