"""The static read in a child process under memory and CPU limits: the same answer as in-process,
and a sentence naming the limit when a file exceeds it, while the calling process carries on."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core.confined_peek import confined_peek, index_to_data
from inspector.core.errors import CheckpointError
from inspector.core.peek import DamagedCheckpointError, peek
from inspector.core.safety import Verdict, verdict_of
from tests.checkpoints import BuiltCheckpoint
from tests.hostile import HostileCase, build_corpus
from tests.layouts import sample_state, write_hf_set

#: One file of each kind of answer: trees of every format, a damaged file with its globals, a
#: reader differential, strings with lone surrogates, and a plain refusal.
_HOSTILE = ["legacy_later_payload", "truncated_payload", "zip_two_directories", "zip_case_alias_benign",
            "legacy_tar_polyglot", "surrogate_global", "surrogate_key", "safetensors_overlap"]  # fmt: skip


def _answer(read: object, path: Path) -> object:
    """What a read of ``path`` gives, as comparable plain data."""
    try:
        index = read(path)  # type: ignore[operator]
    except DamagedCheckpointError as exc:
        return (
            "damaged",
            exc.message,
            [(g.qualname, g.pickle, g.offset) for g in exc.globals],
            exc.differentials,
        )
    except CheckpointError as exc:
        return ("error", exc.message)
    return index_to_data(index)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostileCase]:
    return build_corpus(tmp_path_factory.mktemp("confined"))


def test_the_confined_read_gives_the_same_answer(
    corpus: dict[str, HostileCase], built_checkpoints: dict[str, BuiltCheckpoint]
) -> None:
    paths = [corpus[c].path for c in _HOSTILE]
    paths += [built_checkpoints[c].path for c in ("training-zip", "training-legacy", "shared-zip")]
    for path in paths:
        assert _answer(confined_peek, path) == _answer(peek, path), path.name


@pytest.mark.timed
def test_a_file_that_needs_more_memory_than_allowed_is_a_sentence(tmp_path: Path) -> None:
    """Four million empty dicts: within the reader's own budget, beyond a 300 MB address space."""
    path = tmp_path / "dicts.pkl"
    path.write_bytes(b"\x80\x02]" + b"}a" * (4 << 20) + b".")
    with pytest.raises(CheckpointError) as info:
        confined_peek(path, memory_bytes=300 << 20)
    assert "dicts.pkl" in info.value.message and "300 MB" in info.value.message


def test_a_file_that_needs_more_time_than_allowed_is_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "slow.pkl"
    path.write_bytes(b"\x80\x02N" + b"N0" * (6 << 20) + b".")
    with pytest.raises(CheckpointError) as info:
        confined_peek(path, cpu_seconds=1)
    assert "slow.pkl" in info.value.message and "1 s of processor time" in info.value.message


def test_a_shard_set_with_an_unreadable_shard_is_judged_the_same_when_confined(tmp_path: Path) -> None:
    """The parts that could not be read travel back with the index: they keep the set from being safe."""
    index_path = write_hf_set(tmp_path, sample_state())
    (tmp_path / "model-00002-of-00002.bin").write_bytes(b"not a checkpoint\n")
    direct, confined = peek(index_path), confined_peek(index_path)
    assert direct.unread and confined.unread == direct.unread
    assert verdict_of(confined) == verdict_of(direct)
    assert verdict_of(confined).verdict is Verdict.UNKNOWN
