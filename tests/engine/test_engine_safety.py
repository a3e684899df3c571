"""The loader's safety rules: allowlisted globals as real objects, judged on what they resolve to,
refusals before torch.load, the trusted-mode pickle module, and a worker that reports what it can
unpickle with."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import os
import pickle
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.globals_policy import classify
from inspector.core.load_options import LoadOptions
from inspector.core.model import GlobalClass
from inspector.core.peek import peek
from inspector.engine import global_resolver, loader
from inspector.engine.loader import LoadError, load_checkpoint
from inspector.engine.protocol import LoadReply
from tests import hostile_globals
from tests.checkpoints import BuiltCheckpoint
from tests.hostile_globals import ALIASES, SYSTEM, AliasCase


class _RunsCommand:
    """Unpickling it with plain pickle would run ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _command_payload(folder: Path) -> tuple[Path, Path]:
    """A real checkpoint (a tensor in a dict) whose pickle calls os.system; and its marker path."""
    marker = folder / "MARKER"
    path = folder / "payload.pth"
    torch.save({"weight": torch.ones(2, 3), "payload": _RunsCommand(marker)}, path)
    return path, marker


def _namespace(folder: Path) -> Path:
    path = folder / "namespace.pth"
    torch.save({"weight": torch.ones(2), "args": argparse.Namespace(lr=0.1, w=torch.zeros(3))}, path)
    return path


