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

from inspector.core.peek import peek
from inspector.engine.client import EngineClient, loaded_devices


class _WritesToStdout:
    """Unpickling it (trusted loads only) writes straight to file descriptor 1."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.write, (1, b"\x00\x00\x00\x05garbage from the checkpoint\n"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("engine-files")
    plain = folder / "plain.pth"
    torch.save({"model": {"w": torch.ones(2)}, "steps": [torch.zeros(1)]}, plain)
    noisy = folder / "noisy.pth"
    torch.save({"w": torch.ones(1), "noise": _WritesToStdout()}, noisy)
    stuck = folder / "stuck.pth"
    os.mkfifo(stuck)  # opening it for reading blocks until a writer comes: a job that never ends
    return {"plain": plain, "noisy": noisy, "stuck": stuck}


def test_client_module_never_imports_torch() -> None:
    code = (
        "import sys, inspector.engine.client; "
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
    assert event["event"] == "result"
    assert loaded_devices(event["result"]) == {("model", "w"): "meta", ("steps", 0): "meta"}
    assert event["result"]["torch_version"] == torch.__version__


def test_a_failed_load_is_an_error_event_with_a_sentence(engine: Any, tmp_path: Path, saved_on: Any) -> None:
    with saved_on("cuda:1"):
        torch.save({"w": torch.ones(2)}, tmp_path / "gpu.pth")
    event = engine.load(tmp_path / "gpu.pth")
    assert event["event"] == "error"
    expected = "device-unavailable" if torch.cuda.is_available() else "cuda-unavailable"
    assert event["kind"] == expected
    assert event["extra"]["devices"] == ["cuda:1"]
    assert "“gpu.pth”" in event["message"]
    assert event["details"]


def test_jobs_run_one_after_another_in_order(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    jobs = [
        engine.client.submit("load", {"path": str(files["plain"]), "options": {}}),
        engine.client.submit("load", {"path": str(files["plain"] / "x"), "options": {}}),
        engine.client.submit("load", {"path": str(files["plain"]), "options": {"mmap": False}}),
    ]
    answers = [engine.events.wait_for(lambda e: e.get("event") in {"result", "error"}) for _ in jobs]
    assert [a["job"] for a in answers] == jobs
    assert [a["event"] for a in answers] == ["result", "error", "result"]


def test_an_unknown_request_is_answered_with_an_error(engine: Any) -> None:
    event = engine.run("frobnicate", {})
    assert event["event"] == "error"
    assert event["kind"] == "bad-request"


def test_prints_from_a_trusted_checkpoint_cannot_corrupt_the_protocol(
    engine: Any, files: dict[str, Path]
) -> None:
    pid = engine.client.pid
    event = engine.load(files["noisy"], weights_only=False)
    assert event["event"] == "result"
    assert loaded_devices(event["result"]) == {("w",): "cpu"}
    assert engine.client.pid == pid  # no restart happened


def test_cancel_a_queued_job_drops_it(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    stuck = engine.client.submit("load", {"path": str(files["stuck"]), "options": {}})
    queued = engine.client.submit("load", {"path": str(files["plain"]), "options": {}})
    engine.client.cancel(queued)
    event = engine.events.wait_job(queued)
    assert event["kind"] == "cancelled"
    assert event["message"] == "Loading was cancelled."
    engine.client.cancel(stuck)
    assert engine.events.wait_job(stuck)["kind"] == "cancelled"
    # Neither job answers again, and the next one runs on the restarted worker.
    assert engine.load(files["plain"])["event"] == "result"
    assert sum(1 for e in engine.events.seen if e.get("job") == queued) == 1
    assert sum(1 for e in engine.events.seen if e.get("job") == stuck) == 1


def test_cancel_a_running_job_restarts_the_worker(engine: Any, files: dict[str, Path], reaped: Any) -> None:
    engine.ready()
    old_pid = engine.client.pid
    job = engine.client.submit("load", {"path": str(files["stuck"]), "options": {}})
    waiting = engine.client.submit("load", {"path": str(files["plain"]), "options": {}})
    engine.client.cancel(job)
    assert engine.events.wait_job(job)["kind"] == "cancelled"
    assert engine.client.pid != old_pid
    reaped(old_pid)
    # The job queued behind it runs once the new worker is ready.
    assert engine.events.wait_job(waiting)["event"] == "result"


def test_a_worker_killed_mid_job_is_reported_and_replaced(
    engine: Any, files: dict[str, Path], reaped: Any
) -> None:
    engine.ready()
    old_pid = engine.client.pid
    job = engine.client.submit("load", {"path": str(files["stuck"]), "options": {}})
    os.kill(old_pid, signal.SIGKILL)
    event = engine.events.wait_job(job)
    assert event["event"] == "error"
    assert event["kind"] == "crashed"
    assert "SIGKILL" in event["message"]
    assert "“stuck.pth”" in event["message"]
    assert "restarted" in event["message"]
    assert engine.events.wait_for(lambda e: e.get("event") == "worker-restarted")
    assert engine.client.pid not in {None, old_pid}
    reaped(old_pid)
    assert engine.load(files["plain"])["event"] == "result"


def test_a_worker_bus_error_mid_job_is_reported(engine: Any, files: dict[str, Path]) -> None:
    engine.ready()
    job = engine.client.submit("load", {"path": str(files["stuck"]), "options": {}})
    os.kill(engine.client.pid, signal.SIGBUS)
    event = engine.events.wait_job(job)
    assert event["kind"] == "crashed"
    assert "killed by SIGBUS" in event["message"]
    assert engine.load(files["plain"])["event"] == "result"


def test_close_while_busy_leaves_no_process_or_thread(
    event_log: Any, files: dict[str, Path], threads_of: Any
) -> None:
    client = EngineClient(event_log)
    client.start()
    pid = client.pid
    assert pid is not None
    event_log.wait_ready(pid)
    client.submit("load", {"path": str(files["stuck"]), "options": {}})
    client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert threads_of(pid) == []
    assert client.pid is None
    client.close()  # a second close is harmless
    with pytest.raises(RuntimeError):
        client.submit("load", {"path": str(files["plain"])})


def test_close_before_ready_stops_the_starting_worker(event_log: Any, threads_of: Any) -> None:
    client = EngineClient(event_log)
    client.start()
    pid = client.pid
    assert pid is not None
    client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert threads_of(pid) == []
    assert [e for e in event_log.pending() if e.get("event") == "worker-restarted"] == []


def test_a_worker_that_cannot_start_fails_its_jobs(event_log: Any, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho no torch here >&2\nexit 3\n")
    broken.chmod(0o755)
    client = EngineClient(event_log, python=str(broken))
    client.start()
    job = client.submit("load", {"path": "x.pth", "options": {}})
    try:
        failed = event_log.wait_for(lambda e: e.get("event") == "engine-failed")
        assert "exit status 3" in failed["message"]
        assert "no torch here" in failed["details"]
        error = event_log.wait_job(job)
        assert error["kind"] == "engine-unavailable"
    finally:
        client.close()
    assert [t for t in set(threading.enumerate()) - before if t.name.startswith("engine-")] == []


def test_a_missing_python_fails_without_raising(event_log: Any, tmp_path: Path) -> None:
    client = EngineClient(event_log, python=str(tmp_path / "no-such-python"))
    client.start()
    try:
        assert event_log.wait_for(lambda e: True)["event"] == "engine-failed"
        assert event_log.wait_job(client.submit("load", {"path": "x"}))["kind"] == ("engine-unavailable")
    finally:
        client.close()


def test_a_worker_dying_while_idle_is_replaced_quietly(
    engine: Any, files: dict[str, Path], reaped: Any
) -> None:
    engine.ready()
    old_pid = engine.client.pid
    os.kill(old_pid, signal.SIGTERM)
    restarted = engine.events.wait_for(lambda e: e.get("event") == "worker-restarted")
    assert "SIGTERM" in restarted["reason"]
    reaped(old_pid)
    assert engine.load(files["plain"])["event"] == "result"
    assert [e for e in engine.events.seen if e.get("kind") == "crashed" and "SIGTERM" in e["message"]] == []


def test_a_key_with_a_lone_surrogate_loads_under_the_static_reads_path(engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "surrogate.pth"
    torch.save({"k\udc80": {"w": torch.ones(2)}, "plain": torch.zeros(1)}, path)
    static_paths = {node.path for node in peek(path).tensor_nodes()}
    pid = engine.client.pid
    event = engine.load(path, map_location="meta")
    assert event["event"] == "result", event
    assert set(loaded_devices(event["result"])) == static_paths == {("k\udc80", "w"), ("plain",)}
    assert engine.client.pid == pid  # the worker answered; it did not die


def test_statistics_of_a_surrogate_key_in_a_file_with_an_undecodable_name(
    engine: Any, tmp_path: Path
) -> None:
    """The request carries the file name and the key out, the answer brings the same key back."""
    path = tmp_path / os.fsdecode(b"w\xff.pth")
    torch.save({"k\udc80": torch.arange(4.0)}, path)
    (node,) = peek(path).tensor_nodes()
    event = engine.run("stats", {"path": str(path), "tensor_path": list(node.path)})
    assert event["event"] == "result", event
    assert (event["result"]["key"], tuple(event["result"]["path"])) == (node.key, node.path)
    assert event["result"]["max"] == 3.0


_FAKE_WORKER = """#!{python}
import os, sys
from inspector.engine.client import encode_frame, read_frame

