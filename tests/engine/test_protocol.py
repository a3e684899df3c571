"""The engine protocol's one codec: every message survives the trip through a frame, whatever its
strings hold; what does not belong to the protocol is refused with a sentence."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core.export_plan import ExportPlan, KeyRule
from inspector.core.load_options import AS_SAVED_ELSE_CPU, LoadOptions
from inspector.engine.protocol import (
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    Cancel,
    Cancelled,
    DiffReply,
    DiffRequest,
    ErrorKind,
    ExportReply,
    ExportRequest,
    Failure,
    LoadReply,
    LoadRequest,
    Message,
    Progress,
    ProtocolError,
    Ready,
    Result,
    SliceReply,
    SliceRequest,
    StatsAllReply,
    StatsAllRequest,
    StatsReply,
    StatsRequest,
    Submit,
    decode,
    encode,
    read_message,
)

#: Any string a key, a global or a file name can hold: lone surrogates (undecodable bytes) included.
texts = st.text(st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"])))
names = texts.filter(bool)
ints = st.integers(min_value=-(2**63), max_value=2**63)
counts = st.integers(min_value=0, max_value=2**62)
jobs = st.integers(min_value=1, max_value=2**53)
tensor_paths = st.lists(st.one_of(texts, st.integers(min_value=-(2**31), max_value=2**31))).map(tuple)
devices = st.sampled_from(["cpu", "meta", "cuda", "cuda:0", "cuda:1", "mps"])
map_locations = st.one_of(
    st.none(), devices, st.just(AS_SAVED_ELSE_CPU), st.dictionaries(devices, devices, min_size=1)
)
load_options = st.builds(
    LoadOptions,
    map_location=map_locations,
    weights_only=st.booleans(),
    mmap=st.booleans(),
    allowed_globals=st.lists(texts).map(tuple),
    pickle_module=st.one_of(st.none(), st.sampled_from(["pickle", "dill"])),
)
key_rules = st.one_of(
    st.builds(KeyRule, st.just("strip-prefix"), texts),
    st.builds(KeyRule, st.just("rename"), texts, texts),
)
plans = st.builds(
    ExportPlan,
    source=texts,
    target=names,
    format=st.sampled_from(["pth", "pth-legacy", "safetensors", "hf-sharded"]),
    device=map_locations,
    dtype=st.one_of(st.none(), st.sampled_from(["float16", "bfloat16", "float32"])),
    convert_only=st.lists(texts).map(tuple),
    subtree=st.one_of(st.none(), names),
    include=st.lists(texts).map(tuple),
    exclude=st.lists(texts).map(tuple),
    strip_prefixes=st.lists(texts).map(tuple),
    renames=st.lists(key_rules).map(tuple),
    metadata=st.dictionaries(texts, texts),
    force=st.booleans(),
    allowed_globals=st.lists(texts).map(tuple),
    trusted=st.booleans(),
    temp_path=names,
    only_keys=st.lists(texts).map(tuple),
    max_shard_size=counts,
)
optional_ints = st.one_of(st.none(), st.integers(min_value=-8, max_value=8))
requests = st.one_of(
    st.builds(LoadRequest, texts, load_options),
    st.builds(ExportRequest, plans),
    st.builds(StatsRequest, texts, tensor_paths, st.none(), st.one_of(st.none(), counts)),
    st.builds(StatsRequest, texts, st.none(), texts, st.one_of(st.none(), counts)),
    st.builds(
        SliceRequest,
        texts,
        st.one_of(st.none(), tensor_paths),
        texts,
        st.one_of(st.none(), st.tuples(optional_ints, optional_ints)),
        st.lists(counts).map(tuple),
        counts,
        counts,
        counts,
        counts,
    ),
    st.builds(StatsAllRequest, texts),
    st.builds(DiffRequest, texts, texts),
)
#: Plain data as JSON carries it (its floats finite: NaN is not equal to itself).
plain = st.recursive(
    st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=False, allow_infinity=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
messages = st.one_of(
    st.builds(Submit, jobs, requests),
    st.builds(Cancel, jobs),
    st.builds(
        Ready,
        ints,
        st.lists(texts).map(tuple),
        texts,
        st.lists(texts).map(tuple),
        st.integers(min_value=0, max_value=2**31),
    ),
    st.builds(Result, jobs, st.dictionaries(texts, plain, max_size=6)),
    st.builds(
        Failure,
        jobs,
        st.sampled_from(ErrorKind),
        texts,
        st.one_of(st.none(), texts),
        st.dictionaries(texts, plain, max_size=4),
    ),
    st.builds(Progress, jobs, counts, counts, st.one_of(st.none(), texts)),
    st.builds(Cancelled, jobs),
)


def _trip(message: Message) -> Message | None:
    return read_message(io.BytesIO(encode(message)))


@settings(max_examples=400, deadline=None)
@given(messages)
def test_every_message_comes_back_equal_through_a_frame(message: Message) -> None:
    frame = encode(message)
    assert frame[4:].isascii()  # the JSON is ASCII: a lone surrogate travels as an escape
    assert _trip(message) == message


def test_every_request_and_error_kind_has_its_one_wire_name() -> None:
    assert sorted(REQUEST_TYPES) == ["diff", "export", "load", "slice", "stats", "stats-all"]
    assert {k.value for k in ErrorKind} >= {
        "cuda-unavailable", "device-unavailable", "weights-only", "not-found", "unreadable",
        "not-a-checkpoint", "corrupt", "torchscript", "refused-global", "missing-global", "bad-options",
        "dangerous", "unsafe", "engine-unavailable", "crashed", "cancelled", "bad-request", "disk-full",
        "verify-failed", "refused", "failed", "other",
    }  # fmt: skip
    assert ErrorKind.of("from a later version") is ErrorKind.OTHER
    assert ErrorKind.WEIGHTS_ONLY == "weights-only"  # the engine's exceptions name kinds as text


def test_only_the_requests_that_check_between_tensors_stop_without_a_restart() -> None:
    checks = {kind for kind, cls in REQUEST_TYPES.items() if cls.checks_for_cancel}
    assert checks == {"export", "stats", "stats-all", "diff"}


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ({"type": "hello"}, "'hello' is not a message of protocol version"),
        ({"event": "ready", "devices": []}, "None is not a message"),  # the unversioned protocol
        ({"type": "result", "data": {}}, "“job” must be a whole number"),
        ({"type": "result", "job": True, "data": {}}, "“job” must be a whole number"),
        ({"type": "progress", "job": 1, "done": "half"}, "“done” must be a whole number"),
        ({"type": "ready", "version": "2"}, "“version” must be a whole number"),
    ],
)
def test_what_is_not_a_message_is_refused_with_a_sentence(frame: dict[str, Any], why: str) -> None:
    with pytest.raises(ProtocolError, match=why) as refused:
        decode(frame)
    assert refused.value.job is None


@pytest.mark.parametrize(
    ("request_", "body", "why"),
    [
        ("frobnicate", {}, "does not know the request 'frobnicate'"),
        ("load", {"options": {}}, "“path” must be text"),
        ("stats", {"path": "a.pth"}, "names no tensor"),
        ("stats", {"path": "a.pth", "key": "w", "bins": 1.5}, "“bins” must be a whole number"),
        ("slice", {"path": "a.pth", "tensor_path": [["nested"]]}, "“tensor_path” must be a list"),
        ("slice", {"path": "a.pth", "key": "w", "index": [0, "1"]}, "“index” must be a list of whole"),
        ("diff", {"a": "x.pth"}, "“b” must be text"),
        ("export", {"plan": {"target": "o.pth"}}, "the export request is malformed"),
    ],
)
def test_a_malformed_request_is_refused_naming_its_job(request_: str, body: dict[str, Any], why: str) -> None:
    with pytest.raises(ProtocolError, match=why) as refused:
        decode({"type": "job", "job": 12, "request": request_, "body": body})
    assert refused.value.job == 12


def test_ready_carries_the_protocol_version_and_a_frame_without_one_reads_as_version_zero() -> None:
    ready = Ready(PROTOCOL_VERSION, ("cpu", "meta"), "2.13", ("pickle",), 4321)
    assert json.loads(encode(ready)[4:])["version"] == PROTOCOL_VERSION
    older = decode({"type": "ready", "devices": ["cpu"], "pid": 1})
    assert isinstance(older, Ready) and older.version == 0


def test_replies_read_what_the_engine_answers() -> None:
    load = LoadReply.from_json(
        {"devices": [{"path": ["model", 0, "k\udc80"], "device": "meta"}], "seconds": 0.5,
         "torch_version": "2.13", "moved": {"cuda:1": "cpu"}, "warnings": ["w"]}
    )  # fmt: skip
    assert load.devices == {("model", 0, "k\udc80"): "meta"}
    assert (load.seconds, load.moved, load.warnings) == (0.5, {"cuda:1": "cpu"}, ("w",))
    export = ExportReply.from_json(
        {"target": "o.pth", "format": "pth", "tensors": 3, "bytes": 2**40, "seconds": 1,
         "values_dropped": ["epoch (an object)"]}
    )  # fmt: skip
    assert (export.tensors, export.bytes, export.values_dropped) == (3, 2**40, ("epoch (an object)",))
    every = StatsAllReply.from_json(
        {"path": "a.pth", "tensors": [{"key": "w", "path": ["w"], "stats": {"nan": 1}},
                                     {"key": "q", "path": ["q"], "error": "unreadable"}],
         "flagged": ["w"], "bytes": 8, "seconds": 0.1}
    )  # fmt: skip
    assert every.stats == {("w",): {"nan": 1}} and every.errors == {("q",): "unreadable"}
    assert every.flagged == ("w",)
    stats = StatsReply.from_json({"key": "w", "path": ["w"], "max": 3.0})
    assert (stats.key, stats.path, stats.stats["max"]) == ("w", ("w",), 3.0)
    page = SliceReply.from_json({"key": "w", "path": ["w"], "values": [[1, 2]], "rows": 1, "cols": 2})
    assert (page.values, page.rows, page.cols) == ([[1, 2]], 1, 2)
    diff = DiffReply.from_json({"a": "a.pth", "b": "b.pth", "summary": "1 equal", "identical": True,
                                "prefix_a": "module.", "tensors": [{"status": "equal"}]})  # fmt: skip
    assert (diff.identical, diff.prefix_a, diff.prefix_b, diff.tensors) == (
        True, "module.", "", [{"status": "equal"}]
    )  # fmt: skip


def test_a_failure_names_the_globals_and_the_device_it_suggests() -> None:
    failure = Failure(1, ErrorKind.WEIGHTS_ONLY, "m", extra={"globals": ["a.B"], "suggest": "cpu"})
    assert (failure.globals, failure.suggest) == (["a.B"], "cpu")
    assert (Failure(2, ErrorKind.OTHER, "m").globals, Failure(2, ErrorKind.OTHER, "m").suggest) == ([], None)


def test_the_protocol_module_never_imports_torch() -> None:
    code = (
        "import sys, inspector.engine.protocol; "
        "bad = {'torch', 'numpy', 'safetensors', 'PySide6'}; "
        "sys.exit(sorted(bad & set(sys.modules)) or 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
