"""The safety policy on gadgets: every advisory gadget is dangerous in its family however it is
spelled, copyreg extension codes resolve as pickle resolves them, only data constructors may be
allowed (judged on the real object), and TorchScript's pickles are data beside its code."""

from __future__ import annotations

import argparse
import collections
import copyreg
import dataclasses
import datetime
import enum
import logging
import os
import pathlib
import posixpath
import subprocess
import sysconfig
import typing
import warnings
import zipapp
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.formats import Format
from inspector.core.globals_policy import Family, judge, judge_qualname, torch_lookup
from inspector.core.load_options import LoadOptions
from inspector.core.model import GlobalClass, GlobalRef
from inspector.core.numpy_pickles import JUDGED_CALLS, array_call_problem, implied_globals
from inspector.core.peek import peek
from inspector.core.safety import (
    TORCHSCRIPT_CODE,
    Verdict,
    allow_refusal,
    global_class,
    import_refusal,
    in_format,
    load_refusal,
    refusal_message,
    refused_names,
    resolved_refusal,
    verdict_of,
    what_would_run,
)
from tests.hostile_globals import (
    ADVISORY_GADGETS,
    FORGED_DTYPES,
    MARKER,
    RAW_MEMORY_ARRAYS,
    ext_pickle,
    forged_numpy_array,
    in_torch_zip,
    raw_memory_array,
    write,
)


def _plain_pickle(module: str, name: str) -> bytes:
    """``module.name()`` as a protocol-2 pickle, the GLOBAL written byte for byte."""
    raw = module.encode("utf-8", "surrogatepass") + b"\n" + name.encode("utf-8", "surrogatepass") + b"\n"
    return b"\x80\x02c" + raw + b")R."


@pytest.mark.parametrize(
    ("module", "name", "family"), ADVISORY_GADGETS, ids=[ascii(f"{m}.{n}") for m, n, _ in ADVISORY_GADGETS]
)
def test_every_advisory_gadget_is_dangerous_in_its_family(
    tmp_path: Path, module: str, name: str, family: str
) -> None:
    judged = judge(module, name)
    assert judged.verdict is GlobalClass.DANGEROUS
    assert judged.family is Family[family]
    assert allow_refusal(f"{module}.{name}") is not None
    index = peek(str(write(tmp_path / "gadget.pth", _plain_pickle(module, name))))
    assert verdict_of(index).verdict is Verdict.DANGEROUS
    assert [g.as_written for g in index.dangerous_globals] == [f"{module}.{name}"]
    assert [g.qualname for g in index.dangerous_globals] == [".".join(torch_lookup(module, name))]
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [("argparse", "Namespace"), ("collections", "defaultdict"), ("numpy.core.multiarray", "_reconstruct"),
     ("numpy.dtypes", "Float32DType"), ("pathlib", "PosixPath"), ("torch.jit._pickle", "build_intlist"),
     ("string", "Template"), ("numpy.random._pickle", "__randomstate_ctor"), ("scipy.io", "loadmat_struct")],
)  # fmt: skip
def test_ordinary_names_are_not_called_dangerous(module: str, name: str) -> None:
    assert judge(module, name).verdict is GlobalClass.UNKNOWN


# -- copyreg extension codes ----------------------------------------------------------------------


@pytest.fixture
def registered() -> Iterator[list[int]]:
    """Codes added to copyreg's extension registry by a test, removed afterwards."""
    codes: list[int] = []
    yield codes
    for code in codes:
        key = copyreg._inverted_registry[code]  # type: ignore[attr-defined]
        copyreg.remove_extension(key[0], key[1], code)


@pytest.mark.parametrize("code", [0x12, 0x1234, 0x123456], ids=["EXT1", "EXT2", "EXT4"])
def test_an_unregistered_extension_code_is_refused_as_pickle_refuses_it(tmp_path: Path, code: int) -> None:
    path = write(tmp_path / "ext.pth", in_torch_zip(ext_pickle(tmp_path, code)))
    with pytest.raises(CheckpointError) as caught:
        peek(str(path))
    message = caught.value.message
    assert f"copyreg extension code {code}, which nothing has registered" in message
    assert "pickle itself refuses to load it" in message
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("code", [0x12, 0x1234, 0x123456], ids=["EXT1", "EXT2", "EXT4"])
def test_a_registered_extension_code_is_judged_as_the_global_it_stands_for(
    tmp_path: Path, code: int, registered: list[int]
) -> None:
    copyreg.add_extension(os.system.__module__, "system", code)
    registered.append(code)
    index = peek(str(write(tmp_path / "ext.pth", in_torch_zip(ext_pickle(tmp_path, code)))))
    assert [g.qualname for g in index.dangerous_globals] == [f"{os.system.__module__}.system"]
    assert verdict_of(index).verdict is Verdict.DANGEROUS


