"""The worker's side of the protocol, in-process: frames, requests, the answers, and cancels."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from inspector.core.export_plan import ExportPlan
from inspector.core.load_options import LoadOptions
from inspector.engine import inspect_jobs
from inspector.engine.protocol import (
    Cancel,
    Cancelled,
    DiffRequest,
    ErrorKind,
    ExportRequest,
    Failure,
    LoadRequest,
    Message,
    Progress,
    Result,
    StatsAllRequest,
    Submit,
    decode,
    encode,
    encode_frame,
    read_frame,
)
from inspector.engine.stats import StatsCancelled
from inspector.engine.worker import HANDLERS, JobControl, _Inbox, answer, answer_frame, ready


def _control(job: int, cancelled: bool = False) -> JobControl:
    return JobControl(job, lambda _event: None, lambda: cancelled)


def test_frames_are_a_big_endian_length_and_json() -> None:
    frame = encode_frame({"type": "ready", "name": "κλειδί"})
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert json.loads(frame[4:]) == {"type": "ready", "name": "κλειδί"}
    stream = io.BytesIO(frame + encode_frame({"job": 2}))
    assert read_frame(stream) == {"type": "ready", "name": "κλειδί"}
    assert read_frame(stream) == {"job": 2}
    assert read_frame(stream) is None  # a clean end between frames


@pytest.mark.parametrize("text", ["k\udc80", "\ud800alone", "\udcff.pth", "a\x00b", "\x1b[2K\r\n"])
def test_a_frame_carries_any_string_back_unchanged(text: str) -> None:
    """Keys and file names may hold lone surrogates (undecodable bytes); a frame must carry them."""
    frame = encode_frame({"path": [text], "name": text})
    assert read_frame(io.BytesIO(frame)) == {"path": [text], "name": text}


def test_an_answer_that_cannot_be_encoded_becomes_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(HANDLERS, LoadRequest, lambda request, control: {"devices": {object()}})
    frame = read_frame(io.BytesIO(answer_frame(LoadRequest("x.pth"), _control(8))))
    assert frame is not None
    failure = decode(frame)
    assert isinstance(failure, Failure)
    assert (failure.job, failure.kind) == (8, ErrorKind.OTHER)
    assert "could not be sent" in failure.message


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (encode_frame({"a": 1})[:-2], EOFError),  # cut inside a frame
        ((3).to_bytes(4, "big") + b"[1]", ValueError),  # not an object
        ((2**31).to_bytes(4, "big"), ValueError),  # larger than allowed
    ],
)
def test_broken_frames_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_frame(io.BytesIO(data))


def test_a_load_request_is_answered_with_its_result(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(1)}, path)
    request = LoadRequest(str(path), LoadOptions(map_location="meta"))
    result = answer(request, _control(4))
    assert isinstance(result, Result) and result.job == 4
    assert request.reply(result.data).devices == {("w",): "meta"}
    assert decode(json.loads(encode(result)[4:])) == result


def test_a_failed_load_is_answered_with_kind_message_details_and_extra(tmp_path: Path) -> None:
    failure = answer(LoadRequest(str(tmp_path / "no.pth")), _control(5))
    assert isinstance(failure, Failure)
    assert (failure.job, failure.kind) == (5, ErrorKind.NOT_FOUND)
    assert "“no.pth”" in failure.message
    assert failure.details
    assert failure.extra == {}


def _inbox(*frames: bytes) -> list[Submit | Failure | int]:
    """What the worker's reader thread makes of ``frames``, in order (it stops at their end)."""
    inbox = _Inbox(io.BytesIO(b"".join(frames)))
    inbox.read()
    out: list[Submit | Failure | int] = []
    while not inbox.jobs.empty():
        out.append(inbox.jobs.get_nowait())
    return out


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "job", "job": 6, "request": "Explode", "body": {}},
        {"type": "job", "job": 6, "request": "load", "body": {}},  # no path
        {"type": "job", "job": 6, "request": "slice", "body": {"path": "x", "key": "w", "axes": [0]}},
        {"type": "job", "job": 6, "request": "export", "body": {"plan": {"target": "o.pth"}}},
    ],
)
def test_an_unknown_or_malformed_request_is_answered_not_raised(frame: dict[str, object]) -> None:
    first, end = _inbox(encode_frame(frame))
    assert isinstance(first, Failure)
    assert (first.job, first.kind) == (6, ErrorKind.BAD_REQUEST)
    assert first.message.startswith("The ") and first.message.endswith(".")
    assert end == 0  # the stream ended cleanly: the worker exits 0


def test_a_frame_that_names_no_job_stops_the_worker() -> None:
    assert _inbox(encode_frame({"type": "hello"})) == [2]


