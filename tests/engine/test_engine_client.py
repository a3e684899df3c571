"""The engine client and its worker process: jobs, errors, cancel, crashes, and a clean close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.export_plan import ExportPlan
from inspector.core.load_options import LoadOptions
from inspector.core.peek import peek
from inspector.engine.client import EngineClient
from inspector.engine.protocol import (
    PROTOCOL_VERSION,
    Cancelled,
    DiffRequest,
    EngineFailed,
    ErrorKind,
    ExportRequest,
    Failure,
    LoadReply,
    LoadRequest,
    Progress,
    Ready,
    Result,
    StatsAllRequest,
    StatsRequest,
    WorkerRestarted,
)


class _WritesToStdout:
    """Unpickling it (trusted loads only) writes straight to file descriptor 1."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.write, (1, b"\x00\x00\x00\x05garbage from the checkpoint\n"))


class _OpensAPipe:
    """Unpickling it (trusted loads only) opens a FIFO, which blocks until the other end is opened:
    for reading, a ``torch.load`` that never ends; for writing, a sign that torch.load got there."""

    def __init__(self, fifo: Path, mode: str) -> None:
        self.fifo, self.mode = str(fifo), mode

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.fifo, self.mode))


def _load(path: object, **options: Any) -> LoadRequest:
    return LoadRequest(str(path), LoadOptions.from_json(options))


def _devices(event: object) -> dict[tuple[Any, ...], str]:
    assert isinstance(event, Result), event
    return dict(LoadReply.from_json(event.data).devices)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("engine-files")
    plain = folder / "plain.pth"
    torch.save({"model": {"w": torch.ones(2)}, "steps": [torch.zeros(1)]}, plain)
    noisy = folder / "noisy.pth"
    torch.save({"w": torch.ones(1), "noise": _WritesToStdout()}, noisy)
    stuck = folder / "stuck.pth"
    os.mkfifo(stuck)  # opening it for reading blocks until a writer comes: a job that never ends
    blocking = folder / "blocking.pth"  # a trusted torch.load of it says so on "reached", then sticks
    reached, pipe = folder / "reached", folder / "pipe"
    torch.save({"w": torch.ones(4), "reached": _OpensAPipe(reached, "w"), "pipe": _OpensAPipe(pipe, "r")},
               blocking)  # fmt: skip
    os.mkfifo(reached)
    os.mkfifo(pipe)
    many = folder / "many.pth"  # long enough to cancel part-way: each tensor is a step
    torch.save({f"layer{i}.weight": torch.full((2048,), float(i)) for i in range(400)}, many)
    return {"plain": plain, "noisy": noisy, "stuck": stuck, "blocking": blocking, "reached": reached,
            "many": many}  # fmt: skip