# -- what torch needs beyond the names in the file ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "dtype_class"),
    [("f4", "Float32DType"), ("<f8", "Float64DType"), ("|b1", "BoolDType"), ("u1", "UInt8DType"),
     ("i2", "Int16DType"), ("c8", "Complex64DType"), ("M8", "DateTime64DType"), ("U3", "StrDType"),
     ("O8", "ObjectDType")],
)  # fmt: skip
def test_a_numpy_dtype_implies_its_dtype_class(code: str, dtype_class: str) -> None:
    import numpy as np

    assert implied_globals("numpy.dtype", (code, False, True)) == [("numpy.dtypes", dtype_class)]
    assert type(np.dtype(code)).__name__ == dtype_class  # what torch's BUILD checks
    assert implied_globals("numpy.ndarray", (code,)) == []


def test_a_dtype_argument_numpy_would_refuse_implies_no_class() -> None:
    assert implied_globals("numpy.dtype", ("<not a dtype>", False, True)) == []


@pytest.mark.parametrize(
    "qualname",
    ["numpy.dtype", "numpy.ndarray", "numpy._core.multiarray._reconstruct",
     "numpy.core.multiarray._reconstruct", "numpy.dtypes.Float32DType", "numpy.core.multiarray.scalar",
     "numpy.array", "pickle.loads",
     "torch._utils._rebuild_tensor_v2", "collections.OrderedDict", "builtins.exec"],
)  # fmt: skip
def test_only_the_judged_numpy_calls_are_worth_asking_about(qualname: str) -> None:
    """The read skips the numpy checks for any other call: they must say nothing about one."""
    calls = [(), ("f4", False, True), ("O8", False, True), (None, (1,), b"b"), ("U3",), (b"x",)]
    said = any(implied_globals(qualname, args) or array_call_problem(qualname, args) for args in calls)
    assert said == (qualname in JUDGED_CALLS)


def test_a_name_without_a_module_is_judged_dangerous() -> None:
    """No pickle can import ``eval`` by itself: a name the engine reports so is malformed."""
    assert judge_qualname("eval").family is Family.MALFORMED
    assert global_class("eval") is GlobalClass.DANGEROUS


# -- only data constructors may be allowed, judged on the real object -----------------------------


@dataclasses.dataclass
class PlainConfig:
    lr: float = 0.1
    layers: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class FrozenConfig:
    name: str = "x"


@dataclasses.dataclass
class ConfigWithHook:
    path: str = ""

    def __post_init__(self) -> None:
        open(self.path, "w").close()


@dataclasses.dataclass
class ConfigWithFactory:
    made: object = dataclasses.field(default_factory=lambda: os.system("true"))


class Point(NamedTuple):
    x: int
    y: int


Pair = collections.namedtuple("Pair", "a b")


class Colour(enum.Enum):
    RED = 1


class PlainRecord:
    """Nothing of its own that unpickling calls."""

    def describe(self) -> str:
        return "plain"


class RestoresItself:
    def __setstate__(self, state: dict[str, Any]) -> None:
        os.system(state["cmd"])


class ReducesToACommand:
    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, ("true",)


class RunsOnInit:
    def __init__(self, path: str) -> None:
        open(path, "w").close()


class ReadOnlyView:
    """A property without a setter: reading it runs code, unpickling never does."""

    @property
    def doubled(self) -> int:
        return 2


class _WritesOnSet:
    def __get__(self, obj: object, owner: type | None = None) -> str:
        return ""

    def __set__(self, obj: object, path: str) -> None:
        open(path, "w").close()


class RunsThroughADescriptor:
    target = _WritesOnSet()