def test_a_cancel_marks_only_the_job_it_names_while_it_is_open(tmp_path: Path) -> None:
    submit = Submit(3, StatsAllRequest(str(tmp_path)))
    inbox = _Inbox(io.BytesIO(b"".join(encode(m) for m in (submit, Cancel(3), Cancel(99)))))
    inbox.read()
    assert inbox.jobs.get_nowait() == submit
    assert inbox.cancelled(3) and not inbox.cancelled(99)
    inbox.done(3)
    assert not inbox.cancelled(3)


def _many_tensors(path: Path) -> Path:
    torch.save({f"w{i}": torch.full((64,), float(i)) for i in range(6)}, path)
    return path


def _cancel_after(calls: int) -> tuple[list[int], JobControl]:
    """A job control whose cancel check says stop from its ``calls``-th question on."""
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) >= calls

    return asked, JobControl(1, lambda _event: None, cancelled)


@pytest.mark.parametrize("fmt", ["pth", "safetensors", "hf-sharded"])
def test_an_export_cancelled_between_tensors_answers_cancelled_and_leaves_nothing(
    tmp_path: Path, fmt: str
) -> None:
    source = _many_tensors(tmp_path / "m.pth")
    target = tmp_path / {"pth": "o.pth", "safetensors": "o.safetensors", "hf-sharded": "o"}[fmt]
    asked, control = _cancel_after(3)
    event = answer(ExportRequest(ExportPlan(str(source), str(target), fmt, max_shard_size=600)), control)
    assert event == Cancelled(1)
    assert len(asked) == 3  # it went on until the check said stop, then stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


@pytest.fixture
def mapped_files_closed() -> Iterator[None]:
    yield
    inspect_jobs.close_mapped_files()


def test_statistics_of_every_tensor_stop_between_tensors(mapped_files_closed: None, tmp_path: Path) -> None:
    source = _many_tensors(tmp_path / "m.pth")
    keys: list[str] = []
    with pytest.raises(StatsCancelled):
        inspect_jobs.answer(
            StatsAllRequest(str(source)), lambda _done, _total, key: keys.append(key), lambda: len(keys) >= 2
        )
    assert keys == ["w0", "w1"]
    assert answer(StatsAllRequest(str(source)), _control(1, cancelled=True)) == Cancelled(1)


def test_a_diff_stops_when_cancelled(tmp_path: Path) -> None:
    a = _many_tensors(tmp_path / "a.pth")
    b = _many_tensors(tmp_path / "b.pth")
    assert answer(DiffRequest(str(a), str(b)), _control(1, cancelled=True)) == Cancelled(1)


def test_progress_goes_out_ten_times_a_second_and_always_at_the_last_step() -> None:
    sent: list[Message] = []
    now = [1000.0]
    control = JobControl(7, sent.append, clock=lambda: now[0])
    for done in range(1, 101):
        control.progress(done, 100, f"k{done}")
        now[0] += 1 / 32  # a step every 31.25 ms: every fourth goes out
    assert [p.done for p in sent if isinstance(p, Progress)] == [*range(1, 100, 4), 100]
    assert sent[-1] == Progress(7, 100, 100, "k100")


def test_devices_start_with_cpu_and_meta_and_list_each_cuda_device() -> None:
    devices = list(ready().devices)
    assert devices[:2] == ["cpu", "meta"]
    assert [d for d in devices if d.startswith("cuda")] == [
        f"cuda:{i}" for i in range(torch.cuda.device_count())
    ]


def test_the_worker_lists_its_devices_at_start_up_without_importing_the_export() -> None:
    """The ready message (devices, torch, pickle modules) is all start-up pays for."""
    code = (
        "import sys; from inspector.engine.worker import ready; print(ready().devices);"
        "print(sorted(m for m in sys.modules if m.startswith('inspector.engine.')))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    devices, loaded = (ast.literal_eval(line) for line in result.stdout.splitlines())
    assert devices[:2] == ("cpu", "meta")
    export_modules = {
        f"inspector.engine.{p.stem}"
        for p in (root / "inspector" / "engine").glob("*.py")
        if p.stem.startswith("export") or p.stem.endswith("_writer")
    }
    assert "inspector.engine.export" in export_modules and "inspector.engine.devices" in loaded
    assert export_modules & set(loaded) == set()


def test_a_refused_request_keeps_the_names_it_quotes_as_they_were() -> None:
    (failure, _end) = _inbox(
        encode_frame({"type": "job", "job": 2, "request": "Load-Everything", "body": {}})
    )
    assert isinstance(failure, Failure)
    assert failure.message == "The loader does not know the request 'Load-Everything'."