def test_client_module_never_imports_torch() -> None:
    code = (
        "import sys, inspector.engine.client, inspector.engine.protocol; "
        "bad = {'torch', 'numpy', 'inspector.engine.loader', 'inspector.engine.worker'}; "
        "sys.exit(sorted(bad & set(sys.modules)) or 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_worker_announces_itself_with_its_devices(engine: Any) -> None:
    engine.ready()
    assert engine.client.ready
    assert engine.client.devices[:2] == ["cpu", "meta"]
    assert engine.client.torch_version == torch.__version__
    assert engine.client.pid != os.getpid()


def test_a_load_job_returns_the_device_of_every_tensor(engine: Any, files: dict[str, Path]) -> None:
    event = engine.load(files["plain"], map_location="meta")
    assert _devices(event) == {("model", "w"): "meta", ("steps", 0): "meta"}
    assert LoadReply.from_json(event.data).torch_version == torch.__version__


def test_a_failed_load_is_a_typed_failure_with_a_sentence(engine: Any, tmp_path: Path, saved_on: Any) -> None:
    with saved_on("cuda:1"):
        torch.save({"w": torch.ones(2)}, tmp_path / "gpu.pth")
    event = engine.load(tmp_path / "gpu.pth")
    assert isinstance(event, Failure)
    expected = ErrorKind.DEVICE_UNAVAILABLE if torch.cuda.is_available() else ErrorKind.CUDA_UNAVAILABLE
    assert event.kind is expected
    assert event.extra["devices"] == ["cuda:1"]
    assert "“gpu.pth”" in event.message
    assert event.details


def test_jobs_run_one_after_another_in_order(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    jobs = [
        engine.client.submit(_load(files["plain"])),
        engine.client.submit(_load(files["plain"] / "x")),
        engine.client.submit(_load(files["plain"], mmap=False)),
    ]
    answers = [engine.events.wait_for(lambda e: isinstance(e, (Result, Failure))) for _ in jobs]
    assert [a.job for a in answers] == jobs
    assert [type(a) for a in answers] == [Result, Failure, Result]


def test_prints_from_a_trusted_checkpoint_cannot_corrupt_the_protocol(
    engine: Any, files: dict[str, Path]
) -> None:
    pid = engine.client.pid
    event = engine.load(files["noisy"], weights_only=False)
    assert _devices(event) == {("w",): "cpu"}
    assert engine.client.pid == pid  # no restart happened


def test_cancel_a_queued_job_drops_it(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    stuck = engine.client.submit(_load(files["stuck"]))
    queued = engine.client.submit(_load(files["plain"]))
    engine.client.cancel(queued)
    assert engine.events.wait_job(queued) == Cancelled(queued)
    engine.client.cancel(stuck)
    assert engine.events.wait_job(stuck) == Cancelled(stuck)
    # Neither job answers again, and the next one runs on the restarted worker.
    assert isinstance(engine.load(files["plain"]), Result)
    assert engine.events.ends_of(queued) == [Cancelled(queued)]
    assert engine.events.ends_of(stuck) == [Cancelled(stuck)]


def test_a_queued_job_withdrawn_ends_without_a_word_and_a_running_one_cannot_be(
    engine: Any, files: dict[str, Path]
) -> None:
    """A job the worker has not started is taken back (to run elsewhere): no event ever comes for
    it. The running one is not, and goes on as it would."""
    engine.ready()
    pid = engine.client.pid
    stuck = engine.client.submit(_load(files["stuck"]))
    queued = engine.client.submit(_load(files["plain"]))
    assert engine.client.withdraw(queued) is True
    assert engine.client.withdraw(queued) is False  # once
    assert engine.client.withdraw(stuck) is False  # running
    engine.client.cancel(stuck)
    assert engine.events.wait_job(stuck) == Cancelled(stuck)
    assert isinstance(engine.load(files["plain"]), Result)  # the next job runs
    assert engine.events.ends_of(queued) == []
    assert engine.client.pid != pid  # the stuck load was ended, as a cancel of a load is


def test_cancel_a_running_load_restarts_the_worker(engine: Any, files: dict[str, Path], reaped: Any) -> None:
    """torch.load cannot stop half-way: a running load is cancelled by ending its process."""
    engine.ready()
    old_pid = engine.client.pid
    job = engine.client.submit(_load(files["stuck"]))
    waiting = engine.client.submit(_load(files["plain"]))
    engine.client.cancel(job)
    assert engine.events.wait_job(job) == Cancelled(job)
    assert engine.client.pid != old_pid
    reaped(old_pid)
    # The job queued behind it runs once the new worker is ready.
    assert isinstance(engine.events.wait_job(waiting), Result)


def _cancel_part_way(engine: Any, request: Any) -> tuple[int, list[Progress]]:
    """Submit ``request``, cancel it once it reported progress, and wait for it to end."""
    engine.ready()
    job = engine.client.submit(request)
    first = engine.events.wait_for(lambda e: isinstance(e, (Progress, Result, Failure)) and e.job == job)
    assert isinstance(first, Progress), first
    engine.client.cancel(job)
    assert engine.events.wait_job(job) == Cancelled(job)
    return job, engine.events.progress_of(job)


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "hf-sharded"])
def test_an_export_cancelled_part_way_stops_in_the_same_worker_and_leaves_nothing(
    engine: Any, files: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    pid = engine.client.pid
    target = tmp_path / ("out" if fmt == "hf-sharded" else f"out.{fmt}")
    plan = ExportPlan(str(files["many"]), str(target), fmt, max_shard_size=80 * 1024)
    job, progress = _cancel_part_way(engine, ExportRequest(plan))
    assert progress[-1].done < progress[-1].total  # it stopped part of the way through
    assert engine.client.pid == pid  # the worker stopped the job itself: no restart
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file or folder
    assert engine.events.ends_of(job) == [Cancelled(job)]
    assert isinstance(engine.load(files["plain"]), Result)  # and the same worker goes on


def test_statistics_of_every_tensor_cancelled_part_way_keep_the_worker(
    engine: Any, files: dict[str, Path]
) -> None:
    pid = engine.client.pid
    job, progress = _cancel_part_way(engine, StatsAllRequest(str(files["many"])))
    assert progress[-1].done < progress[-1].total
    assert engine.client.pid == pid
    assert engine.events.ends_of(job) == [Cancelled(job)]


def test_a_diff_cancelled_part_way_keeps_the_worker(engine: Any, files: dict[str, Path]) -> None:
    pid = engine.client.pid
    job, progress = _cancel_part_way(engine, DiffRequest(str(files["many"]), str(files["many"])))
    assert progress[-1].done < progress[-1].total
    assert engine.client.pid == pid
    assert engine.events.ends_of(job) == [Cancelled(job)]


def test_an_export_stuck_in_torch_load_is_ended_after_the_grace_and_leaves_nothing(
    event_log: Any, files: dict[str, Path], tmp_path: Path, reaped: Any
) -> None:
    """A trusted source whose unpickling never returns (a pth copy is written from what torch.load
    builds): the cancel is never read, so the worker is ended, and nothing of the copy is left."""
    client = EngineClient(event_log, cancel_grace_s=0.5)
    client.start()
    try:
        old_pid = client.pid
        event_log.wait_ready(old_pid)
        target = tmp_path / "out.pth"
        plan = ExportPlan(str(files["blocking"]), str(target), "pth", trusted=True)
        job = client.submit(ExportRequest(plan))
        # Opening "reached" returns once the worker's torch.load opened its other end.
        waiter = threading.Thread(target=lambda: open(files["reached"], "rb").close(), daemon=True)
        waiter.start()
        waiter.join(timeout=60)
        assert not waiter.is_alive(), event_log.pending()
        client.cancel(job)
        assert event_log.wait_job(job) == Cancelled(job)
        assert client.pid not in {None, old_pid}
        reaped(old_pid)
        assert list(tmp_path.iterdir()) == []
        event_log.wait_ready(client.pid)
        assert isinstance(event_log.wait_job(client.submit(_load(files["plain"]))), Result)
    finally:
        client.close()


def test_a_worker_killed_mid_job_is_reported_and_replaced(
    engine: Any, files: dict[str, Path], reaped: Any
) -> None:
    engine.ready()
    old_pid = engine.client.pid
    job = engine.client.submit(_load(files["stuck"]))
    os.kill(old_pid, signal.SIGKILL)
    event = engine.events.wait_job(job)
    assert isinstance(event, Failure)
    assert event.kind is ErrorKind.CRASHED
    assert "SIGKILL" in event.message
    assert "“stuck.pth”" in event.message
    assert "restarted" in event.message
    assert engine.events.wait_for(lambda e: isinstance(e, WorkerRestarted))
    assert engine.client.pid not in {None, old_pid}
    reaped(old_pid)
    assert isinstance(engine.load(files["plain"]), Result)


def test_a_worker_bus_error_mid_job_is_reported(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    job = engine.client.submit(_load(files["stuck"]))
    os.kill(engine.client.pid, signal.SIGBUS)
    event = engine.events.wait_job(job)
    assert isinstance(event, Failure) and event.kind is ErrorKind.CRASHED
    assert "killed by SIGBUS" in event.message
    assert isinstance(engine.load(files["plain"]), Result)


def test_close_while_busy_leaves_no_process_or_thread(
    event_log: Any, files: dict[str, Path], threads_of: Any
) -> None:
    client = EngineClient(event_log)
    client.start()
    pid = client.pid
    assert pid is not None
    event_log.wait_ready(pid)
    client.submit(_load(files["stuck"]))
    client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert threads_of(pid) == []
    assert client.pid is None
    client.close()  # a second close is harmless
    with pytest.raises(RuntimeError):
        client.submit(_load(files["plain"]))


def test_close_while_cancelling_leaves_no_process_or_thread(
    event_log: Any, files: dict[str, Path], threads_of: Any
) -> None:
    client = EngineClient(event_log)
    client.start()
    pid = client.pid
    event_log.wait_ready(pid)
    job = client.submit(StatsAllRequest(str(files["many"])))
    client.cancel(job)  # the cancel timer runs now
    client.close()
    assert threads_of(pid) == []


def test_close_before_ready_stops_the_starting_worker(event_log: Any, threads_of: Any) -> None:
    client = EngineClient(event_log)
    client.start()
    pid = client.pid
    assert pid is not None
    client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert threads_of(pid) == []
    assert [e for e in event_log.pending() if isinstance(e, WorkerRestarted)] == []


def test_a_worker_that_cannot_start_fails_its_jobs(event_log: Any, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho no torch here >&2\nexit 3\n")
    broken.chmod(0o755)
    client = EngineClient(event_log, python=str(broken))
    client.start()
    job = client.submit(_load("x.pth"))
    try:
        failed = event_log.wait_for(lambda e: isinstance(e, EngineFailed))
        assert isinstance(failed, EngineFailed)
        assert "exit status 3" in failed.message
        assert failed.details is not None and "no torch here" in failed.details
        error = event_log.wait_job(job)
        assert isinstance(error, Failure) and error.kind is ErrorKind.ENGINE_UNAVAILABLE
    finally:
        client.close()
    assert [t for t in set(threading.enumerate()) - before if t.name.startswith("engine-")] == []


def test_a_missing_python_fails_without_raising(event_log: Any, tmp_path: Path) -> None:
    client = EngineClient(event_log, python=str(tmp_path / "no-such-python"))
    client.start()
    try:
        assert isinstance(event_log.wait_for(lambda e: True), EngineFailed)
        error = event_log.wait_job(client.submit(_load("x")))
        assert isinstance(error, Failure) and error.kind is ErrorKind.ENGINE_UNAVAILABLE
    finally:
        client.close()


def test_a_worker_dying_while_idle_is_replaced_quietly(
    engine: Any, files: dict[str, Path], reaped: Any
) -> None:
    engine.ready()
    old_pid = engine.client.pid
    os.kill(old_pid, signal.SIGTERM)
    restarted = engine.events.wait_for(lambda e: isinstance(e, WorkerRestarted))
    assert "SIGTERM" in restarted.reason
    reaped(old_pid)
    assert isinstance(engine.load(files["plain"]), Result)
    crashes = [e for e in engine.events.seen if isinstance(e, Failure) and "SIGTERM" in e.message]
    assert crashes == []


def test_a_key_with_a_lone_surrogate_loads_under_the_static_reads_path(engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "surrogate.pth"
    torch.save({"k\udc80": {"w": torch.ones(2)}, "plain": torch.zeros(1)}, path)
    static_paths = {node.path for node in peek(path).tensor_nodes()}
    pid = engine.client.pid
    event = engine.load(path, map_location="meta")
    assert set(_devices(event)) == static_paths == {("k\udc80", "w"), ("plain",)}
    assert engine.client.pid == pid  # the worker answered; it did not die


def test_statistics_of_a_surrogate_key_in_a_file_with_an_undecodable_name(
    engine: Any, tmp_path: Path
) -> None:
    """The request carries the file name and the key out, the answer brings the same key back."""
    path = tmp_path / os.fsdecode(b"w\xff.pth")
    torch.save({"k\udc80": torch.arange(4.0)}, path)
    (node,) = peek(path).tensor_nodes()
    request = StatsRequest(str(path), tensor_path=node.path)
    event = engine.run(request)
    assert isinstance(event, Result), event
    reply = request.reply(event.data)
    assert (reply.key, reply.path) == (node.key, node.path)
    assert reply.stats["max"] == 3.0


_FAKE_WORKER = """#!{python}
import os, sys
from inspector.engine.protocol import Ready, encode, read_frame

out, inp = os.fdopen(1, "wb", buffering=0), os.fdopen(0, "rb", buffering=0)
out.write(encode(Ready({version}, ("cpu",), "0", (), os.getpid())))
if read_frame(inp) is not None:
    if {mode!r} == "garbage":
        out.write(b"\\x00\\x00\\x00\\x03{{{{{{")
    else:
        out.close()
    inp.read()  # stay alive until the client ends this process
"""


def _fake_worker(tmp_path: Path, mode: str = "linger", version: int = PROTOCOL_VERSION) -> str:
    fake = tmp_path / "python"
    fake.write_text(_FAKE_WORKER.format(python=sys.executable, mode=mode, version=version))
    fake.chmod(0o755)
    return str(fake)


@pytest.mark.parametrize(
    ("mode", "reason"), [("garbage", "could not be read"), ("linger", "without exiting")]
)
def test_a_worker_the_client_stops_itself_is_not_blamed_on_memory(
    event_log: Any, tmp_path: Path, mode: str, reason: str
) -> None:
    client = EngineClient(event_log, python=_fake_worker(tmp_path, mode))
    client.start()
    try:
        event_log.wait_ready(client.pid)
        event = event_log.wait_job(client.submit(_load("x.pth")))
        assert isinstance(event, Failure) and event.kind is ErrorKind.CRASHED
        assert reason in event.message
        assert "memory" not in event.message
        assert "SIGKILL" not in event.message
    finally:
        client.close()


def test_a_worker_of_another_protocol_version_is_a_clear_failure_not_a_hang(
    event_log: Any, tmp_path: Path, threads_of: Any
) -> None:
    client = EngineClient(event_log, python=_fake_worker(tmp_path, version=PROTOCOL_VERSION + 1))
    client.start()
    pid = client.pid
    job = client.submit(_load("x.pth"))
    try:
        failed = event_log.wait_for(lambda e: isinstance(e, EngineFailed))
        assert isinstance(failed, EngineFailed)
        assert f"protocol version {PROTOCOL_VERSION + 1}" in failed.message
        assert f"(version {PROTOCOL_VERSION})" in failed.message
        error = event_log.wait_job(job)
        assert isinstance(error, Failure) and error.kind is ErrorKind.ENGINE_UNAVAILABLE
        assert not client.ready
        assert [e for e in event_log.seen if isinstance(e, (Ready, WorkerRestarted))] == []
    finally:
        client.close()
    assert threads_of(pid) == []