def _compiled(source: str) -> Any:
    """A function compiled from a string, as the standard library compiles the methods it writes."""
    namespace: dict[str, Any] = {"os": os}
    exec(source, namespace)
    return namespace[source.split()[1].split("(")[0]]


class ForgesAGeneratedMethod:
    __setstate__ = _compiled("def __setstate__(self, state):\n    os.system(state)\n")


#: Classes whose module does not hold them under the name they give: one claims a module that was
#: never imported, the other a name its module does not have.
Unimported = type("Unimported", (), {"__module__": "a_module_nobody_imported"})
Renamed = type("NotHeldUnderThisName", (), {"__module__": __name__})


class RunsOnSet:
    @property
    def target(self) -> str:
        return ""

    @target.setter
    def target(self, path: str) -> None:
        open(path, "w").close()


class Meta(type):
    def __call__(cls, *args: Any) -> Any:
        return os.system(*args)


class WithMeta(metaclass=Meta):
    pass


def _module_function() -> None:
    return None


class IteratesItself(tuple[int, ...]):
    """Walking a loaded tuple (as the loader does to find its tensors) would run this."""

    def __iter__(self) -> Iterator[int]:
        os.system("true")
        return super().__iter__()


class LiesAboutItsClass:
    """``isinstance`` on an instance reads ``__class__``, even inside torch's own BUILD."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        os.system("true")
        return type(self)


class ItemsOfItsOwn(dict[str, Any]):
    def items(self) -> Any:
        os.system("true")
        return super().items()


class SavesItself:
    """A pth copy pickles what torch.load built: pickling calls ``__getstate__``."""

    def __getstate__(self) -> dict[str, Any]:
        os.system("true")
        return {}


@pytest.mark.parametrize(
    ("name", "obj"),
    [("argparse.Namespace", argparse.Namespace), ("collections.OrderedDict", collections.OrderedDict),
     ("collections.defaultdict", collections.defaultdict), ("builtins.frozenset", frozenset),
     (f"{__name__}.PlainConfig", PlainConfig), (f"{__name__}.FrozenConfig", FrozenConfig),
     (f"{__name__}.Point", Point), (f"{__name__}.Pair", Pair), (f"{__name__}.Colour", Colour),
     (f"{__name__}.PlainRecord", PlainRecord), (f"{__name__}.ReadOnlyView", ReadOnlyView)],
)  # fmt: skip
def test_data_constructors_may_be_allowed(name: str, obj: object) -> None:
    assert allow_refusal(name) is None
    assert resolved_refusal(name, obj) is None


def test_numpy_data_constructors_may_be_allowed_also_under_their_numpy_1_names() -> None:
    import numpy as np

    assert resolved_refusal("numpy.core.multiarray._reconstruct", np._core.multiarray._reconstruct) is None
    assert resolved_refusal("numpy._core.multiarray.scalar", np._core.multiarray.scalar) is None
    data = [("numpy.ndarray", np.ndarray), ("numpy.dtype", np.dtype), ("numpy.float32", np.float32),
            ("numpy.dtypes.Float32DType", np.dtypes.Float32DType)]  # fmt: skip
    for name, obj in data:
        assert resolved_refusal(name, obj) is None, name
    assert "reached through another module" in (resolved_refusal("numpy.ndarray", np.dtype) or "")


@pytest.mark.parametrize(
    ("name", "obj", "words"),
    [
        ("posixpath.os.system", os.system, f"it is {os.system.__module__}.system, reached through another"),
        (f"{os.system.__module__}.system", os.system, "can run commands"),
        ("subprocess.Popen", subprocess.Popen, "can run commands"),
        ("zipapp.create_archive", zipapp.create_archive, "it is a function (zipapp.create_archive)"),
        (f"{__name__}._module_function", _module_function, "it is a function"),
        ("builtins.type", type, "can run Python code"),
        ("builtins.getattr", getattr, "looks up any object"),
        ("pathlib.PosixPath", pathlib.PosixPath, "its __new__ is code of its own"),
        ("logging.FileHandler", logging.FileHandler, "open, write or delete files"),
        ("posixpath", posixpath, "it is the module posixpath"),
        (f"{__name__}.RestoresItself", RestoresItself, "its __setstate__ is code of its own"),
        (f"{__name__}.ReducesToACommand", ReducesToACommand, "its __reduce__ is code of its own"),
        (f"{__name__}.RunsOnInit", RunsOnInit, "its __init__ is code of its own"),
        (f"{__name__}.RunsOnSet", RunsOnSet, "its property target runs code when set"),
        (
            f"{__name__}.RunsThroughADescriptor",
            RunsThroughADescriptor,
            "its attribute target runs code when set",
        ),
        (f"{__name__}.ForgesAGeneratedMethod", ForgesAGeneratedMethod, "its __setstate__ is code of its own"),
        (
            "a_module_nobody_imported.Unimported",
            Unimported,
            "its module does not hold it as a_module_nobody_imported",
        ),
        (f"{__name__}.NotHeldUnderThisName", Renamed, "its module does not hold it as"),
        (f"{__name__}.WithMeta", WithMeta, f"its metaclass {__name__}.Meta is code of its own"),
        ("typing.Any", typing.Any, "its metaclass typing._AnyMeta is code of its own"),
        (
            "torch.torch_version.TorchVersion",
            torch.torch_version.TorchVersion,
            "its __eq__ is code of its own",
        ),
        (f"{__name__}.ConfigWithHook", ConfigWithHook, "its __post_init__ is code of its own"),
        (f"{__name__}.ConfigWithFactory", ConfigWithFactory, "its field made is made by a function"),
        (f"{__name__}.IteratesItself", IteratesItself, "its __iter__ is code of its own, which Python runs"),
        (f"{__name__}.LiesAboutItsClass", LiesAboutItsClass, "its __class__ is code of its own"),
        (f"{__name__}.ItemsOfItsOwn", ItemsOfItsOwn, "its items replaces dict.items with code of its own"),
        (f"{__name__}.SavesItself", SavesItself, "its __getstate__ is code of its own"),
    ],
)
def test_anything_else_is_refused_with_what_it_really_is(name: str, obj: object, words: str) -> None:
    refusal = resolved_refusal(name, obj)
    assert refusal is not None and words in refusal


def test_numpy_file_writers_are_refused_whatever_they_are() -> None:
    import numpy as np

    assert "files" in (resolved_refusal("numpy.memmap", np.memmap) or "")
    assert resolved_refusal("numpy.savetxt", np.savetxt) is not None


@pytest.mark.parametrize(
    ("name", "words"),
    [("os\x00junk.system", "not a name any Python module can have"), ("sys.modules", "torch never allows"),
     ("__main__.Config", "the script that saved the file"), ("__torch__.M", "TorchScript class"),
     ("argparse.Namespace.__init__", "dunder"), ("torch.serialization.os.system", "serialized objects"),
     ("Namespace", "not a name any Python module can have")],
)  # fmt: skip
def test_names_that_are_refused_before_anything_is_imported(name: str, words: str) -> None:
    refusal = allow_refusal(name)
    assert refusal is not None and words in refusal


def test_only_installed_modules_and_standard_data_modules_may_be_imported(tmp_path: Path) -> None:
    paths = sysconfig.get_paths()
    sites, stdlib = [paths["purelib"]], [paths["stdlib"]]
    installed = os.path.join(paths["purelib"], "somepkg", "__init__.py")
    assert import_refusal("somepkg", installed, sites, stdlib) is None
    assert import_refusal("argparse", os.path.join(paths["stdlib"], "argparse.py"), sites, stdlib) is None
    refusal = import_refusal("beside", str(tmp_path / "beside.py"), sites, stdlib)
    assert refusal is not None and "never imported" in refusal
    assert "never imports zipapp" in (import_refusal("zipapp", zipapp.__file__, sites, stdlib) or "")
    assert "never imports _testcapi" in (import_refusal("_testcapi", "built-in", sites, stdlib) or "")
    assert import_refusal("__phello__", "frozen", sites, stdlib) is not None  # prints when imported
    assert "no module" in (import_refusal("gone", None, sites, stdlib) or "")
    assert "can run" in (import_refusal("pip._internal", installed, sites, stdlib) or "")


# -- TorchScript: data pickles, and code that runs under torch.jit.load ----------------------------


def test_the_records_of_a_format_are_data_in_that_format_only() -> None:
    """TorchScript's builders are data in a TorchScript archive, DCP's metadata in a DCP folder;
    each stays unknown in the other (and in any other file)."""
    builder = GlobalRef("torch.jit._pickle", "build_intlist", GlobalClass.UNKNOWN, "data.pkl", 2)
    record = GlobalRef(
        "torch.distributed.checkpoint.metadata", "Metadata", GlobalClass.UNKNOWN, ".metadata", 2
    )
    verdicts = {
        fmt: [g.verdict for g in in_format([builder, record], fmt)]
        for fmt in (Format.TORCHSCRIPT, Format.DCP)
    }
    assert verdicts[Format.TORCHSCRIPT] == [GlobalClass.ALLOWED, GlobalClass.UNKNOWN]
    assert verdicts[Format.DCP] == [GlobalClass.UNKNOWN, GlobalClass.ALLOWED]
    assert [g.verdict for g in in_format([builder, record], Format.TORCH_ZIP)] == [GlobalClass.UNKNOWN] * 2


def _scripted(path: Path, traced: bool) -> Path:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.trace(model, torch.ones(1, 1, 5, 5)) if traced else torch.jit.script(model)
        torch.jit.save(module, str(path))
    return path


@pytest.mark.parametrize("traced", [False, True], ids=["script", "trace"])
def test_a_torchscript_archive_holds_code_but_its_pickles_are_data(tmp_path: Path, traced: bool) -> None:
    index = peek(str(_scripted(tmp_path / "model.pt", traced)))
    judged = verdict_of(index)
    assert index.format == "torchscript"
    assert judged.verdict is Verdict.SAFE and judged.torchscript_code
    assert any(g.qualname == "torch.jit._pickle.build_intlist" for g in index.globals)
    assert index.dangerous_globals == [] and index.unsafe_globals == []
    assert any(TORCHSCRIPT_CODE in w for w in index.warnings)
    assert index.tensor_count == 2


def test_a_payload_in_a_torchscript_archive_stays_dangerous(tmp_path: Path) -> None:
    from tests.hostile import zip_with_member

    clean = _scripted(tmp_path / "model.pt", traced=False).read_bytes()
    folder = next(n.split("/")[0] for n in __import__("zipfile").ZipFile(tmp_path / "model.pt").namelist())
    evil = zip_with_member(clean, f"{folder}/extra.pkl", _plain_pickle(os.system.__module__, "system"))
    index = peek(str(write(tmp_path / "evil.pt", evil)))
    judged = verdict_of(index)
    assert judged.verdict is Verdict.DANGEROUS and judged.torchscript_code
    assert judged.dangerous == (f"{os.system.__module__}.system",)


# -- numpy dtypes whose pickled state lies about their layout -------------------------------------


@pytest.mark.parametrize("case", list(FORGED_DTYPES))
def test_a_numpy_dtype_whose_state_lies_about_its_layout_makes_the_file_dangerous(
    tmp_path: Path, case: str
) -> None:
    index = peek(str(forged_numpy_array(tmp_path, case)))
    judged = verdict_of(index)
    assert judged.verdict is Verdict.DANGEROUS
    [said] = judged.differentials
    assert said.startswith("data.pkl byte ") and "a numpy dtype" in said
    assert "numpy does not check" in said


@pytest.mark.parametrize("case", RAW_MEMORY_ARRAYS)
def test_a_numpy_array_over_memory_the_file_does_not_fill_in_makes_the_file_dangerous(
    tmp_path: Path, case: str
) -> None:
    judged = verdict_of(peek(str(raw_memory_array(tmp_path, case))))
    assert judged.verdict is Verdict.DANGEROUS
    [said] = judged.differentials
    assert said.startswith("data.pkl byte ") and "numpy's pickles never" in said


def test_numpy_arrays_as_numpy_pickles_them_are_data(tmp_path: Path) -> None:
    import numpy as np

    point = np.dtype([("x", "f4"), ("name", "U3"), ("id", "i8")])
    arrays = {
        "plain": [np.zeros(2, dtype=c) for c in ("b1", "i1", "u2", "i4", "u8", "f2", ">f4", "f8", "c16")],
        "objects": np.array([None, 1, "a"], dtype=object),
        "text": [np.array(["ab", "c"]), np.array([b"xyz"]), np.zeros(2, dtype="V4")],
        "times": [np.zeros(2, dtype="M8[ns]"), np.zeros(1, dtype="m8[s]")],
        "structs": [np.zeros(2, dtype=point), np.zeros(1, dtype=np.dtype(point.descr, align=True))],
        "titled": np.zeros(1, dtype=np.dtype({"names": ["a"], "formats": ["f8"], "titles": ["alpha"]})),
        "nested": np.zeros(1, dtype=[("p", point), ("v", "f4", (3,))]),
        "subarray": np.zeros(2, dtype=np.dtype(("f4", (2, 3)))),
        "dtypes": [np.dtype("f4"), np.dtype("O"), point],
    }
    path = tmp_path / "arrays.pth"
    torch.save({"w": torch.ones(2), "arrays": arrays}, path)
    judged = verdict_of(peek(str(path)))
    assert judged.verdict is Verdict.UNKNOWN and judged.differentials == ()


# -- what the policy says about a file's names, in the questions and refusals the user reads -------


class ShowsItself:
    """Text of its own: loading and copying never print it."""

    def __repr__(self) -> str:
        return "shown"


class Unhashable:
    """A hash switched off, as a mutable record does."""

    __hash__ = None  # type: ignore[assignment]


class OnACompiledType(datetime.date):
    """Built on a compiled type, whose reconstruction is that type's own code."""


