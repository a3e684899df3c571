"""What each format allows, as the static read says it, checked against the tools that open the
files: torch.load (with and without mmap), torch.jit.load, safetensors, one tensor's bytes read on
their own, and shard sets."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inspector.core.errors import CheckpointError
from inspector.core.formats import Format
from inspector.core.layout import resolve_layout
from inspector.core.peek import LAYOUT_READERS, peek
from inspector.core.readers import READERS, reader_for
from inspector.core.storage_layout import storage_layout
from tests.layouts import write_dcp, write_hf_set, write_torch_tar, write_torchscript


def _state() -> dict[str, torch.Tensor]:
    return {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}


def _zip(folder: Path) -> Path:
    torch.save(_state(), folder / "model.pt")
    return folder / "model.pt"


def _legacy(folder: Path) -> Path:
    torch.save(_state(), folder / "model.pt", _use_new_zipfile_serialization=False)
    return folder / "model.pt"


def _pickle(folder: Path) -> Path:
    (folder / "settings.pkl").write_bytes(pickle.dumps({"lr": 0.1, "steps": [1, 2]}))
    return folder / "settings.pkl"


def _polyglot(folder: Path) -> Path:
    """A text file with a torch.save archive appended: zip readers find it, torch.load does not."""
    archive = io.BytesIO()
    torch.save(_state(), archive)
    (folder / "notes.pt").write_bytes(b"release notes, see below\n" + archive.getvalue())
    return folder / "notes.pt"


def _safetensors(folder: Path) -> Path:
    save_file(_state(), str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder / "model.safetensors"


BUILDERS: dict[Format, Callable[[Path], Path]] = {
    Format.TORCH_ZIP: _zip,
    Format.TORCHSCRIPT: lambda folder: write_torchscript(folder / "scripted.pt"),
    Format.TORCH_LEGACY: _legacy,
    Format.TORCH_TAR: lambda folder: write_torch_tar(folder / "old.tar", _state()),
    Format.PICKLE: _pickle,
    Format.POLYGLOT: _polyglot,
    Format.SAFETENSORS: _safetensors,
    Format.HF_SHARDED: lambda folder: write_hf_set(folder / "set", _state()),
    Format.DCP: lambda folder: write_dcp(folder / "dcp", dict(_state())),
}
SINGLE_FILES = [f for f in Format if not f.several_files]


def _works(call: Callable[[], Any]) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call()
        except Exception:
            return False
    return True


def _by_content(path: Path) -> Path:
    """The file under a name that says nothing: torch.load opens a path ending in .safetensors
    through the safetensors library by its name, and formats are told by their content."""
    if path.is_dir():
        return path
    plain = path.with_name("by-content.ckpt")
    shutil.copy(path, plain)
    return plain


def test_every_format_is_checked_here() -> None:
    assert set(BUILDERS) == set(Format)


@pytest.mark.parametrize("fmt", list(Format))
def test_the_readers_name_the_format_of_each_file(tmp_path: Path, fmt: Format) -> None:
    assert peek(BUILDERS[fmt](tmp_path)).format is fmt


def test_each_format_is_declared_by_the_readers_that_yield_it() -> None:
    declared = [f for r in READERS for f in r.formats] + [
        f for r in LAYOUT_READERS.values() for f in r.formats
    ]
    assert set(declared) == set(Format)


@pytest.mark.parametrize("fmt", SINGLE_FILES)
def test_the_reader_a_file_goes_to_declares_the_format_it_reads(tmp_path: Path, fmt: Format) -> None:
    path = BUILDERS[fmt](tmp_path)
    head = path.read_bytes()[:4096]
    assert fmt in reader_for(head, path.stat().st_size).formats


@pytest.mark.parametrize("fmt", list(Format))
def test_torch_load_opens_exactly_the_formats_that_say_so(tmp_path: Path, fmt: Format) -> None:
    path = _by_content(BUILDERS[fmt](tmp_path))
    assert _works(lambda: torch.load(path, weights_only=False)) is fmt.torch_load


@pytest.mark.parametrize("fmt", list(Format))
def test_mapped_loading_works_exactly_for_the_formats_that_say_so(tmp_path: Path, fmt: Format) -> None:
    path = _by_content(BUILDERS[fmt](tmp_path))
    assert _works(lambda: torch.load(path, weights_only=True, mmap=True)) is fmt.mmap


@pytest.mark.parametrize("fmt", list(Format))
def test_code_is_held_exactly_by_the_formats_that_say_so(tmp_path: Path, fmt: Format) -> None:
    path = BUILDERS[fmt](tmp_path)
    assert _works(lambda: torch.jit.load(str(path))) is fmt.holds_code


@pytest.mark.parametrize("fmt", list(Format))
def test_string_metadata_is_held_exactly_by_the_formats_that_say_so(tmp_path: Path, fmt: Format) -> None:
    path = BUILDERS[fmt](tmp_path)

    def metadata() -> None:
        with safe_open(str(path), "pt") as f:
            assert f.metadata() == {"format": "pt"}

    assert _works(metadata) is fmt.string_metadata


@pytest.mark.parametrize("fmt", list(Format))
def test_one_tensor_is_read_alone_exactly_in_the_formats_that_say_so(tmp_path: Path, fmt: Format) -> None:
    path = BUILDERS[fmt](tmp_path)
    index = peek(path, whole_set=False)
    if not fmt.direct_reads:
        with pytest.raises(CheckpointError):
            storage_layout(path, index)
        return
    saved = {k: t.numpy().tobytes() for k, t in _state().items()}
    with storage_layout(path, index) as layout, open(path, "rb") as f:
        for node in index.root.tensors():
            assert node.tensor is not None
            span = layout.span(node.tensor.storage_key)
            f.seek(span.offset)
            data = f.read(span.nbytes)
            assert len(data) >= node.tensor.nbytes
            if node.key in saved:
                assert data[: node.tensor.nbytes] == saved[node.key]


@pytest.mark.parametrize("fmt", list(Format))
def test_several_files_are_exactly_the_layouts_of_a_set(tmp_path: Path, fmt: Format) -> None:
    assert resolve_layout(BUILDERS[fmt](tmp_path)).is_set is fmt.several_files


@pytest.mark.parametrize("fmt", SINGLE_FILES)
def test_a_shard_set_shows_exactly_the_shards_whose_format_may_be_one(tmp_path: Path, fmt: Format) -> None:
    shard = BUILDERS[fmt](tmp_path)
    own = peek(shard)
    folder = tmp_path / "one-shard-set"
    folder.mkdir()
    shutil.copy(shard, folder / shard.name)
    weight_map = {n.key: shard.name for n in own.root.tensors()}
    (folder / "model.index.json").write_text(json.dumps({"weight_map": weight_map}))
    shown = peek(folder / "model.index.json")
    taken = bool(weight_map) and shown.tensor_count == own.tensor_count and not shown.warnings
    assert taken is fmt.hf_shard