out, inp = os.fdopen(1, "wb", buffering=0), os.fdopen(0, "rb", buffering=0)
ready = {{"event": "ready", "devices": ["cpu"], "torch_version": "0", "pickle_modules": [],
         "pid": os.getpid()}}
out.write(encode_frame(ready))
if read_frame(inp) is not None:
    if {mode!r} == "garbage":
        out.write(b"\\x00\\x00\\x00\\x03{{{{{{")
    else:
        out.close()
    inp.read()  # stay alive until the client ends this process
"""


@pytest.mark.parametrize(
    ("mode", "reason"), [("garbage", "could not be read"), ("linger", "without exiting")]
)
def test_a_worker_the_client_stops_itself_is_not_blamed_on_memory(
    event_log: Any, tmp_path: Path, mode: str, reason: str
) -> None:
    fake = tmp_path / "python"
    fake.write_text(_FAKE_WORKER.format(python=sys.executable, mode=mode))
    fake.chmod(0o755)
    client = EngineClient(event_log, python=str(fake))
    client.start()
    try:
        event_log.wait_ready(client.pid)
        event = event_log.wait_job(client.submit("load", {"path": "x.pth", "options": {}}))
        assert event["kind"] == "crashed"
        assert reason in event["message"]
        assert "memory" not in event["message"]
        assert "SIGKILL" not in event["message"]
    finally:
        client.close()