@pytest.fixture
def torch_load_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every call of torch.load (its kwargs, and the user allowlist torch sees during it)."""
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def recording_load(path: Any, **kwargs: Any) -> Any:
        calls.append({**kwargs, "safe_globals": list(torch.serialization.get_safe_globals())})
        return real_load(path, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    return calls


def _error(path: Path, options: LoadOptions) -> LoadError:
    with pytest.raises(LoadError) as caught:
        load_checkpoint(str(path), options)
    return caught.value


def test_weights_only_is_explicit_even_when_the_environment_forces_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_load_calls: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    error = _error(_namespace(tmp_path), LoadOptions())
    assert error.kind == "weights-only"
    assert [call["weights_only"] for call in torch_load_calls] == [True]


def test_a_dangerous_file_never_reaches_torch_load_unless_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_load_calls: list[dict[str, Any]]
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path, marker = _command_payload(tmp_path)
    error = _error(path, LoadOptions(map_location="cpu"))
    assert error.kind == "dangerous"
    assert error.extra["globals"] == [SYSTEM]
    assert error.message.startswith(f"“payload.pth” references {SYSTEM}, which can run code")
    assert torch_load_calls == [] and not marker.exists()


def test_a_file_torch_could_read_otherwise_than_shown_never_reaches_torch_load_unless_trusted(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    from tests.hostile import torch_zip_bytes, zip_two_directories

    with zipfile.ZipFile(io.BytesIO(torch_zip_bytes({"hidden": torch.zeros(3)}))) as z:
        body = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    path = tmp_path / "two_directories.pth"
    path.write_bytes(zip_two_directories(torch_zip_bytes({"shown": torch.ones(3)}), body))
    assert peek(str(path)).differentials
    error = _error(path, LoadOptions(map_location="cpu"))
    assert error.kind == "dangerous" and torch_load_calls == []
    assert error.message.startswith("“two_directories.pth” may not be what torch would read (")
    assert error.message.endswith("not handed to torch unless you trust the file.")
    result = load_checkpoint(str(path), LoadOptions(map_location="cpu", weights_only=False))
    assert len(torch_load_calls) == 1 and result.devices


def test_allowed_globals_are_never_given_to_torch_for_a_file_the_static_read_did_not_finish(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    from tests.hostile import nested_beside_data_pkl

    path = tmp_path / "past_a_limit.pth"
    path.write_bytes(nested_beside_data_pkl(_namespace(tmp_path).read_bytes(), 2_000_010))
    with pytest.raises(CheckpointError):
        peek(str(path))  # deeper than the reader goes: what comes after is scanned for globals only
    error = _error(path, LoadOptions(allowed_globals=("argparse.Namespace",)))
    assert error.kind == "dangerous" and torch_load_calls == []
    assert error.message.startswith("“past_a_limit.pth” could not be read to its end, so")
    assert "what the allowed globals would build there is not checked" in error.message


class _WalksItself(tuple[int, ...]):
    """A tuple whose iteration is code of its own: it creates the file named in its state."""

    def __iter__(self) -> Iterator[int]:
        Path(self.__dict__["marker"]).touch()
        return super().__iter__()


def test_a_class_with_code_python_runs_on_its_own_is_never_allowed(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    marker = tmp_path / "MARKER"
    walks = _WalksItself((1, 2))
    walks.marker = str(marker)  # type: ignore[attr-defined]
    path = tmp_path / "walks.pth"
    torch.save({"w": torch.ones(2), "shape": walks}, path)
    name = f"{__name__}._WalksItself"
    assert [g.qualname for g in peek(str(path)).unsafe_globals] == [name]
    error = _error(path, LoadOptions(allowed_globals=(name,)))
    assert error.kind == "refused-global" and "its __iter__ is code of its own" in error.message
    assert torch_load_calls == [] and not marker.exists()


def test_allowing_exactly_the_named_globals_loads_under_weights_only(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    path = _namespace(tmp_path)
    before = set(torch.serialization.get_safe_globals())  # torch registers a few of its own
    result = load_checkpoint(str(path), LoadOptions(allowed_globals=("argparse.Namespace",)))
    assert result.devices == [(("weight",), "cpu"), (("args", "w"), "cpu")]
    # torch saw the real class under the name the file uses, and weights-only stayed on.
    assert torch_load_calls[0]["weights_only"] is True
    added = set(torch_load_calls[0]["safe_globals"]) - before
    assert added == {(argparse.Namespace, "argparse.Namespace")}
    # The allowlist lasts one load: the next one, without it, is refused again.
    assert set(torch.serialization.get_safe_globals()) == before
    assert _error(path, LoadOptions()).kind == "weights-only"


@pytest.mark.parametrize(
    "name",
    [
        f"{os.system.__module__}.system",
        "os.system",
        "nt.system",
        "sys.modules",
        "builtins.exec",
        "builtins.eval",
        "subprocess.Popen",
        "io.open",
        "runpy._run_code",
        "pickle.loads",
    ],
)
def test_dangerous_globals_are_refused_before_anything_is_imported_or_loaded(
    tmp_path: Path, name: str, torch_load_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    imported: list[str] = []
    real_import = global_resolver.importlib.import_module
    monkeypatch.setattr(
        global_resolver.importlib,
        "import_module",
        lambda module, *args: imported.append(module) or real_import(module, *args),
    )
    path, marker = _command_payload(tmp_path)
    error = _error(path, LoadOptions(allowed_globals=("argparse.Namespace", name)))
    assert error.kind == "refused-global"
    assert error.extra["globals"] == [name]
    assert error.message.startswith(f"{name} cannot be allowed for “payload.pth”")
    assert torch_load_calls == [] and imported == []
    assert not marker.exists()


def test_a_global_that_cannot_be_imported_is_named(tmp_path: Path) -> None:
    error = _error(_namespace(tmp_path), LoadOptions(allowed_globals=("no_such_package_here.Config",)))
    assert error.kind == "missing-global"
    assert error.extra["globals"] == ["no_such_package_here.Config"]
    assert "cannot import" in error.message


# -- allowing is judged on the object the name resolves to ----------------------------------------


@pytest.mark.parametrize("case", ALIASES, ids=[ascii(c.qualname) for c in ALIASES])
def test_an_alias_of_a_dangerous_callable_is_never_allowed(
    tmp_path: Path, case: AliasCase, torch_load_calls: list[dict[str, Any]]
) -> None:
    path = case.build(tmp_path)
    error = _error(path, LoadOptions(allowed_globals=(case.qualname,)))
    assert error.kind == "refused-global"
    assert error.extra["globals"] == [case.qualname]
    if "\x00" in case.qualname:  # no module has that name: it is shown, escaped, and never imported
        assert "os\\x00junk.system" in error.message and "\x00" not in error.message
    else:
        assert case.real in error.message  # the sentence names what the name really is
    assert torch_load_calls == []
    assert not hostile_globals.marker(tmp_path).exists()


def test_an_innocent_name_that_resolves_to_a_dangerous_callable_is_refused_as_that_callable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_load_calls: list[dict[str, Any]]
) -> None:
    # A package that did ``from os import system as tidy``: no name rule can know what tidy is.
    monkeypatch.setitem(
        sys.modules, "tidy_helpers", hostile_globals.alias_module("tidy_helpers", "tidy", os.system)
    )
    path = hostile_globals.payload_checkpoint(
        tmp_path, "tidy.pth", "tidy_helpers", "tidy", hostile_globals.touch_command(tmp_path)
    )
    assert [g.verdict for g in peek(str(path)).globals if g.module == "tidy_helpers"] == [GlobalClass.UNKNOWN]
    error = _error(path, LoadOptions(allowed_globals=("tidy_helpers.tidy",)))
    assert error.kind == "refused-global"
    assert f"it is {SYSTEM}, reached through another module" in error.message
    assert torch_load_calls == []
    assert not hostile_globals.marker(tmp_path).exists()


def test_a_file_writer_no_list_names_is_refused_because_it_is_a_function(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    import zipapp  # imported here, as any loaded package may have imported it

    assert classify("zipapp", "create_archive") is GlobalClass.UNKNOWN
    source = tmp_path / "app"
    source.mkdir()
    (source / "__main__.py").write_text("")
    marker = hostile_globals.marker(tmp_path)
    path = hostile_globals.payload_checkpoint(
        tmp_path, "writer.pth", "zipapp", "create_archive", str(source), str(marker)
    )
    error = _error(path, LoadOptions(allowed_globals=("zipapp.create_archive",)))
    assert error.kind == "refused-global"
    assert "it is a function (zipapp.create_archive)" in error.message
    assert zipapp.create_archive is not None and torch_load_calls == []
    assert not marker.exists()


def test_a_module_beside_the_checkpoint_is_never_imported_to_allow_a_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_load_calls: list[dict[str, Any]]
) -> None:
    marker = hostile_globals.marker(tmp_path)
    (tmp_path / "beside_config.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Config: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # as when the loader starts in the download folder
    path = hostile_globals.payload_checkpoint(tmp_path, "beside.pth", "beside_config", "Config")
    error = _error(path, LoadOptions(allowed_globals=("beside_config.Config",)))
    assert error.kind == "refused-global"
    assert "not installed in the loader's Python" in error.message
    assert "beside_config" not in sys.modules and not marker.exists()
    assert torch_load_calls == []


def test_numpy_1_names_are_allowed_as_numpy_2_objects_under_the_name_in_the_file(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    import numpy as np

    path = tmp_path / "numpy1.pth"
    torch.save({"w": torch.ones(2), "mean": np.arange(3, dtype=np.float32)}, path)
    hostile_globals.rename_module(path, "numpy._core.multiarray", "numpy.core.multiarray")  # numpy 1.x
    needed = [g.qualname for g in peek(str(path)).unsafe_globals]
    assert set(needed) == {
        "numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype", "numpy.dtypes.Float32DType"
    }  # fmt: skip
    result = load_checkpoint(str(path), LoadOptions(allowed_globals=tuple(needed)))
    assert (("w",), "cpu") in result.devices
    seen = set(torch_load_calls[0]["safe_globals"])
    assert (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct") in seen


@dataclasses.dataclass
class TrainConfig:
    """A plain config dataclass, as training scripts save beside their weights."""

    lr: float = 0.1
    layers: list[int] = dataclasses.field(default_factory=list)


def _needed(path: Path) -> set[str]:
    return {g.qualname for g in peek(str(path)).unsafe_globals}


def test_the_scan_lists_what_weights_only_loading_needs_for_every_fixture(
    built_checkpoints: dict[str, BuiltCheckpoint],
) -> None:
    for case, built in built_checkpoints.items():
        listed = _needed(built.path)
        if built.path.read_bytes()[:4] == b"PK\x03\x04":  # torch lists the GLOBALs of zip files only
            torch_lists = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(built.path)))
            assert torch_lists <= listed, case
        # Allowing exactly what the scan lists is what torch needs: it loads under weights_only.
        result = load_checkpoint(
            str(built.path), LoadOptions(map_location="cpu", allowed_globals=tuple(listed))
        )
        assert {path for path, _ in result.devices} == set(built.torch_view().tensors), case


def test_allowing_exactly_the_scan_list_loads_numpy_values_and_config_classes(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "extras.pth"
    extras = {
        "w": torch.ones(2),
        "arrays": [np.zeros(3, dtype=t) for t in ("f4", "f8", "i8", "u1", "b1", "c8", "f2")],
        "scalars": [np.float64(1.5), np.int64(3), np.bool_(True)],
        "dtype": np.dtype("int16"),
        "config": TrainConfig(0.01, [2, 4]),
        "counts": collections.OrderedDict(a=1),
    }
    torch.save(extras, path)
    listed = _needed(path)
    assert {"numpy.dtypes.Float16DType", "numpy.dtypes.Complex64DType", f"{__name__}.TrainConfig"} <= listed
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) <= listed
    result = load_checkpoint(str(path), LoadOptions(allowed_globals=tuple(sorted(listed))))
    assert result.devices == [(("w",), "cpu")]


def test_what_torch_still_refuses_is_named_in_our_sentence(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "array.pth"
    torch.save({"mean": np.arange(3, dtype=np.float32)}, path)
    allowed = ("numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype")
    error = _error(path, LoadOptions(allowed_globals=allowed))
    assert error.kind == "weights-only"
    assert error.extra["globals"] == ["numpy.dtypes.Float32DType"]
    assert error.message.startswith("“array.pth” still needs numpy.dtypes.Float32DType, which")
    assert "weights_only=False" not in error.message and "WeightsUnpickler" not in error.message


def test_a_trusted_load_uses_the_chosen_pickle_module(
    tmp_path: Path, torch_load_calls: list[dict[str, Any]]
) -> None:
    path = _namespace(tmp_path)
    result = load_checkpoint(str(path), LoadOptions(weights_only=False, pickle_module="pickle"))
    assert result.devices == [(("weight",), "cpu"), (("args", "w"), "cpu")]
    assert torch_load_calls[0]["weights_only"] is False
    assert torch_load_calls[0]["pickle_module"] is pickle


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (LoadOptions(pickle_module="pickle"), "only be chosen when “namespace.pth” is trusted"),
        (LoadOptions(weights_only=False, pickle_module="cloudpickle"), "not a pickle module"),
        (LoadOptions(weights_only=False, pickle_module="dill"), "dill is not installed"),
    ],
)
def test_pickle_module_choices_that_are_refused(
    tmp_path: Path,
    options: LoadOptions,
    words: str,
    torch_load_calls: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loader, "available_pickle_modules", lambda: ["pickle"])
    error = _error(_namespace(tmp_path), options)
    assert error.kind == "bad-options"
    assert words in error.message
    assert torch_load_calls == []


def test_available_pickle_modules_are_found_without_importing_them() -> None:
    modules = loader.available_pickle_modules()
    assert modules[0] == "pickle"
    assert set(modules) <= {"pickle", "dill"}


# -- the same through the worker process --------------------------------------------------------


def test_worker_reports_its_pickle_modules(engine: Any) -> None:
    engine.ready()
    ready = engine.events.wait_ready(engine.client.pid)
    assert list(ready.pickle_modules) == loader.available_pickle_modules()
    assert engine.client.pickle_modules == list(ready.pickle_modules)


def test_worker_imports_allowed_globals_itself(engine: Any, tmp_path: Path) -> None:
    path = _namespace(tmp_path)
    refused = engine.load(path, map_location="meta")
    assert refused.kind == "weights-only"
    assert refused.globals == ["argparse.Namespace"]
    event = engine.load(path, map_location="meta", allowed_globals=["argparse.Namespace"])
    assert LoadReply.from_json(event.data).devices == {
        ("weight",): "meta",
        ("args", "w"): "meta",
    }


def test_worker_never_runs_a_command_payload(engine: Any, tmp_path: Path) -> None:
    path, marker = _command_payload(tmp_path)
    assert engine.load(path).kind == "dangerous"
    refused = engine.load(path, allowed_globals=[f"{os.system.__module__}.system"])
    assert refused.kind == "refused-global"
    assert not marker.exists()


@pytest.mark.parametrize("case", ALIASES, ids=[ascii(c.qualname) for c in ALIASES])
def test_worker_refuses_to_allow_an_alias_and_names_what_it_is(
    engine: Any, tmp_path: Path, case: AliasCase
) -> None:
    path = case.build(tmp_path)
    refused = engine.load(path, map_location="cpu", allowed_globals=[case.qualname])
    assert refused.kind == "refused-global"
    assert refused.globals == [case.qualname]
    if "\x00" not in case.qualname:
        assert case.real in refused.message
    assert not hostile_globals.marker(tmp_path).exists()


# -- names as torch looks them up, and what torch allows without asking -------------------------


def _python2_builtins(folder: Path) -> Path:
    """A protocol-2 pickle names ``int`` and ``list`` as Python 2 did (``__builtin__.long`` …)."""
    path = folder / "builtins.pth"
    torch.save({"w": torch.ones(2), "counts": collections.defaultdict(int),
                "lists": collections.defaultdict(list), "kind": dict}, path)  # fmt: skip
    return path


def test_the_scan_lists_python_2_builtins_under_the_names_torch_looks_up(tmp_path: Path) -> None:
    path = _python2_builtins(tmp_path)
    index = peek(str(path))
    listed = {g.qualname: g.as_written for g in index.unsafe_globals}
    assert listed == {
        "collections.defaultdict": "collections.defaultdict", "builtins.int": "__builtin__.long",
        "builtins.list": "__builtin__.list", "builtins.dict": "__builtin__.dict",
    }  # fmt: skip
    assert set(listed) == set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    result = load_checkpoint(str(path), LoadOptions(allowed_globals=tuple(listed)))
    assert result.devices == [(("w",), "cpu")]


def test_a_refused_builtin_is_named_with_its_module(tmp_path: Path) -> None:
    """torch's refusal says "GLOBAL list"; the sentence and the list name builtins.list."""
    path = _python2_builtins(tmp_path)
    error = _error(path, LoadOptions(allowed_globals=("collections.defaultdict", "builtins.int")))
    assert error.kind == "weights-only"
    assert error.extra["globals"][0] == "builtins.list"
    assert set(error.extra["globals"]) == {"builtins.list", "builtins.dict"}
    assert error.message.startswith("“builtins.pth” still needs builtins.list and builtins.dict, which")