def test_text_of_its_own_and_a_switched_off_hash_leave_a_class_plain_data() -> None:
    assert resolved_refusal(f"{__name__}.ShowsItself", ShowsItself) is None
    assert resolved_refusal(f"{__name__}.Unhashable", Unhashable) is None


def test_a_class_built_on_a_compiled_type_is_refused() -> None:
    refusal = resolved_refusal(f"{__name__}.OnACompiledType", OnACompiledType)
    assert refusal is not None and "datetime.date, a compiled type" in refusal


def test_a_dunder_module_part_reaches_the_import_machinery() -> None:
    judged = judge("mypkg.__init__", "Config")
    assert judged.verdict is GlobalClass.DANGEROUS and judged.family is Family.IMPORT


def test_the_names_a_file_would_run_and_their_verdicts_come_from_its_scan(tmp_path: Path) -> None:
    path = tmp_path / "namespace.pth"
    torch.save({"w": torch.ones(1), "args": argparse.Namespace(lr=0.1)}, path)
    index = peek(str(path))
    assert global_class("argparse.Namespace", index) is GlobalClass.UNKNOWN
    assert what_would_run(index, [f"{os.system.__module__}.system"]) == [
        (f"{os.system.__module__}.system", GlobalClass.DANGEROUS),
        ("argparse.Namespace", GlobalClass.UNKNOWN),
    ]
    assert refused_names(["argparse.Namespace", f"{os.system.__module__}.system"]) == [
        f"{os.system.__module__}.system"
    ]


