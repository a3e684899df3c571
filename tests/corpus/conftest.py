"""The corpus fetched once per test run, and what torch and the static reader make of each file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from inspector.core.model import CheckpointIndex
from inspector.core.peek import peek
from tests.corpus.fetch import CorpusFile, cache_dir, fetch_all, load_manifest
from tests.corpus.torch_view import TorchView, torch_view

FILES: dict[str, CorpusFile] = {f.id: f for f in load_manifest()}

T = TypeVar("T")


class PerFile(Generic[T]):
    """Computes a fact about each corpus file once, on first use, so one failure stays in its tests."""

    def __init__(self, paths: dict[str, Path], compute: Callable[[CorpusFile, Path], T]) -> None:
        self._paths = paths
        self._compute = compute
        self._done: dict[str, T] = {}

    def __getitem__(self, file_id: str) -> T:
        if file_id not in self._done:
            self._done[file_id] = self._compute(FILES[file_id], self._paths[file_id])
        return self._done[file_id]


@pytest.fixture(scope="session")
def corpus_paths() -> dict[str, Path]:
    """Every corpus file, verified, from the cache (downloaded into it on first use)."""
    return fetch_all(list(FILES.values()), cache_dir())


@pytest.fixture(scope="session")
def torch_views(corpus_paths: dict[str, Path]) -> PerFile[TorchView]:
    return PerFile(corpus_paths, torch_view)


@pytest.fixture(scope="session")
def indexes(corpus_paths: dict[str, Path]) -> PerFile[CheckpointIndex]:
    return PerFile(corpus_paths, lambda _f, path: peek(path))