def test_python_2_names_are_mapped_as_torch_maps_them() -> None:
    from torch._utils import IMPORT_MAPPING, NAME_MAPPING

    from inspector.core import globals_policy

    assert globals_policy.TORCH_IMPORT_MAPPING == IMPORT_MAPPING
    assert globals_policy.TORCH_NAME_MAPPING == NAME_MAPPING
    from torch._weights_only_unpickler import _blocklisted_modules

    assert set(_blocklisted_modules) == globals_policy.TORCH_BLOCKED_MODULES


#: Run in a fresh interpreter: what torch allows without asking once ``import torch`` is done,
#: then after each of torch's modules that add to that list when imported (found in its source).
_TORCH_ALLOWLIST = r"""
import importlib, json, pathlib, sys
import torch
from torch._weights_only_unpickler import _get_allowed_globals, _get_user_allowed_globals
TORCH_ALLOWED_ON_IMPORT = json.loads(sys.argv[1])

def allowed():
    return set(_get_allowed_globals()) | set(_get_user_allowed_globals())

late = {}
for name, module in TORCH_ALLOWED_ON_IMPORT.items():
    importlib.import_module(module)
    if name not in allowed():
        late[name] = module
root = pathlib.Path(torch.__file__).parent
adders = []
for source in sorted(root.rglob("*.py")):
    text = source.read_text(encoding="utf-8", errors="replace")
    if "add_safe_globals([" not in text.replace("\n", "").replace(" ", ""):
        continue
    parts = source.relative_to(root.parent).with_suffix("").parts
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    if module in ("torch.serialization", "torch._weights_only_unpickler"):
        continue
    adders.append(module)
    try:
        importlib.import_module(module)
    except Exception:
        pass
print(json.dumps({"allowed": sorted(allowed()), "late": late, "adders": adders}))
"""


