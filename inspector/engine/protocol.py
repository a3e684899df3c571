"""The engine protocol: what the window and the worker process say to each other, and its one codec.

Standard library and core data only (the GUI process imports it; it never pays for torch). A frame
is a 4-byte big-endian length and an ASCII JSON object, so every string crosses unchanged, lone
surrogates included. The window sends ``Submit`` (a job id and one frozen request) and ``Cancel``;
the worker answers with ``Ready`` first (carrying ``PROTOCOL_VERSION``), then for each job any
number of ``Progress`` and exactly one ``Result``, ``Failure`` or ``Cancelled``. Every failure has
one ``ErrorKind``. ``encode`` and ``decode`` are the only place messages become JSON and back.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeAlias

from inspector.core.host_memory import DeviceMemory
from inspector.core.load_options import LoadOptions
from inspector.core.model import PathPart
from inspector.core.stats_options import DEFAULT_BINS
from inspector.core.value_text import Cell

if TYPE_CHECKING:  # the export plan is imported by the export's own messages, so a window starts without it
    from inspector.core.export_plan import ExportPlan

#: Raised on either side when the other speaks another version; bump on any change to a message.
PROTOCOL_VERSION = 3

#: Frame header: the JSON body's length, 4 bytes big-endian.
HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 1 << 30

TensorPath: TypeAlias = tuple[PathPart, ...]


class ProtocolError(ValueError):
    """A frame that is not a message of this protocol; ``job`` when it names one (to answer it)."""

    def __init__(self, message: str, job: int | None = None) -> None:
        super().__init__(message)
        self.job = job


class ErrorKind(str, Enum):
    """Every failure the engine (or the client on its behalf) can report."""

    # torch.load and the load options
    CUDA_UNAVAILABLE = "cuda-unavailable"  # saved on CUDA, none here (``extra``: devices, suggest)
    DEVICE_UNAVAILABLE = "device-unavailable"  # saved on a device this machine lacks (same extra)
    WEIGHTS_ONLY = "weights-only"  # weights-only loading refused globals (``extra``: globals)
    NOT_FOUND = "not-found"
    UNREADABLE = "unreadable"
    NOT_A_CHECKPOINT = "not-a-checkpoint"
    CORRUPT = "corrupt"
    TORCHSCRIPT = "torchscript"  # holds TorchScript code, which torch.jit.load would run
    REFUSED_GLOBAL = "refused-global"  # a global that is never allowed was asked for
    MISSING_GLOBAL = "missing-global"  # an allowed global cannot be imported here
    BAD_OPTIONS = "bad-options"
    DANGEROUS = "dangerous"  # the safety policy holds the file back unless it is trusted
    # exports
    UNSAFE = "unsafe"  # the export source is not handed to torch unless trusted
    REFUSED = "refused"  # the plan or the paths do not allow the export
    DISK_FULL = "disk-full"
    VERIFY_FAILED = "verify-failed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # the process and the protocol
    ENGINE_UNAVAILABLE = "engine-unavailable"  # the worker could not start
    CRASHED = "crashed"  # the worker died while running the job
    BAD_REQUEST = "bad-request"  # the request could not be sent or understood
    OTHER = "other"

    @classmethod
    def of(cls, value: object) -> ErrorKind:
        """The kind named ``value``; ``OTHER`` for a name this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER


# -- frames ------------------------------------------------------------------------------------


