"""What every format reader shares: the state of one read, its budgets, and the finished index.

A read of one file (or of one layout of several files) keeps one ``ReadState``: the globals its
pickles reference (each occurrence with its byte offset, capped per global), one budget of time
and work for all its pickles, the ways other readers would read the file differently, and the
parts that could not be read. A reader is a ``FileReader``: a content probe on the first bytes and
a read step that ends in ``ReadState.index``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, Protocol

from .errors import CheckpointError, DamagedCheckpointError
from .formats import Format
from .globals_policy import classify, torch_lookup
from .model import (
    CheckpointIndex,
    GlobalClass,
    GlobalRef,
    Node,
    TensorInfo,
    TensorTotals,
    dtype_and_device_counts,
    list_tensors,
    tensor_totals,
)
from .numpy_pickles import (
    JUDGED_CALLS,
    array_call_problem,
    builds_dtype,
    dtype_state_problem,
    implied_globals,
)
from .torch_pickle import TorchPickleReader
from .tree import TreeBuilder
from .unpickler import Budget, Call, Global, Instance, Limits, NeedMoreData, PickleError, SafeUnpickler

MAX_PICKLE_BYTES = 1 << 30  # a data.pkl above 1 GiB is not something torch.save writes
MAX_LISTED_PER_GLOBAL = 1000  # occurrences of one global listed one by one; the rest are counted
MAX_DISTINCT_GLOBALS = 10_000  # distinct globals listed; past it only dangerous ones are added
MAX_ARCHIVE_PICKLE_BYTES = 2 << 30  # bytes of pickle members read from one archive, all together
MAX_WARNINGS_OF_A_KIND = 20
FIRST_READ = 16 << 20  # bytes of a pickle stream read at first; more only when its pickle needs them

#: Functions that unpickle their bytes argument: a payload can hide a second pickle inside the first.
_NESTED_LOADS = frozenset(
    {"pickle.loads", "_pickle.loads", "pickle._loads", "dill.loads", "dill._dill.loads",
     "cloudpickle.loads", "torch.load", "torch.serialization.load", "marshal.loads"}
)  # fmt: skip
_MAX_NESTING = 4
#: The calls the read looks at before torch's hooks do: a nested pickle, or a numpy array or dtype.
_WATCHED_CALLS = _NESTED_LOADS | JUDGED_CALLS


class ByteSource(Protocol):
    """Where a file's bytes come from: an open local file, or a remote file read by ranges.

    The readers only seek and read. A source may also say how much of a pickle stream to read at
    first (``first_read``): a remote one asks for less than a local file, whose reads are cheap.
    """

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def read(self, n: int = -1, /) -> bytes: ...


def first_read(f: object) -> int:
    """Bytes of a pickle stream read at first from ``f``: its own ``first_read``, else ``FIRST_READ``."""
    wanted = getattr(f, "first_read", None)
    return wanted if isinstance(wanted, int) and wanted > 0 else FIRST_READ


@dataclass(frozen=True, slots=True)
class OpenedFile:
    """One regular file being read: its handle, path, size and first bytes."""

    f: BinaryIO
    path: str
    size: int
    head: bytes  # the first 4 KiB, which the readers' probes look at


class ReadState:
    """Shared state of one read: the globals seen, the torch hooks and the budgets."""

    def __init__(self, name: str, size: int = 0) -> None:
        self.name = name
        self.size = size  # bytes of the file on disk, which its budget grows with
        self.globals: list[GlobalRef] = []
        self.torch = TorchPickleReader()
        self._listed: dict[tuple[str, str, str], tuple[int, GlobalClass]] = {}
        self.unlisted = 0  # occurrences beyond MAX_LISTED_PER_GLOBAL of one global
        self.nested_warnings: list[str] = []
        self._depth = 0
        self.storage_spans: dict[str, tuple[int, int]] = {}
        self.byteorder = "little"
        self.budget = Budget.for_file(size)  # shared by every pickle of the file
        self.differentials: list[str] = []  # how other readers would read the file otherwise
        self.unread: list[str] = []  # parts that were never looked at: the file is not shown as safe
        self.archive_bytes_left = MAX_ARCHIVE_PICKLE_BYTES

    def reset(self) -> None:
        """Start over on the same file (a longer read of it): the time already spent still counts."""
        self.globals.clear()
        self._listed.clear()
        self.unlisted = 0
        self.nested_warnings.clear()
        self.torch = TorchPickleReader()
        self.storage_spans = {}
        self.byteorder = "little"
        self.budget = Budget.for_file(self.size)
        self.differentials.clear()
        self.unread.clear()
        self.archive_bytes_left = MAX_ARCHIVE_PICKLE_BYTES

    def damaged(self, exc: CheckpointError) -> CheckpointError:
        """The error to raise for a file that could not be read to the end: with the globals and
        differentials met before, so "damaged" never hides "dangerous"."""
        if isinstance(exc, DamagedCheckpointError):
            return exc
        if self.globals or self.differentials:
            return DamagedCheckpointError(exc.message, exc.details, list(self.globals), self.differentials)
        return exc

    def record(self, g: Global, which: str) -> None:
        """List one occurrence; past the caps only dangerous globals not yet listed are added."""
        key = (g.module, g.name, which)
        seen = self._listed.get(key)
        if seen is None:
            verdict = classify(g.module, g.name)
            if len(self._listed) >= MAX_DISTINCT_GLOBALS and verdict is not GlobalClass.DANGEROUS:
                self.unlisted += 1
                return
            self._listed[key] = (1, verdict)
        elif seen[0] < MAX_LISTED_PER_GLOBAL:
            verdict = seen[1]
            self._listed[key] = (seen[0] + 1, verdict)
        else:
            self.unlisted += 1
            return
        module, name = torch_lookup(g.module, g.name)  # the name torch looks up, judged as written too
        written = g.qualname if (module, name) != (g.module, g.name) else ""
        self.globals.append(GlobalRef(module, name, verdict, which, g.offset, written))

    def unpickle(
        self, data: bytes, start: int, which: str, limits: Limits | None = None, *, torch: bool = True
    ) -> tuple[Any, int]:
        """One pickle of ``data`` from ``start``: (object, end offset); its globals are recorded."""
        hooks = self.torch if torch else TorchPickleReader()

        def reduce_hook(func: Any, args: Any) -> Any:
            if isinstance(func, Global) and func.qualname in _WATCHED_CALLS:
                watched(func, args)
            return hooks.reduce_hook(func, args)

        def watched(func: Global, args: Any) -> None:
            if (
                func.qualname in _NESTED_LOADS
                and isinstance(args, tuple)
                and args
                and isinstance(args[0], (bytes, bytearray))
                and self._depth < _MAX_NESTING
            ):
                self._depth += 1
                try:
                    self.scan_only(bytes(args[0]), 0, f"{which} › pickle passed to {func.qualname}",
                                   self.nested_warnings)  # fmt: skip
                finally:
                    self._depth -= 1
            # what torch needs for this call, named or not
            for module, name in implied_globals(func.qualname, args):
                self.record(Global(module, name, func.offset), which)
            self.check_call(func, args, which)

        def on_build(obj: Call | Instance, state: Any, pos: int) -> None:
            self.check_build(obj, state, f"{which} byte {pos}")

        def on_new(obj: Instance) -> None:
            if isinstance(obj.cls, Global) and obj.cls.qualname in JUDGED_CALLS:
                self.check_call(obj.cls, obj.args, which)

        up = SafeUnpickler(
            data, start, name=which, on_global=lambda g: self.record(g, which), on_build=on_build,
            on_new=on_new,
            reduce_hook=reduce_hook, hooked_calls=_WATCHED_CALLS | hooks.REDUCED_CALLS,
            persistent_load=hooks.persistent_load, limits=limits,
            budget=self.budget,
        )  # fmt: skip
        try:
            return up.load()
        except PickleError as exc:
            error = _UnpickleError(f"{self.name} cannot be read: {exc.message}", exc.details)
            error.unscanned, error.inner = exc.unscanned, exc.message.rstrip(".")
            raise error from None

    def check_build(self, obj: Call | Instance, state: Any, where: str) -> None:
        """A state given to a numpy dtype that numpy would not derive itself makes the file dangerous:
        numpy takes it unchecked, and an array of that dtype then reads memory it does not own."""
        func = obj.func if isinstance(obj, Call) else obj.cls
        if not isinstance(func, Global) or not builds_dtype(func.qualname):
            return
        problem = dtype_state_problem(func.qualname, obj.args, state, obj.state)
        if problem is not None:
            self._numpy_differential(
                f"{where}: a numpy dtype whose pickled state numpy does not check ({problem}): an array "
                "of it would read memory it does not own, or raw bytes as Python objects"
            )

    def check_call(self, func: Global, args: Any, which: str) -> None:
        """A numpy array built otherwise than numpy's pickles build it makes the file dangerous: it
        would be made over raw bytes or uninitialized memory (said with the call's place in ``which``)."""
        problem = array_call_problem(func.qualname, args)
        if problem is not None:
            self._numpy_differential(
                f"{which} byte {func.offset}: {problem}; the array would read memory it does not own"
            )

    def _numpy_differential(self, sentence: str) -> None:
        said = [d for d in self.differentials if "read memory it does not own" in d]
        if sentence not in said and len(said) < MAX_WARNINGS_OF_A_KIND:
            self.differentials.append(sentence)

    def scan_only(self, data: bytes, start: int, which: str, warnings: list[str]) -> int | None:
        """Read a further pickle for its globals only; a damaged one is a warning. Its end, or None.

        A pickle a limit of this reader stopped before its end (even for the globals-only scan)
        counts as unread: the file is then never shown as safe.
        """
        try:
            _, end = self.unpickle(data, start, which, Limits(max_bytes=128 << 20), torch=False)
        except NeedMoreData:
            warnings.append(f"{which} stops in the middle of a pickle (its globals so far are listed)")
            return None
        except _UnpickleError as exc:
            warnings.append(f"{which} could not be read to the end ({exc.message})")
            if exc.unscanned:
                self.unread.append(exc.inner)
            return None
        except CheckpointError as exc:
            warnings.append(f"{which} could not be read to the end ({exc.message})")
            return None
        return end

    def index(self, file: OpenedFile, fmt: Format, top: Any, warnings: list[str]) -> CheckpointIndex:
        """The index of a file whose pickles were read: the tree of ``top`` and what the read met."""
        warnings.extend(self.nested_warnings)
        warnings.extend(self.torch.all_problems())
        if self.unlisted:
            warnings.append(
                f"the pickles reference globals {self.unlisted:,} more times than are listed one by one"
            )
        builder = TreeBuilder()
        root = builder.build(top)
        warnings.extend(builder.warnings)
        index = finish_index(file.path, fmt, root, self.globals, file.size, warnings)
        index.storage_spans, index.byteorder = self.storage_spans, self.byteorder
        index.differentials = self.differentials
        return index


class _UnpickleError(CheckpointError):
    """A pickle of the file could not be read; ``unscanned`` when part of it was never looked at."""

    unscanned = False
    inner = ""  # the reason, without the file's name


class FileReader(abc.ABC):
    """The reader of one format of single files: a probe of the first bytes, and a read step."""

    #: The formats its read yields.
    formats: ClassVar[tuple[Format, ...]]

    @abc.abstractmethod
    def probe(self, head: bytes, size: int) -> bool:
        """Whether this reader takes a file that starts with ``head`` (its first 4 KiB)."""

    @abc.abstractmethod
    def read(self, file: OpenedFile, state: ReadState, warnings: list[str]) -> CheckpointIndex:
        """The file's index; ``CheckpointError`` with a sentence about the file when it cannot be read."""


def limited(items: list[str], what: str) -> list[str]:
    """The first few warnings of one kind, and a count of the rest."""
    if len(items) <= MAX_WARNINGS_OF_A_KIND:
        return items
    rest = len(items) - MAX_WARNINGS_OF_A_KIND
    return [*items[:MAX_WARNINGS_OF_A_KIND], f"{rest:,} more {what}"]


def finish_index(
    path: str,
    fmt: Format,
    root: Node,
    globals_: list[GlobalRef],
    size: int,
    warnings: list[str],
    totals: TensorTotals | None = None,
) -> CheckpointIndex:
    """The index of a read tree: its totals, and a warning for each tensor past its storage's end.
    ``totals``: the reader's own, when each tensor is its own storage, filled exactly (safetensors)."""
    rows, only_tensors = list_tensors(root)
    dtypes, devices = dtype_and_device_counts(rows)
    if totals is None:
        beyond = [f"{node.key or 'the tensor'} reaches beyond the end of its storage"
                  for node in rows if _beyond_storage(node.tensor)]  # fmt: skip
        warnings.extend(limited(beyond, "tensors reach beyond the end of their storage"))
        totals = tensor_totals(rows)
    return CheckpointIndex(
        path=path, format=fmt, root=root, globals=globals_, file_size=size, warnings=warnings,
        total_params=totals.params, total_bytes=totals.nbytes, tensor_count=totals.count, listed_rows=rows,
        counted_dtypes=dtypes, only_tensors=only_tensors, counted_devices=devices,
    )  # fmt: skip


def _beyond_storage(t: TensorInfo | None) -> bool:
    """Whether a tensor's last element lies past the end of the storage it views."""
    assert t is not None
    shape, stride = t.shape, t.stride
    if len(shape) == 1 and len(stride) == 1:  # most tensors: the sum below, at once
        extent = t.storage_offset + (shape[0] - 1) * stride[0]
    elif len(shape) == 2 and len(stride) == 2:
        extent = t.storage_offset + (shape[0] - 1) * stride[0] + (shape[1] - 1) * stride[1]
    else:
        extent = t.storage_offset + sum((s - 1) * st for s, st in zip(shape, stride, strict=True))
    return bool(t.numel and t.storage_key and (extent + 1) * t.itemsize > t.storage_nbytes)


def read_growing(f: BinaryIO, size: int, parse: Callable[[bytes], Any], name: str) -> Any:
    """Run ``parse`` on the file's first bytes, giving it more while it runs out of data.

    A length field that reaches past the end of the file is refused at once: the read never grows
    on the file's own claims, only on bytes the file really has.
    """
    want = min(size, first_read(f))
    while True:
        f.seek(0)
        data = f.read(want)
        try:
            return parse(data)
        except NeedMoreData as more:
            if want >= size or more.needed > size:
                raise CheckpointError(f"{name} is truncated: it stops in the middle of a pickle.") from None
            if want >= MAX_PICKLE_BYTES or more.needed > MAX_PICKLE_BYTES:
                raise CheckpointError(f"{name} has a pickle larger than 1 GiB; it is not read.") from None
            want = min(size, max(want * 4, more.needed), MAX_PICKLE_BYTES)
        finally:
            del data
