"""The loader's safety rules: allowlisted globals as real objects, refusals before torch.load, the
trusted-mode pickle module, and a worker that reports what it can unpickle with."""

from __future__ import annotations

import argparse
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.load_options import LoadOptions
from inspector.engine import loader
from inspector.engine.loader import LoadError, load_checkpoint


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
    path, marker = _command_payload(tmp_path)
    error = _error(path, LoadOptions())
    assert error.kind == "weights-only"
    assert error.extra["blocked"] == [f"{os.system.__module__}.system"]
    assert [call["weights_only"] for call in torch_load_calls] == [True]
    assert not marker.exists()


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
    real_import = loader.importlib.import_module
    monkeypatch.setattr(
        loader.importlib,
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
    assert ready["pickle_modules"] == loader.available_pickle_modules()
    assert engine.client.pickle_modules == ready["pickle_modules"]


def test_worker_imports_allowed_globals_itself(engine: Any, tmp_path: Path) -> None:
    path = _namespace(tmp_path)
    refused = engine.load(path, map_location="meta")
    assert refused["kind"] == "weights-only"
    assert refused["extra"]["globals"] == ["argparse.Namespace"]
    event = engine.load(path, map_location="meta", allowed_globals=["argparse.Namespace"])
    assert event["event"] == "result"
    assert {tuple(d["path"]): d["device"] for d in event["result"]["devices"]} == {
        ("weight",): "meta",
        ("args", "w"): "meta",
    }


def test_worker_never_runs_a_command_payload(engine: Any, tmp_path: Path) -> None:
    path, marker = _command_payload(tmp_path)
    assert engine.load(path)["kind"] == "weights-only"
    refused = engine.load(path, allowed_globals=[f"{os.system.__module__}.system"])
    assert refused["kind"] == "refused-global"
    assert not marker.exists()