def encode_frame(obj: Mapping[str, Any]) -> bytes:
    """One frame: the length header and the JSON of ``obj`` in ASCII (escapes carry every string).

    ``TypeError`` or ``ValueError`` for an object JSON cannot hold.
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


# -- reading plain data strictly ---------------------------------------------------------------


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"“{name}” must be text")
    return value


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"“{name}” must be text")
    return value


def _int(data: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"“{name}” must be a whole number")
    return value


def _opt_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else _int(data, name)


def _strs(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"“{name}” must be a list of text")
    return tuple(value)


def _tensor_path(value: object, name: str = "tensor_path") -> TensorPath:
    if not isinstance(value, list) or not all(
        isinstance(p, (str, int)) and not isinstance(p, bool) for p in value
    ):
        raise ProtocolError(f"“{name}” must be a list of keys and indices")
    return tuple(value)


def _object(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise ProtocolError(f"“{name}” must be an object")
    return value


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- requests ----------------------------------------------------------------------------------


def _file_name(path: str) -> str:
    return os.path.basename(path.rstrip(os.sep)) or path


class _RequestBase:
    """What every request says about itself: its wire name and how a running job of it stops."""

    #: The request's name on the wire.
    kind: ClassVar[str]
    #: True when the worker checks for a cancel between tensors, so cancelling need not restart it.
    checks_for_cancel: ClassVar[bool] = False
    #: True for a request about one tensor's values, which a user waits for while looking at it:
    #: the window runs it in a second worker rather than behind a load, export or diff.
    beside_long_jobs: ClassVar[bool] = False

    def subject(self) -> str:
        """What the engine was doing, for a sentence about a crash ("while loading “x.pth”")."""
        return f"working on a {self.kind} request"

    def discard_leftovers(self) -> None:
        """Remove what a job killed part-way left on disk (nothing, for jobs that only read)."""


@dataclass(frozen=True)
class LoadRequest(_RequestBase):
    """``torch.load`` a file as the options say; answered with a ``LoadReply``."""

    kind: ClassVar[str] = "load"
    path: str
    options: LoadOptions = field(default_factory=LoadOptions)

    def body(self) -> dict[str, Any]:
        return {"path": self.path, "options": self.options.to_json()}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> LoadRequest:
        return cls(_str(body, "path"), LoadOptions.from_json(dict(body.get("options") or {})))

    def reply(self, data: Mapping[str, Any]) -> LoadReply:
        return LoadReply.from_json(data)

    def subject(self) -> str:
        return f"loading “{_file_name(self.path)}”"


@dataclass(frozen=True)
class ExportRequest(_RequestBase):
    """Write a remapped, verified copy as the plan says; answered with an ``ExportReply``."""

    kind: ClassVar[str] = "export"
    checks_for_cancel: ClassVar[bool] = True
    plan: ExportPlan

    def body(self) -> dict[str, Any]:
        return {"plan": self.plan.to_json()}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ExportRequest:
        from inspector.core.export_plan import ExportPlan

        return cls(ExportPlan.from_json(_object(body, "plan")))

    def reply(self, data: Mapping[str, Any]) -> ExportReply:
        return ExportReply.from_json(data)

    def subject(self) -> str:
        return f"exporting “{_file_name(self.plan.source)}”"

    def discard_leftovers(self) -> None:
        from inspector.core.export_plan import discard_partial

        discard_partial(self.plan)  # the temporary file or shard-set folder, never the target


@dataclass(frozen=True)
class StatsRequest(_RequestBase):
    """Statistics and a histogram of one tensor, named by container path or by key."""

    kind: ClassVar[str] = "stats"
    checks_for_cancel: ClassVar[bool] = True
    beside_long_jobs: ClassVar[bool] = True
    path: str
    tensor_path: TensorPath | None = None
    key: str | None = None
    bins: int | None = DEFAULT_BINS  # None: no histogram

    def body(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tensor_path": None if self.tensor_path is None else list(self.tensor_path),
            "key": self.key,
            "bins": self.bins,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> StatsRequest:
        tensor_path, key = _tensor_ref(body)
        return cls(_str(body, "path"), tensor_path, key, _opt_int(body, "bins"))

    def reply(self, data: Mapping[str, Any]) -> StatsReply:
        return StatsReply.from_json(data)


@dataclass(frozen=True)
class SliceRequest(_RequestBase):
    """A page of the 2-D slice of one tensor: ``axes`` down and across (None: the first two it has),
    ``index`` the position on every other axis."""

    kind: ClassVar[str] = "slice"
    beside_long_jobs: ClassVar[bool] = True
    path: str
    tensor_path: TensorPath | None = None
    key: str | None = None
    axes: tuple[int | None, int | None] | None = None
    index: tuple[int, ...] = ()
    row_start: int = 0
    row_count: int = 100
    col_start: int = 0
    col_count: int = 100

    def body(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "tensor_path": None if self.tensor_path is None else list(self.tensor_path),
            "key": self.key,
            "axes": None if self.axes is None else list(self.axes),
            "index": list(self.index),
            "row_start": self.row_start,
            "row_count": self.row_count,
            "col_start": self.col_start,
            "col_count": self.col_count,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SliceRequest:
        tensor_path, key = _tensor_ref(body)
        raw_axes = body.get("axes")
        axes: tuple[int | None, int | None] | None = None
        if raw_axes is not None:
            if not isinstance(raw_axes, list) or len(raw_axes) != 2:
                raise ProtocolError("“axes” must be two axes")
            row, col = ({"a": a} for a in raw_axes)
            axes = (_opt_int(row, "a"), _opt_int(col, "a"))
        index = body.get("index") or []
        if not isinstance(index, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in index):
            raise ProtocolError("“index” must be a list of whole numbers")
        return cls(
            _str(body, "path"), tensor_path, key, axes, tuple(index),
            _int(body, "row_start", 0), _int(body, "row_count", 100),
            _int(body, "col_start", 0), _int(body, "col_count", 100),
        )  # fmt: skip

    def reply(self, data: Mapping[str, Any]) -> SliceReply:
        return SliceReply.from_json(data)


@dataclass(frozen=True)
class StatsAllRequest(_RequestBase):
    """Statistics (no histograms) of every tensor of one file; answered with a ``StatsAllReply``."""

    kind: ClassVar[str] = "stats-all"
    checks_for_cancel: ClassVar[bool] = True
    path: str

    def body(self) -> dict[str, Any]:
        return {"path": self.path}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> StatsAllRequest:
        return cls(_str(body, "path"))

    def reply(self, data: Mapping[str, Any]) -> StatsAllReply:
        return StatsAllReply.from_json(data)

    def subject(self) -> str:
        return f"computing statistics of “{_file_name(self.path)}”"


@dataclass(frozen=True)
class DiffRequest(_RequestBase):
    """Compare every tensor of ``a`` with its counterpart in ``b``; answered with a ``DiffReply``."""

    kind: ClassVar[str] = "diff"
    checks_for_cancel: ClassVar[bool] = True
    a: str
    b: str

    def body(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DiffRequest:
        return cls(_str(body, "a"), _str(body, "b"))

    def reply(self, data: Mapping[str, Any]) -> DiffReply:
        return DiffReply.from_json(data)

    def subject(self) -> str:
        return f"comparing “{_file_name(self.a)}” with “{_file_name(self.b)}”"


Request: TypeAlias = LoadRequest | ExportRequest | StatsRequest | SliceRequest | StatsAllRequest | DiffRequest
REQUEST_TYPES: dict[str, type[Request]] = {
    cls.kind: cls
    for cls in (LoadRequest, ExportRequest, StatsRequest, SliceRequest, StatsAllRequest, DiffRequest)
}


def _tensor_ref(body: Mapping[str, Any]) -> tuple[TensorPath | None, str | None]:
    raw = body.get("tensor_path")
    tensor_path = None if raw is None else _tensor_path(raw)
    key = _opt_str(body, "key")
    if tensor_path is None and key is None:
        raise ProtocolError("the request names no tensor (“key” or “tensor_path”)")
    return tensor_path, key


# -- replies: what a ``Result`` carries, read as the window needs it ----------------------------


@dataclass(frozen=True)
class LoadReply:
    """Where ``torch.load`` put each tensor (by the static read's container paths), how long it took."""

    devices: Mapping[TensorPath, str]
    seconds: float | None = None
    torch_version: str | None = None
    #: Saved device → where it went instead, when this machine lacks it.
    moved: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadReply:
        devices = {
            _tensor_path(entry.get("path"), "path"): str(entry.get("device"))
            for entry in data.get("devices") or []
            if isinstance(entry, dict)
        }
        moved = data.get("moved")
        return cls(
            devices=devices,
            seconds=_float_or_none(data.get("seconds")),
            torch_version=_opt_str(data, "torch_version"),
            moved={str(k): str(v) for k, v in moved.items()} if isinstance(moved, dict) else {},
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
        )


@dataclass(frozen=True)
class ExportReply:
    """What an export wrote (a reply exists only for a copy that verified)."""

    target: str
    format: str
    tensors: int
    bytes: int
    seconds: float | None = None
    storages: int = 0
    aliases: Mapping[str, str] = field(default_factory=dict)
    cloned: Mapping[str, str] = field(default_factory=dict)
    values_kept: tuple[str, ...] = ()
    values_in_metadata: tuple[str, ...] = ()
    values_dropped: tuple[str, ...] = ()  # "key (why)"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportReply:
        def pairs(name: str) -> dict[str, str]:
            value = data.get(name)
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

        return cls(
            target=str(data.get("target") or ""),
            format=str(data.get("format") or ""),
            tensors=_int(data, "tensors", 0),
            bytes=_int(data, "bytes", 0),
            seconds=_float_or_none(data.get("seconds")),
            storages=_int(data, "storages", 0),
            aliases=pairs("aliases"),
            cloned=pairs("cloned"),
            values_kept=_strs(data, "values_kept"),
            values_in_metadata=_strs(data, "values_in_metadata"),
            values_dropped=_strs(data, "values_dropped"),
        )


@dataclass(frozen=True)
class StatsReply:
    """One tensor's statistics: ``stats`` is the engine's plain data (numbers, histogram, key, path)."""

    key: str
    path: TensorPath
    stats: dict[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatsReply:
        return cls(str(data.get("key") or ""), _tensor_path(data.get("path") or [], "path"), dict(data))


@dataclass(frozen=True)
class SliceReply:
    """A page of values (rows of cells) and the size of the whole 2-D slice."""

    key: str
    path: TensorPath
    values: Sequence[Sequence[Cell]]
    rows: int
    cols: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SliceReply:
        values = data.get("values") or []
        if not isinstance(values, list) or not all(isinstance(row, list) for row in values):
            raise ProtocolError("“values” must be rows of values")
        return cls(
            str(data.get("key") or ""),
            _tensor_path(data.get("path") or [], "path"),
            values,
            _int(data, "rows", 0),
            _int(data, "cols", 0),
        )


@dataclass(frozen=True)
class StatsAllReply:
    """Statistics of every tensor by container path; ``flagged`` keys hold NaN or ±Inf."""

    path: str
    stats: Mapping[TensorPath, dict[str, Any]]
    errors: Mapping[TensorPath, str]
    flagged: tuple[str, ...]
    bytes: int
    seconds: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StatsAllReply:
        stats: dict[TensorPath, dict[str, Any]] = {}
        errors: dict[TensorPath, str] = {}
        for row in data.get("tensors") or []:
            if not isinstance(row, dict):
                continue
            path = _tensor_path(row.get("path") or [], "path")
            if isinstance(row.get("stats"), dict):
                stats[path] = row["stats"]
            elif row.get("error"):
                errors[path] = str(row["error"])
        return cls(
            path=str(data.get("path") or ""),
            stats=stats,
            errors=errors,
            flagged=tuple(str(k) for k in data.get("flagged") or ()),
            bytes=_int(data, "bytes", 0),
            seconds=_float_or_none(data.get("seconds")),
        )


@dataclass(frozen=True)
class DiffReply:
    """A comparison: the summary line, the key prefix one side carries, a row per tensor pair."""

    a: str
    b: str
    identical: bool
    summary: str
    prefix_a: str
    prefix_b: str
    prefix_note: str
    seconds: float | None
    tensors: Sequence[Mapping[str, Any]]  # one plain-data row per tensor (status, keys, numbers)
    differences: tuple[str, ...] = ()  # why A and B are not identical, one phrase per reason

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiffReply:
        return cls(
            a=str(data.get("a") or ""),
            b=str(data.get("b") or ""),
            identical=bool(data.get("identical")),
            summary=str(data.get("summary") or ""),
            differences=_strs(data, "differences"),
            prefix_a=str(data.get("prefix_a") or ""),
            prefix_b=str(data.get("prefix_b") or ""),
            prefix_note=str(data.get("prefix_note") or ""),
            seconds=_float_or_none(data.get("seconds")),
            tensors=[row for row in data.get("tensors") or [] if isinstance(row, dict)],
        )


# -- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    """Window → worker: run ``request`` as job ``job``."""

    job: int
    request: Request


@dataclass(frozen=True)
class Cancel:
    """Window → worker: stop job ``job`` at its next check (a job that already ended ignores it)."""

    job: int


@dataclass(frozen=True)
class Ready:
    """Worker → window, once torch is imported: what it speaks and what it can load onto."""

    version: int
    devices: tuple[str, ...]
    torch_version: str
    pickle_modules: tuple[str, ...]
    pid: int
    memory: tuple[DeviceMemory, ...] = ()  # each accelerator's free and total memory at start-up


@dataclass(frozen=True)
class Result:
    """A job's answer: plain data its request reads (``request.reply(data)``)."""

    job: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    """A job failed: a sentence about the user's file, what kind of failure, plain-data ``extra``."""

    job: int
    kind: ErrorKind
    message: str
    details: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def globals(self) -> list[str]:
        """The globals a weights-only refusal (or a refused or missing global) names."""
        return [str(g) for g in self.extra.get("globals") or []]

    @property
    def suggest(self) -> str | None:
        """A map location that would load the file here (device failures only)."""
        value = self.extra.get("suggest")
        return str(value) if value else None


@dataclass(frozen=True)
class Progress:
    """How far a job is: ``done`` of ``total`` (bytes), and the tensor it reached."""

    job: int
    done: int
    total: int
    key: str | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


@dataclass(frozen=True)
class Cancelled:
    """A job stopped because it was cancelled; whatever it wrote is gone."""

    job: int


@dataclass(frozen=True)
class EngineFailed:
    """Said by the client, never on the wire: the worker could not start, so jobs cannot run."""

    message: str
    details: str | None = None


@dataclass(frozen=True)
class WorkerRestarted:
    """Said by the client, never on the wire: a worker ended and a new one is starting."""

    reason: str


#: What the worker says about a job, each carrying its id.
JobEvent: TypeAlias = Result | Failure | Progress | Cancelled
#: Everything an ``EngineClient`` reports to its callback.
Event: TypeAlias = Ready | JobEvent | EngineFailed | WorkerRestarted
#: What travels in frames.
Message: TypeAlias = Submit | Cancel | Ready | Result | Failure | Progress | Cancelled
EventCallback = Callable[[Event], None]


def encode(message: Message) -> bytes:
    """The frame of ``message``; ``TypeError``/``ValueError`` for data JSON cannot hold."""
    return encode_frame(to_json(message))


def to_json(message: Message) -> dict[str, Any]:
    """The plain-data form of ``message`` (what ``decode`` reads back)."""
    if isinstance(message, Submit):
        request = message.request
        return {"type": "job", "job": message.job, "request": request.kind, "body": request.body()}
    if isinstance(message, Cancel):
        return {"type": "cancel", "job": message.job}
    if isinstance(message, Ready):
        return {
            "type": "ready",
            "version": message.version,
            "devices": list(message.devices),
            "torch_version": message.torch_version,
            "pickle_modules": list(message.pickle_modules),
            "pid": message.pid,
            "memory": [
                {"device": m.device, "free": m.free, "total": m.total, "name": m.name} for m in message.memory
            ],
        }
    if isinstance(message, Result):
        return {"type": "result", "job": message.job, "data": dict(message.data)}
    if isinstance(message, Failure):
        return {
            "type": "failure",
            "job": message.job,
            "kind": message.kind.value,
            "message": message.message,
            "details": message.details,
            "extra": dict(message.extra),
        }
    if isinstance(message, Progress):
        return {"type": "progress", "job": message.job, "done": message.done, "total": message.total,
                "key": message.key}  # fmt: skip
    if isinstance(message, Cancelled):
        return {"type": "cancelled", "job": message.job}
    raise TypeError(f"{type(message).__name__} is not a protocol message")


def _memory(value: object) -> tuple[DeviceMemory, ...]:
    """The devices' memory entries of a ``ready`` frame; an entry that is not one is left out."""
    out: list[DeviceMemory] = []
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, dict):
            continue
        device, free, total, name = (entry.get(k) for k in ("device", "free", "total", "name"))
        free_bytes, total_bytes = _count(free), _count(total)
        if isinstance(device, str) and free_bytes is not None and (total is None or total_bytes is not None):
            out.append(DeviceMemory(device, free_bytes, total_bytes, name if isinstance(name, str) else ""))
    return tuple(out)


def _count(value: object) -> int | None:
    """A byte count (an int ≥ 0, not a bool), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def decode(obj: Mapping[str, Any]) -> Message:
    """The message a frame's object holds; ``ProtocolError`` (naming the job where it can) if none."""
    kind = obj.get("type")
    if kind == "ready":
        return Ready(
            version=_int(obj, "version", 0),
            devices=_strs(obj, "devices"),
            torch_version=str(obj.get("torch_version") or ""),
            pickle_modules=_strs(obj, "pickle_modules"),
            pid=_int(obj, "pid", 0),
            memory=_memory(obj.get("memory")),
        )
    if kind not in _JOB_MESSAGES:
        raise ProtocolError(f"{kind!r} is not a message of protocol version {PROTOCOL_VERSION}")
    job = _int(obj, "job")
    if kind == "job":
        name = obj.get("request")
        cls = REQUEST_TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ProtocolError(f"the loader does not know the request {name!r}", job)
        body = obj.get("body")
        try:
            return Submit(job, cls.from_body(body if isinstance(body, dict) else {}))
        except (ProtocolError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"the {name} request is malformed: {exc}", job) from None
    if kind == "cancel":
        return Cancel(job)
    if kind == "result":
        return Result(job, _object(obj, "data"))
    if kind == "failure":
        extra = obj.get("extra")
        return Failure(
            job,
            ErrorKind.of(obj.get("kind")),
            str(obj.get("message") or ""),
            _opt_str(obj, "details"),
            extra if isinstance(extra, dict) else {},
        )
    if kind == "progress":
        return Progress(job, _int(obj, "done", 0), _int(obj, "total", 0), _opt_str(obj, "key"))
    return Cancelled(job)


_JOB_MESSAGES = frozenset({"job", "cancel", "result", "failure", "progress", "cancelled"})


def read_message(stream: IO[bytes]) -> Message | None:
    """The next message on ``stream``; ``None`` at a clean end; ``ProtocolError``, ``ValueError`` or
    ``EOFError`` for a broken one."""
    obj = read_frame(stream)
    return None if obj is None else decode(obj)
