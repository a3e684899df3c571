"""The worker's side of the protocol, in-process: frames, requests and the answers to them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from inspector.core.load_options import LoadOptions
from inspector.engine.client import encode_frame, read_frame
from inspector.engine.worker import HANDLERS, answer_frame, available_devices, handle


def test_frames_are_a_big_endian_length_and_json() -> None:
    frame = encode_frame({"event": "ready", "name": "κλειδί"})
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert json.loads(frame[4:]) == {"event": "ready", "name": "κλειδί"}
    stream = io.BytesIO(frame + encode_frame({"job": 2}))
    assert read_frame(stream) == {"event": "ready", "name": "κλειδί"}
    assert read_frame(stream) == {"job": 2}
    assert read_frame(stream) is None  # a clean end between frames


@pytest.mark.parametrize("text", ["k\udc80", "\ud800alone", "\udcff.pth", "a\x00b", "\x1b[2K\r\n"])
def test_a_frame_carries_any_string_back_unchanged(text: str) -> None:
    """Keys and file names may hold lone surrogates (undecodable bytes); a frame must carry them."""
    frame = encode_frame({"path": [text], "name": text})
    assert read_frame(io.BytesIO(frame)) == {"path": [text], "name": text}


def test_an_answer_that_cannot_be_encoded_becomes_an_error_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(HANDLERS, "load", lambda payload: {"devices": {object()}})
    answer = read_frame(io.BytesIO(answer_frame({"job": 8, "kind": "load", "payload": {}})))
    assert answer is not None
    assert answer["event"] == "error"
    assert answer["job"] == 8
    assert answer["kind"] == "other"
    assert "could not be sent" in answer["message"]


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
    options = LoadOptions(map_location="meta").to_json()
    answer = handle({"job": 4, "kind": "load", "payload": {"path": str(path), "options": options}})
    assert answer["event"] == "result"
    assert answer["job"] == 4
    assert answer["result"]["devices"] == [{"path": ["w"], "device": "meta"}]
    assert json.loads(json.dumps(answer)) == answer


def test_a_failed_load_is_answered_with_kind_message_details_and_extra(tmp_path: Path) -> None:
    answer = handle({"job": 5, "kind": "load", "payload": {"path": str(tmp_path / "no.pth")}})
    assert answer["event"] == "error"
    assert answer["job"] == 5
    assert answer["kind"] == "not-found"
    assert "“no.pth”" in answer["message"]
    assert answer["details"]
    assert answer["extra"] == {}


@pytest.mark.parametrize("request_", [{"job": 6, "kind": "explode"}, {"job": 6}])
def test_an_unknown_request_is_answered_not_raised(request_: dict[str, object]) -> None:
    answer = handle(request_)
    assert answer["event"] == "error"
    assert answer["job"] == 6
    assert answer["kind"] == "bad-request"


def test_a_malformed_load_request_is_an_error_answer() -> None:
    answer = handle({"job": 7, "kind": "load", "payload": {}})
    assert answer["event"] == "error"
    assert answer["kind"] == "other"


def test_devices_start_with_cpu_and_meta_and_list_each_cuda_device() -> None:
    devices = available_devices()
    assert devices[:2] == ["cpu", "meta"]
    assert [d for d in devices if d.startswith("cuda")] == [
        f"cuda:{i}" for i in range(torch.cuda.device_count())
    ]