def test_core_allows_exactly_what_torch_allows_without_asking(tmp_path: Path) -> None:
    """Both ways: nothing torch allows by itself is judged unknown or dangerous, and nothing core
    calls allowed is refused by torch (torch's own list, and what its modules add when imported)."""
    import json
    import subprocess

    from inspector.core.globals_policy import TORCH_ALLOWED, TORCH_ALLOWED_ON_IMPORT

    script = tmp_path / "allowlist.py"
    script.write_text(_TORCH_ALLOWLIST)
    done = subprocess.run([sys.executable, str(script), json.dumps(TORCH_ALLOWED_ON_IMPORT)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    torch_side = json.loads(done.stdout.splitlines()[-1])
    assert torch_side["late"] == {}, "importing the module core names does not allow these"
    assert set(torch_side["adders"]) <= set(TORCH_ALLOWED_ON_IMPORT.values()) | {
        "torch.utils.benchmark.utils.valgrind_wrapper.timer_interface"  # a comment, it adds nothing
    }
    allowed = set(torch_side["allowed"])
    assert sorted(allowed - TORCH_ALLOWED) == [], "torch allows, core does not call allowed"
    assert sorted(TORCH_ALLOWED - allowed) == [], "core calls allowed, torch refuses"
    judged = {n: classify(*n.rsplit(".", 1)) for n in allowed}
    assert {n: v for n, v in judged.items() if v is not GlobalClass.ALLOWED} == {}


def _jagged(folder: Path) -> Path:
    path = folder / "jagged.pth"
    nested = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
    torch.save({"w": torch.ones(2), "jagged": nested}, path)
    return path


def test_a_nested_jagged_tensor_is_safe_and_loads_weights_only(engine: Any, tmp_path: Path) -> None:
    """torch allows its own NJT classes once torch._dynamo is imported; the worker imports it."""
    path = _jagged(tmp_path)
    index = peek(str(path))
    assert "torch._dynamo.decorators._DimRange" in {g.qualname for g in index.globals}
    assert index.unsafe_globals == []
    event = engine.load(path, map_location="cpu")
    assert set(LoadReply.from_json(event.data).devices.values()) == {"cpu"}, event


def test_an_object_torch_will_not_fill_in_is_named_without_torch_s_paragraph(tmp_path: Path) -> None:
    """weights-only loading never fills a defaultdict in, whatever is allowed: the sentence says
    what it refused, never torch's advice to pass weights_only=False."""
    path = tmp_path / "filled.pth"
    torch.save({"w": torch.ones(2), "counts": collections.defaultdict(int, a=1)}, path)
    needed = tuple(g.qualname for g in peek(str(path)).unsafe_globals)
    error = _error(path, LoadOptions(allowed_globals=needed))
    assert error.kind == "weights-only"
    assert "SETITEM" in error.message and "collections.defaultdict" in error.message
    assert "weights_only" not in error.message and "In PyTorch" not in error.message


def test_a_name_whose_value_is_not_a_class_is_refused_even_when_it_is_none() -> None:
    for name in ("builtins.None", "builtins.Ellipsis", "collections.abc.__doc__", "typing.TYPE_CHECKING"):
        found = global_resolver.resolve(name)
        assert not found.ok and found.refusal is not None, name


def test_a_package_s_tests_are_never_imported_to_allow_a_global() -> None:
    """numpy ships its conftest.py, which registers test settings when imported."""
    found = global_resolver.resolve("numpy.conftest.pytest")
    assert found.refusal is not None and "tests or scripts" in found.refusal
    assert "numpy.conftest" not in sys.modules