def test_a_numpy_function_that_builds_no_data_is_refused() -> None:
    import numpy as np

    refusal = resolved_refusal("numpy.array_repr", np.array_repr)
    assert refusal is not None and "it is a function (numpy.array_repr)" in refusal


def test_a_refusal_names_each_global_with_its_reason() -> None:
    one = refusal_message("a.pth", [("x.Y", "its __init__ is code of its own")])
    assert one == (
        "x.Y cannot be allowed for “a.pth”: its __init__ is code of its own. "
        "Only trusting the whole file would load it."
    )
    same = refusal_message("a.pth", [("x.Y", "a reason"), ("z.W", "a reason")])
    assert same.startswith("x.Y and z.W cannot be allowed for “a.pth”: a reason.")
    two = refusal_message("a.pth", [("x.Y", "reason one"), ("z.W", "reason two")])
    assert two == (
        "These cannot be allowed for “a.pth”: x.Y (reason one); z.W (reason two). "
        "Only trusting the whole file would load it."
    )


def test_a_torchscript_archive_is_not_loaded_until_trusted(tmp_path: Path) -> None:
    judged = verdict_of(peek(str(_scripted(tmp_path / "model.pt", False))))
    refusal = load_refusal("model.pt", judged, LoadOptions())
    assert refusal is not None and refusal.kind == "torchscript"
    assert load_refusal("model.pt", judged, LoadOptions(weights_only=False)) is None
