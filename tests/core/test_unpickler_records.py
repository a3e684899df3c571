"""The pickle interpreter's one-step reading of a ``torch.save`` tensor entry changes nothing.

Each pickle is read twice, with the one-step path on and off, and everything a caller can see is
compared: the object graph (with its sharing), the end offset, every hook call with its arguments
and its place among the globals reported, the opcodes and bytes charged to the budget, and the
exception on damaged, truncated or over-limit pickles.
"""

from __future__ import annotations

import dataclasses
import io
import random
import zipfile
from collections import OrderedDict
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core import unpickler
from inspector.core.torch_pickle import TorchPickleReader
from inspector.core.unpickler import Budget, Global, Limits, NeedMoreData, PickleError, SafeUnpickler

DIFFERENTIAL = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = (
    torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
    torch.int32, torch.int8, torch.uint8, torch.bool, torch.complex64,
)  # fmt: skip


def data_pkl(obj: object) -> bytes:
    """The main pickle of ``obj`` as ``torch.save`` writes it."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


class Dump:
    """A structural dump of objects; an object met again (in the graph or a hook call) dumps as a
    reference to its first dump, so sharing (a memo get) is compared too."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, Any]] = {}

    def __call__(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return (type(obj).__name__, obj)
        known = self.seen.get(id(obj))
        if known is not None:
            return ("ref", known[0])
        self.seen[id(obj)] = (len(self.seen), obj)  # the object is kept, so its id is never reused
        if isinstance(obj, (tuple, list)):
            return (type(obj).__name__, tuple(self(x) for x in obj))
        if isinstance(obj, Global):
            return ("Global", obj.module, obj.name, obj.offset)
        if dataclasses.is_dataclass(obj):
            fields = dataclasses.fields(obj)
            return (type(obj).__name__, tuple((f.name, self(getattr(obj, f.name))) for f in fields))
        return ("other", type(obj).__name__, repr(obj))


def read(
    data: bytes, fast: bool, limits: Limits | None = None, hooked: frozenset[str] | None = None
) -> tuple[Any, ...]:
    """Everything a caller sees of one read of ``data`` by the torch hooks (shown the calls of
    ``hooked`` only, when given)."""
    dump = Dump()
    seen: list[Any] = []
    hooks = TorchPickleReader()

    def persistent_load(pid: Any) -> Any:
        seen.append(("persistent_load", dump(pid)))
        result = hooks.persistent_load(pid)
        seen.append(("->", dump(result)))
        return result

    def reduce_hook(func: Any, args: Any) -> Any:
        seen.append(("reduce", dump(func), dump(args)))
        result = hooks.reduce_hook(func, args)
        seen.append(("->", "not handled" if result is SafeUnpickler.NOT_HANDLED else dump(result)))
        return result

    budget = Budget()
    before = unpickler.TENSOR_ENTRIES
    unpickler.TENSOR_ENTRIES = fast
    try:
        up = SafeUnpickler(
            data,
            on_global=lambda g: seen.append(("global", g.qualname, g.offset)),
            reduce_hook=reduce_hook,
            hooked_calls=hooked,
            persistent_load=persistent_load,
            limits=limits,
            budget=budget,
        )
        try:
            obj, end = up.load()
            outcome: tuple[Any, ...] = ("read", dump(obj), end)
        except NeedMoreData as exc:
            outcome = ("more data", exc.needed)
        except PickleError as exc:
            outcome = (type(exc).__name__, str(exc), exc.unscanned)
    finally:
        unpickler.TENSOR_ENTRIES = before
    return outcome, seen, budget.opcodes, budget.nbytes, hooks.all_problems()


def assert_same(
    data: bytes, limits: Limits | None = None, hooked: frozenset[str] | None = None
) -> tuple[Any, ...]:
    slow = read(data, fast=False, limits=limits, hooked=hooked)
    fast = read(data, fast=True, limits=limits, hooked=hooked)
    assert fast[0] == slow[0]  # the object graph, end offset, or the error
    assert fast[1] == slow[1]  # the hook calls and globals, in order, with their arguments
    assert fast[2:] == slow[2:]  # opcodes and bytes charged, problems noted
    return slow


@st.composite
def tensors(draw: st.DrawFn, earlier: list[torch.Tensor]) -> torch.Tensor:
    """A tensor as a state dict holds it: new, a view of one drawn before (a shared storage, an
    offset, a non-contiguous stride), large enough for two- and four-byte sizes, or unusual."""
    kind = draw(st.sampled_from(["new", "new", "new", "view", "large", "grad", "odd"]))
    dtype = draw(st.sampled_from(DTYPES))
    if kind == "view" and earlier:
        base = draw(st.sampled_from(earlier))
        if base.dim() >= 2:
            return base.transpose(0, 1) if draw(st.booleans()) else base[:, ::2]
        if base.dim() == 1 and base.numel() > 1:
            return base[draw(st.integers(0, base.numel() - 1)) :: draw(st.integers(1, 3))]
        return base
    if kind == "large":
        numel = draw(st.sampled_from([255, 256, 300, 65535, 65536, 70_000]))
        t = torch.zeros(numel, dtype=torch.int8)
        return t[draw(st.sampled_from([0, 1, 255, 256, 300])) :] if draw(st.booleans()) else t
    if kind == "grad":
        return torch.zeros(draw(st.integers(0, 4)), 2).requires_grad_()
    if kind == "odd":
        which = draw(st.sampled_from(["4d", "param", "expand"]))
        if which == "4d":
            return torch.zeros(1, 2, 1, 2, dtype=dtype)
        if which == "param":
            return torch.nn.Parameter(torch.zeros(3))
        return torch.zeros(3, 1).expand(3, 4)
    shape = draw(st.lists(st.integers(0, 5), max_size=3))
    t = torch.zeros(shape, dtype=dtype)
    earlier.append(t)
    return t


keys = st.one_of(
    st.text(max_size=12),
    st.text(min_size=250, max_size=300),
    st.sampled_from(["", "\ud800x", "layer.0.weight", "é" * 7]),
)


@st.composite
def state_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A state dict of tensors, with now and then a nested dict or a value that is not a tensor;
    sometimes more than 256 memo entries, so that LONG_BINPUT and LONG_BINGET appear."""
    earlier: list[torch.Tensor] = []
    count = draw(st.one_of(st.integers(0, 12), st.integers(30, 45)))
    out: dict[str, Any] = OrderedDict() if draw(st.booleans()) else {}
    for i in range(count):
        key = draw(keys) + f"#{i}"
        value = draw(st.one_of(
            tensors(earlier), tensors(earlier), tensors(earlier),
            st.integers(-(2**40), 2**40), st.none(), st.text(max_size=5),
            st.dictionaries(st.text(max_size=4), tensors(earlier), max_size=3),
            st.lists(tensors(earlier), max_size=2),
        ))  # fmt: skip
        out[key] = value
    return out


def test_a_state_dict_reads_the_same_and_takes_the_one_step_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A large plain state dict (memo indices past 256, sizes of two and four bytes, 0- to 3-D)
    reads the same, and nearly all of its entries were taken in one step."""
    sd = OrderedDict()
    for i in range(300):
        shapes = [(), (3,), (2, 3), (2, 1, 4), (300,), (70_000,)]
        sd[f"layer.{i}.w"] = torch.zeros(shapes[i % len(shapes)], dtype=DTYPES[i % len(DTYPES)])
    sd["view"] = sd["layer.1.w"][1:]
    sd["t"] = sd["layer.2.w"].t()
    data = data_pkl(sd)
    taken = []
    entry = unpickler._tensor_entry

    def counted(*args: Any) -> Any:
        taken.append(args[1])
        return entry(*args)

    monkeypatch.setattr(unpickler, "_tensor_entry", counted)
    outcome = assert_same(data)[0]
    assert outcome[0] == "read" and outcome[2] == len(data)
    assert len(taken) >= 290


@DIFFERENTIAL
@given(state_dicts(), st.randoms(use_true_random=False))
def test_state_dicts_read_the_same(sd: dict[str, Any], rnd: random.Random) -> None:
    """Whole, cut short anywhere, with a byte changed, or stopped by a limit anywhere: the same."""
    data = data_pkl(sd)
    assert assert_same(data)[0][0] == "read"
    for cut in rnd.sample(range(len(data)), min(25, len(data))):
        assert_same(data[:cut])
    for _ in range(25):
        at = rnd.randrange(len(data))
        byte = rnd.choice([rnd.randrange(256), *b"qrhjKMJX()tRQ\x85\x86\x87\x88\x89\x95N."])
        assert_same(data[:at] + bytes([byte]) + data[at + 1 :])
    opcodes = rnd.randrange(1, 40 * len(sd) + 10)
    assert_same(data, Limits(max_opcodes=opcodes, max_marks=rnd.choice([1, 2, 3, 1000])))
    assert_same(data, Limits(max_memo=rnd.randrange(1, 300), max_bytes=rnd.randrange(1, 400_000)))


def test_every_cut_and_every_changed_byte_reads_the_same() -> None:
    """A small state dict of every form (a shared storage, a view with an offset, 0- to 3-D,
    requires_grad, a key met twice) cut at every byte, and each byte flipped."""
    base = torch.zeros(4, 3)
    sd = {
        "a": torch.zeros(()), "b": torch.zeros(5, dtype=torch.int64), "c": base, "c.t": base.t(),
        "d": torch.zeros(2, 1, 3, dtype=torch.float16), "e": base[1:], "f": torch.ones(2).requires_grad_(),
        "g": torch.zeros(300, dtype=torch.int8)[256:], "": torch.zeros(1), "h": {"a": base},
    }  # fmt: skip
    data = data_pkl(sd)
    for cut in range(len(data)):
        assert_same(data[:cut])
        assert_same(data[:cut], hooked=TorchPickleReader.REDUCED_CALLS)
    for at in range(len(data)):
        assert_same(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])


