"""``checkpoint-inspector info``: the JSON contract (README, "``info --json``"), checked against torch itself.

The CLI runs as a real subprocess (``python -m inspector info FILE ...``); the runs of one test
module happen in parallel, once, in module-scoped fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inspector.core.formatting import format_shape
from tests import checkpoints
from tests.checkpoints import CASE_IDS, BuiltCheckpoint, TorchView
from tests.conftest import CliResult, CliRunner

_TOP_FIELDS = {"path", "format", "tensors", "globals", "unsafe_globals", "total_params",
               "total_bytes"}  # fmt: skip
_TENSOR_FIELDS = {"key", "path", "shape", "dtype", "saved_device", "numel", "nbytes"}

#: (case, --map-location, the device every tensor must report) for the ``--load`` runs, which
#: import torch (about two seconds each), so only a representative few.
_LOAD_RUNS = (
    ("training-zip", "cpu", "cpu"),
    ("cuda_tagged-zip", "cpu", "cpu"),
    ("cuda_tagged-legacy", "meta", "meta"),
    ("dtypes-zip", "meta", "meta"),
    ("torch04-legacy", "cpu", "cpu"),
)


@pytest.fixture(scope="module")
def info_json(cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]) -> dict[str, CliResult]:
    calls = [("info", built_checkpoints[c].path, "--json") for c in CASE_IDS]
    return dict(zip(CASE_IDS, cli.run_many(calls), strict=True))


@pytest.fixture(scope="module")
def info_text(cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]) -> dict[str, CliResult]:
    calls = [("info", built_checkpoints[c].path) for c in CASE_IDS]
    return dict(zip(CASE_IDS, cli.run_many(calls), strict=True))


@pytest.fixture(scope="module")
def info_loaded(
    cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> dict[tuple[str, str], CliResult]:
    calls = [
        ("info", built_checkpoints[case].path, "--json", "--load", "--map-location", location)
        for case, location, _ in _LOAD_RUNS
    ]
    results = cli.run_many(calls)
    return {(case, location): r for (case, location, _), r in zip(_LOAD_RUNS, results, strict=True)}


def _global_names(entries: Any) -> set[str]:
    """Qualified names from a JSON list of globals, whether given as strings or objects."""
    assert isinstance(entries, list), f"expected a list of globals, got {entries!r}"
    names: set[str] = set()
    for entry in entries:
        if isinstance(entry, str):
            names.add(entry)
        elif isinstance(entry, dict) and "qualname" in entry:
            names.add(entry["qualname"])
        elif isinstance(entry, dict) and {"module", "name"} <= entry.keys():
            module, name = entry["module"], entry["name"]
            names.add(name if name.startswith(f"{module}.") else f"{module}.{name}")
        else:
            raise AssertionError(f"cannot read the global {entry!r}")
    return names


def _tensor_mismatches(
    out: dict[str, Any], built: BuiltCheckpoint, view: TorchView, device: str | None = None
) -> list[str]:
    """Differences between the JSON ``tensors`` and what torch loads; [] when they agree."""
    problems: list[str] = []
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    for entry in out["tensors"]:
        missing = _TENSOR_FIELDS - entry.keys()
        if missing:
            problems.append(f"{entry.get('key')!r} lacks {sorted(missing)}")
            continue
        entries[tuple(entry["path"])] = entry
    if len(entries) != len(out["tensors"]):
        problems.append(f"{len(out['tensors'])} entries for {len(entries)} distinct paths")
    if set(entries) != set(view.tensors):
        extra = sorted(map(repr, set(entries) - set(view.tensors)))
        lacking = sorted(map(repr, set(view.tensors) - set(entries)))
        problems.append(f"paths differ: extra {extra}, missing {lacking}")
    for path, t in view.tensors.items():
        entry = entries.get(path)
        if entry is None:
            continue
        expected = {
            "key": t.key,
            "shape": list(t.shape),
            "dtype": t.dtype,
            "saved_device": t.saved_device,
            "numel": t.numel,
            "nbytes": t.nbytes,
        }
        if device is not None:
            expected["device"] = device
        for name, value in expected.items():
            if entry.get(name) != value:
                problems.append(f"{t.key!r}: {name} {entry.get(name)!r}, torch {value!r}")
    return problems


def _check_report(out: Any, built: BuiltCheckpoint, view: TorchView, device: str | None) -> None:
    assert isinstance(out, dict)
    assert out.keys() >= _TOP_FIELDS, f"missing {sorted(_TOP_FIELDS - out.keys())}"
    assert Path(out["path"]).resolve() == built.path.resolve()
    assert out["format"] == built.format_name
    problems = _tensor_mismatches(out, built, view, device)
    assert not problems, "\n".join(problems)
    assert (out["total_params"], out["total_bytes"]) == (view.total_params, view.total_bytes)
    globals_ = _global_names(out["globals"])
    unsafe = _global_names(out["unsafe_globals"])
    assert unsafe <= globals_
    if built.case == "namespace":
        assert unsafe == {"argparse.Namespace"}
    else:
        assert unsafe == set(), "torch loads this file with weights_only=True"
    rebuild = "torch._utils._rebuild_tensor" if built.case == "torch04" else "_rebuild_tensor_v"
    assert any(rebuild in name for name in globals_), sorted(globals_)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_info_json_matches_torch(
    case_id: str,
    info_json: dict[str, CliResult],
    built_checkpoints: dict[str, BuiltCheckpoint],
    torch_views: dict[str, TorchView],
) -> None:
    result = info_json[case_id]
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr
    _check_report(result.json(), built_checkpoints[case_id], torch_views[case_id], None)


def test_keys_join_container_path_and_state_dict_key(info_json: dict[str, CliResult]) -> None:
    for fmt in ("zip", "legacy"):
        tensors = {t["key"]: t for t in info_json[f"training-{fmt}"].json()["tensors"]}
        assert tensors["model.layers.0.0.weight"]["path"] == ["model", "layers.0.0.weight"]
        assert tensors["optimizer.state.0.exp_avg"]["path"] == ["optimizer", "state", 0, "exp_avg"]
        assert tensors["optimizer.state.1.step"]["shape"] == []
        (bare,) = info_json[f"bare_tensor-{fmt}"].json()["tensors"]
        assert (bare["key"], bare["path"], bare["shape"]) == ("", [], [3, 5])
        listed = {t["key"]: t["path"] for t in info_json[f"tensor_list-{fmt}"].json()["tensors"]}
        assert listed["2.1"] == [2, 1]
        parallel = [t["key"] for t in info_json[f"data_parallel-{fmt}"].json()["tensors"]]
        assert parallel and all(k.startswith("module.") for k in parallel)


def test_cuda_tagged_tensors_report_the_device_they_were_saved_on(
    info_json: dict[str, CliResult],
) -> None:
    for fmt in ("zip", "legacy"):
        devices = {t["key"]: t["saved_device"] for t in info_json[f"cuda_tagged-{fmt}"].json()["tensors"]}
        assert devices == {
            "encoder.weight": "cuda:0",
            "decoder.weight": "cuda:1",
            "decoder.bias": "cuda:1",
            "cpu_buffer": "cpu",
        }


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_info_text_shows_every_tensor_name_shape_and_dtype(
    case_id: str, info_text: dict[str, CliResult], torch_views: dict[str, TorchView]
) -> None:
    result = info_text[case_id]
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    missing = []
    for t in torch_views[case_id].tensors.values():
        name = str(t.path[-1]).split(".")[-1] if t.path else ""
        shape = format_shape(t.shape)
        if not any(name in line and shape in line and t.dtype in line for line in lines):
            missing.append(f"{t.key!r} ({name!r} {shape} {t.dtype})")
    assert not missing, "no line shows " + ", ".join(missing) + "\n" + result.stdout[:3000]


@pytest.mark.parametrize("case_id", ["training-zip", "cuda_tagged-legacy", "namespace-zip"])
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_info_without_load_never_imports_torch(
    case_id: str, as_json: bool, cli: CliRunner, built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    args = ["info", str(built_checkpoints[case_id].path)] + (["--json"] if as_json else [])
    result = cli.probe_imports(*args)
    assert result.returncode == 0, result.describe()
    assert result.stdout.strip(), "info printed nothing"
    assert result.torch_modules == ()


@pytest.mark.parametrize(("case_id", "location", "device"), _LOAD_RUNS)
def test_info_load_reports_where_torch_put_each_tensor(
    case_id: str,
    location: str,
    device: str,
    info_loaded: dict[tuple[str, str], CliResult],
    built_checkpoints: dict[str, BuiltCheckpoint],
    torch_views: dict[str, TorchView],
) -> None:
    result = info_loaded[(case_id, location)]
    assert result.returncode == 0, result.describe()
    _check_report(result.json(), built_checkpoints[case_id], torch_views[case_id], device)


def test_json_is_one_object_and_nothing_else(info_json: dict[str, CliResult]) -> None:
    for case_id in ("training-zip", "non_ascii-legacy"):
        stdout = info_json[case_id].stdout
        decoder = json.JSONDecoder()
        _, end = decoder.raw_decode(stdout.lstrip())
        assert stdout.lstrip()[end:].strip() == ""
    keys = {t["key"] for t in info_json["non_ascii-zip"].json()["tensors"]}
    assert {"权重", "é", "模型.层.0.偏置", "模型.naïve"} == keys


# -- the model's parameters and every tensor's -----------------------------------------------------

_EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "examples" / "tiny_transformer_training.pth"


def _torch_model_params(state: dict[str, Any]) -> int:
    """What ``sum(p.numel() for p in model.parameters())`` gives for a model with this state_dict
    (tensors that are one storage view counted once, as tied parameters are)."""
    import torch

    seen = {}
    for t in state.values():
        assert isinstance(t, torch.Tensor)
        seen[(t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))] = (
            t.numel()
        )
    return sum(seen.values())


def test_info_counts_the_model_apart_from_the_optimizer_state(cli: CliRunner, tmp_path: Path) -> None:
    import torch

    tied = checkpoints.TiedNet()
    torch.save({"weights": tied.state_dict(), "opt": torch.optim.SGD(tied.parameters()).state_dict()},
               tmp_path / "odd_names.pth")  # fmt: skip
    torch.save({"a": {"x": torch.zeros(3)}, "b": {"y": torch.zeros(4)}}, tmp_path / "unknown.pth")
    calls = [("info", _EXAMPLE, "--json"), ("info", _EXAMPLE), ("info", tmp_path / "odd_names.pth", "--json"),
             ("info", tmp_path / "unknown.pth", "--json")]  # fmt: skip
    example, text, odd, unknown = cli.run_many(calls)
    loaded = torch.load(_EXAMPLE, weights_only=True)
    out = example.json()
    assert out["model_params"] == _torch_model_params(loaded["model"]) == 23_040
    assert out["model_key"] == "model"
    assert out["total_params"] == 69_148  # the Adam state is counted there
    assert "23.0K model params · 69.1K in all tensors" in text.stdout.splitlines()[1]
    odd_out = odd.json()
    assert odd_out["model_key"] == "weights"  # the part the optimizer's state maps onto
    assert odd_out["model_params"] == sum(p.numel() for p in tied.parameters()) == 24  # tied: once
    assert unknown.json()["model_params"] is None and unknown.json()["model_key"] is None


def test_a_plain_state_dict_is_all_model(info_json: dict[str, CliResult]) -> None:
    for case in ("state_dict-zip", "data_parallel-legacy", "dtypes-zip", "bare_tensor-legacy"):
        out = info_json[case].json()
        assert out["model_params"] == out["total_params"], case
    assert info_json["training-zip"].json()["model_key"] == "model"
