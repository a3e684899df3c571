"""``load_checkpoint``: torch.load as the user chose, devices by path, errors as sentences."""

from __future__ import annotations

import argparse
import json
import os
import pickletools
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch

from inspector.core.errors import CheckpointError
from inspector.core.load_options import LoadOptions
from inspector.core.peek import peek
from inspector.engine import loader
from inspector.engine.loader import LoadError, LoadResult, load_checkpoint, tensor_devices
from tests.checkpoints import CASE_IDS

FORMATS = ["zip", "legacy"]
#: A CUDA device this machine does not have, whatever it has.
MISSING_CUDA = f"cuda:{max(1, torch.cuda.device_count())}"
MISSING_KIND = "device-unavailable" if torch.cuda.is_available() else "cuda-unavailable"


def save(obj: object, path: Path, fmt: str = "zip") -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    return path


def saved_locations(path: Path) -> set[str]:
    """The location field of every storage persistent id in a zip checkpoint's data.pkl."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        pickled = archive.read(name)
    strings = [arg for _, arg, _ in pickletools.genops(pickled) if isinstance(arg, str)]
    return {strings[i + 3] for i, s in enumerate(strings) if s == "storage"}


def devices(result: LoadResult) -> dict[tuple[object, ...], str]:
    return dict(result.devices)


def load_error(path: Path, options: LoadOptions | None = None) -> LoadError:
    with pytest.raises(LoadError) as caught:
        load_checkpoint(str(path), options or LoadOptions())
    error = caught.value
    assert isinstance(error, CheckpointError)
    assert "Traceback" not in error.message
    assert error.details  # torch's own words, for "Details"
    return error


def state() -> dict[str, Any]:
    return {
        "model": OrderedDict([("layers.0.weight", torch.ones(2, 3)), ("layers.0.bias", torch.zeros(2))]),
        "optimizer": {"state": {0: {"exp_avg": torch.zeros(2, 3), "step": torch.tensor(3.0)}}},
        "history": [torch.arange(3), (torch.ones(1), "note")],
        "epoch": 7,
    }


EXPECTED_PATHS = [
    ("model", "layers.0.weight"),
    ("model", "layers.0.bias"),
    ("optimizer", "state", 0, "exp_avg"),
    ("optimizer", "state", 0, "step"),
    ("history", 0),
    ("history", 1, 0),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("map_location", "expected"),
    [(None, "cpu"), ("cpu", "cpu"), ("meta", "meta"), ({"cpu": "meta"}, "meta")],
)
def test_every_tensor_is_reported_where_torch_put_it(
    tmp_path: Path, fmt: str, map_location: Any, expected: str
) -> None:
    path = save(state(), tmp_path / f"full.{fmt}.pth", fmt)
    result = load_checkpoint(str(path), LoadOptions(map_location=map_location))
    assert [p for p, _ in result.devices] == EXPECTED_PATHS
    assert {d for _, d in result.devices} == {expected}
    assert result.torch_version == torch.__version__
    assert result.seconds >= 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_paths_follow_the_static_readers_rules(tmp_path: Path, fmt: str) -> None:
    tied = torch.ones(4)
    obj = {
        1: {2: torch.zeros(1)},
        (3, "x"): torch.zeros(1),
        "tied": {"a": tied, "b": tied[:2]},
        "non-ascii κλειδί": torch.zeros(1),
    }
    result = load_checkpoint(str(save(obj, tmp_path / "keys.pth", fmt)), LoadOptions())
    assert [p for p, _ in result.devices] == [
        (1, 2),
        ("(3, 'x')",),
        ("tied", "a"),
        ("tied", "b"),
        ("non-ascii κλειδί",),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bare_tensor_has_the_empty_path(tmp_path: Path, fmt: str) -> None:
    result = load_checkpoint(str(save(torch.ones(3), tmp_path / "bare.pth", fmt)), LoadOptions())
    assert result.devices == [((), "cpu")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_list_of_tensors_is_indexed(tmp_path: Path, fmt: str) -> None:
    obj = [torch.ones(1), torch.ones(2, dtype=torch.bfloat16)]
    result = load_checkpoint(str(save(obj, tmp_path / "list.pth", fmt)), LoadOptions("meta"))
    assert result.devices == [((0,), "meta"), ((1,), "meta")]


def test_shared_and_cyclic_containers_are_walked_once() -> None:
    shared = {"w": torch.zeros(1)}
    cyclic: dict[str, Any] = {"a": shared, "b": shared}
    cyclic["self"] = cyclic
    assert tensor_devices(cyclic) == [(("a", "w"), "cpu")]


def test_result_json_is_plain_data(tmp_path: Path) -> None:
    path = save({"a": {0: torch.zeros(1)}}, tmp_path / "j.pth")
    data = load_checkpoint(str(path), LoadOptions()).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["devices"] == [{"path": ["a", 0], "device": "cpu"}]
    assert data["torch_version"] == torch.__version__


@pytest.mark.parametrize(
    ("fmt", "options", "expected_mmap"),
    [
        ("zip", LoadOptions(), True),
        ("zip", LoadOptions(mmap=False), None),
        ("legacy", LoadOptions(), None),
        ("legacy", LoadOptions(weights_only=False), None),
    ],
)
def test_torch_load_gets_explicit_weights_only_and_mmap_only_on_zip_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    options: LoadOptions,
    expected_mmap: bool | None,
) -> None:
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(str(save({"w": torch.ones(1)}, tmp_path / "m.pth", fmt)), options)
    assert len(calls) == 1
    assert calls[0]["weights_only"] is options.weights_only
    assert calls[0].get("mmap") is expected_mmap
    assert calls[0]["map_location"] is None


# -- storages saved on a CUDA device this machine lacks ---------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_tagger_really_writes_the_cuda_location(tmp_path: Path, saved_on: Any, fmt: str) -> None:
    with saved_on(MISSING_CUDA):
        path = save({"w": torch.ones(2)}, tmp_path / "gpu.pth", fmt)
    if fmt == "zip":
        assert saved_locations(path) == {MISSING_CUDA}
    else:
        assert MISSING_CUDA.encode() in path.read_bytes()
    # The registry is back to torch's own: a new save is tagged cpu again.
    assert saved_locations(save({"w": torch.ones(2)}, tmp_path / "cpu.pth")) == {"cpu"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("static_reader", [True, False], ids=["peek", "torch-probe"])
def test_cuda_checkpoint_as_saved_names_the_device_and_suggests_cpu(
    tmp_path: Path, saved_on: Any, fmt: str, static_reader: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not static_reader:  # the fallback: torch reports each saved location to a callable
        monkeypatch.setattr(loader, "_peek", lambda path: None)
    with saved_on(MISSING_CUDA):
        path = save({"w": torch.ones(2), "b": [torch.zeros(1)]}, tmp_path / "x.pth", fmt)
    error = load_error(path)
    assert error.kind == MISSING_KIND
    assert error.extra["devices"] == [MISSING_CUDA]
    assert error.extra["suggest"] == "cpu"
    assert "“x.pth”" in error.message
    assert MISSING_CUDA in error.message
    assert "map location cpu" in error.message
    assert "is_available" not in error.message  # torch's raw words stay in details


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("map_location", ["cpu", {MISSING_CUDA: "cpu"}])
def test_cuda_checkpoint_loads_when_mapped_to_cpu(
    tmp_path: Path, saved_on: Any, fmt: str, map_location: Any
) -> None:
    with saved_on(MISSING_CUDA):
        path = save({"w": torch.ones(2), "b": [torch.zeros(1)]}, tmp_path / "x.pth", fmt)
    result = load_checkpoint(str(path), LoadOptions(map_location=map_location))
    assert result.devices == [(("w",), "cpu"), (("b", 0), "cpu")]


def test_a_mapping_that_misses_the_saved_device_still_names_it(tmp_path: Path, saved_on: Any) -> None:
    with saved_on(MISSING_CUDA):
        path = save({"w": torch.ones(2)}, tmp_path / "x.pth")
    error = load_error(path, LoadOptions(map_location={"cuda:7": "cpu"}))
    assert error.kind == MISSING_KIND
    assert error.extra["saved_devices"] == [MISSING_CUDA]


def test_mapping_onto_a_missing_device_names_the_target(tmp_path: Path) -> None:
    path = save({"w": torch.ones(2)}, tmp_path / "x.pth")
    error = load_error(path, LoadOptions(map_location=MISSING_CUDA))
    assert error.kind == MISSING_KIND
    assert error.extra["devices"] == [MISSING_CUDA]
    assert MISSING_CUDA in error.message
    assert "“x.pth”" in error.message


def test_mapping_onto_missing_mps_is_device_unavailable(tmp_path: Path) -> None:
    if torch.backends.mps.is_available():
        pytest.fail("this test expects a machine without MPS")
    path = save({"w": torch.ones(2)}, tmp_path / "x.pth")
    error = load_error(path, LoadOptions(map_location={"cpu": "mps"}))
    assert error.kind == "device-unavailable"
    assert error.extra["devices"] == ["mps"]
    assert "MPS" in error.message


# -- weights-only refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_namespace_is_refused_by_name_and_loads_when_trusted(tmp_path: Path, fmt: str) -> None:
    obj = {"w": torch.ones(1), "args": argparse.Namespace(lr=0.1, w=torch.zeros(2))}
    path = save(obj, tmp_path / "ns.pth", fmt)
    error = load_error(path)
    assert error.kind == "weights-only"
    assert error.extra["globals"] == ["argparse.Namespace"]
    assert "argparse.Namespace" in error.message
    assert "\x1b[" not in (error.details or "")
    trusted = load_checkpoint(str(path), LoadOptions(weights_only=False))
    assert trusted.devices == [(("w",), "cpu"), (("args", "w"), "cpu")]


def test_every_unsafe_global_is_named(tmp_path: Path) -> None:
    obj = {"args": argparse.Namespace(out=Path("/x"))}
    error = load_error(save(obj, tmp_path / "two.pth"))
    path_class = f"{type(Path('/x')).__module__}.{type(Path('/x')).__name__}"
    assert set(error.extra["globals"]) == {"argparse.Namespace", path_class}
    assert "argparse.Namespace" in error.message
    assert path_class in error.message


def test_force_no_weights_only_in_the_environment_does_not_relax_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path = save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "ns.pth")
    assert load_error(path).kind == "weights-only"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_blocked_global_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = save({"w": torch.ones(1), "x": _Payload(marker)}, tmp_path / "evil.pth")
    error = load_error(path)
    assert error.kind == "dangerous"  # the safety policy holds it back before torch.load
    assert error.extra["globals"] == [f"{os.system.__module__}.system"]
    assert f"{os.system.__module__}.system" in error.message
    assert not marker.exists()


# -- files torch cannot read -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_truncated_checkpoint_is_corrupt(tmp_path: Path, fmt: str) -> None:
    path = save({"w": torch.ones(1000)}, tmp_path / "t.pth", fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    error = load_error(path)
    assert error.kind == "corrupt"
    assert "“t.pth”" in error.message
    assert "truncated" in error.message


def test_an_empty_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    error = load_error(path)
    assert error.kind == "corrupt"
    assert "empty" in error.message


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n" + bytes(range(200)), b"import os\n/usr/lib/python3/dist-packages\n"],
)
def test_a_file_that_is_no_checkpoint_says_so(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.pth"
    path.write_bytes(content)
    error = load_error(path)
    assert error.kind == "not-a-checkpoint"
    assert "“odd.pth” is not a PyTorch checkpoint" in error.message


def test_a_zip_not_written_by_torch_says_so(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    error = load_error(path)
    assert error.kind == "not-a-checkpoint"
    assert "zip archive" in error.message


def test_a_missing_file_and_a_folder(tmp_path: Path) -> None:
    missing = load_error(tmp_path / "gone.pth")
    assert missing.kind == "not-found"
    assert "“gone.pth” does not exist" in missing.message
    folder = load_error(tmp_path)
    assert folder.kind == "unreadable"
    assert "folder" in folder.message


def _torchscript(path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jit is deprecated, files still exist
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), str(path))
    return path


def test_torchscript_is_refused_under_weights_only(tmp_path: Path) -> None:
    error = load_error(_torchscript(tmp_path / "script.pth"))
    assert error.kind == "torchscript"
    assert "TorchScript" in error.message
    assert "“script.pth”" in error.message


def test_trusted_torchscript_reports_its_parameters_and_torchs_warnings(tmp_path: Path) -> None:
    result = load_checkpoint(str(_torchscript(tmp_path / "script.pth")), LoadOptions(weights_only=False))
    assert result.devices == [(("weight",), "cpu"), (("bias",), "cpu")]
    assert any("TorchScript" in w for w in result.warnings)


# -- agreement with the static reader on every checkpoint the shared builders make ------------


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_paths_match_the_static_read(built_checkpoints: dict[str, Any], case_id: str) -> None:
    built = built_checkpoints[case_id]
    index = peek(built.path)
    static = sorted((repr(n.path), n.tensor.saved_device) for n in index.tensor_nodes())
    trusted = bool(built.safe_globals)
    result = load_checkpoint(str(built.path), LoadOptions("cpu", weights_only=not trusted))
    assert sorted(repr(p) for p, _ in result.devices) == [p for p, _ in static]
    assert {d for _, d in result.devices} <= {"cpu"}
    elsewhere = sorted({d for _, d in static if d != "cpu"})
    if elsewhere:
        error = load_error(built.path, LoadOptions(weights_only=not trusted))
        assert error.kind == MISSING_KIND
        assert error.extra["devices"] == elsewhere


def test_torch_tar_is_refused_under_weights_only_and_loads_when_trusted(tmp_path: Path) -> None:
    from tests.layouts import write_torch_tar

    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    path = write_torch_tar(tmp_path / "old.pth", {"w": w, "row": w[1]})
    error = load_error(path)
    assert error.kind == "weights-only"
    assert "tar format" in error.message and "“old.pth”" in error.message
    result = load_checkpoint(str(path), LoadOptions(weights_only=False))
    assert sorted(result.devices) == [(("row",), "cpu"), (("w",), "cpu")]