def test_calls_the_hooks_do_not_act_on_skip_them_and_read_the_same() -> None:
    """Shown only the calls it acts on (``hooked_calls``), the torch hook no longer sees the empty
    ``OrderedDict`` of every tensor's hooks, nor sets, dicts or other calls; the object graph, the
    end, the globals with their offsets, the budget and the problems are what they are when it sees
    every call."""
    sd = OrderedDict(
        a=torch.zeros(3), b=torch.nn.Parameter(torch.zeros(2)), c={"x": torch.zeros(1)},
        d={1, 2}, e=OrderedDict(f=torch.zeros(2, 2).t()), g=torch.zeros(4)[1:],
    )  # fmt: skip
    data = data_pkl(sd)

    def graph(hooked: frozenset[str] | None) -> tuple[Any, ...]:
        hooks, shown, found = TorchPickleReader(), [], []

        def hook(func: Any, args: Any) -> Any:
            shown.append(func.qualname if isinstance(func, Global) else repr(func))
            return hooks.reduce_hook(func, args)

        budget = Budget()
        obj, end = SafeUnpickler(
            data, on_global=lambda g: found.append((g.qualname, g.offset)), reduce_hook=hook,
            hooked_calls=hooked, persistent_load=hooks.persistent_load, budget=budget,
        ).load()  # fmt: skip
        return Dump()(obj), end, found, budget.opcodes, budget.nbytes, hooks.all_problems(), shown

    every, listed = graph(None), graph(TorchPickleReader.REDUCED_CALLS)
    assert listed[:-1] == every[:-1]
    assert "collections.OrderedDict" in every[-1] and "torch._utils._rebuild_parameter" in listed[-1]
    assert listed[-1] == [q for q in every[-1] if q in TorchPickleReader.REDUCED_CALLS]
    assert_same(data, hooked=TorchPickleReader.REDUCED_CALLS)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.one_of(st.text(max_size=20), st.sampled_from(["torch._utils", "collections", "builtins", "torch"])),
    st.one_of(st.text(max_size=30), st.sampled_from(["OrderedDict", "_rebuild_tensor_v4", "Size", "set"])),
    st.one_of(st.tuples(), st.tuples(st.integers(), st.text()), st.none(), st.lists(st.integers())),
)
def test_the_torch_hooks_make_nothing_of_a_call_outside_their_list(module: str, name: str, args: Any) -> None:
    """The promise ``hooked_calls`` rests on: for a call of any global not in ``REDUCED_CALLS``
    (or of anything but a global) the torch hook answers NOT_HANDLED and records nothing."""
    hooks = TorchPickleReader()
    if f"{module}.{name}" not in TorchPickleReader.REDUCED_CALLS:
        assert hooks.reduce_hook(Global(module, name, 7), args) is SafeUnpickler.NOT_HANDLED
    assert hooks.reduce_hook(f"{module}.{name}", args) is SafeUnpickler.NOT_HANDLED
    assert hooks.storages == {} and hooks.all_problems() == []
