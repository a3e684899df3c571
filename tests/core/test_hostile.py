"""Hostile files: the static reader runs nothing, says what each file is, and bounds its own work."""

from __future__ import annotations

import logging
import os
import pickle
import struct
import time
import zipfile
from pathlib import Path

import pytest

from inspector.core.errors import CheckpointError
from inspector.core.globals_policy import classify
from inspector.core.model import GlobalClass, GlobalRef
from inspector.core.peek import DamagedCheckpointError, peek
from inspector.core.unpickler import Limits, SafeUnpickler
from tests.hostile import MARKER, HostileCase, build_corpus

CASE_IDS = [
    "os_system",
    "posix_system_p0",
    "exec_p0",
    "eval_p0",
    "exec_p2",
    "eval_p2",
    "exec_p4",
    "eval_p4",
    "subprocess_popen",
    "inst_popen",
    "runpy_run_code",
    "webbrowser_open",
    "nested_pickle_loads",
    "stack_global_memo",
    "stack_global_strings",
    "legacy_later_payload",
    "partial_chain",
    "dcp_metadata_payload",
    "torchscript_renamed",
    "plain_pickle_renamed",
    "plain_pickle_then_payload",
    "zip_bomb_member",
    "zip_bomb_data_pkl",
    "zip_evil_data_pkl",
    "zip_evil_extra_pickle",
    "zip_compressed_evil_pickle",
    "zip_dotdot_member",
    "zip_absolute_member",
    "zip_duplicate_data_pkl",
    "zip_encrypted_data_pkl",
    "polyglot_pickle_zip",
    "polyglot_png_zip",
    "polyglot_png_torch_zip",
    "huge_element_count",
    "short_storage_record",
    "truncated_pickle",
    "truncated_payload",
    "deep_nesting",
    "self_reference",
    "safetensors_2_62",
    "safetensors_2_62_offsets",
    "safetensors_overlap",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostileCase]:
    cases = build_corpus(tmp_path_factory.mktemp("hostile"))
    assert sorted(cases) == sorted(CASE_IDS)
    return cases


def _children() -> set[int]:
    """Child processes of this process (zombies included: a started process stays listed)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text()
        found.update(int(p) for p in text.split())
    return found


def _verdict(refs: list[GlobalRef]) -> str:
    kinds = {g.verdict for g in refs}
    if GlobalClass.DANGEROUS in kinds:
        return "dangerous"
    return "unknown" if GlobalClass.UNKNOWN in kinds else "safe"


def _read(case: HostileCase) -> tuple[str, list[GlobalRef], list[str], str]:
    """(verdict or "error", globals, warnings, error sentence) of one peek."""
    try:
        index = peek(case.path)
    except DamagedCheckpointError as exc:
        return _verdict(exc.globals), exc.globals, [], exc.message
    except CheckpointError as exc:
        return "error", [], [], exc.message
    return _verdict(index.globals), index.globals, index.warnings, ""


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_peek_runs_nothing_and_gives_the_documented_verdict(
    case_id: str, corpus: dict[str, HostileCase]
) -> None:
    case = corpus[case_id]
    before = _children()
    verdict, refs, warnings, error = _read(case)
    assert not (case.path.parent / MARKER).exists(), f"{case_id}: a payload ran"
    assert _children() == before, f"{case_id}: a process was started"
    assert verdict == case.verdict, f"{case_id}: {verdict} {error} {[g.qualname for g in refs]}"
    if case.error_part:
        assert case.error_part in error, error
        assert error.startswith("“") and error.endswith(".") and "\n" not in error
    dangerous = {g.qualname for g in refs if g.verdict is GlobalClass.DANGEROUS}
    assert set(case.dangerous) <= dangerous, f"{case_id}: {dangerous}"
    for g in refs:
        assert g.pickle and g.offset >= 0
    if case.warning_part:
        assert any(case.warning_part in w for w in warnings), warnings


def test_damaged_file_keeps_the_globals_it_named(corpus: dict[str, HostileCase]) -> None:
    with pytest.raises(DamagedCheckpointError) as info:
        peek(corpus["truncated_payload"].path)
    assert "truncated" in info.value.message
    assert [g.qualname for g in info.value.globals] == ["posix.system"]


def test_torchscript_lists_globals_of_data_and_debug_pickles(corpus: dict[str, HostileCase]) -> None:
    index = peek(corpus["torchscript_renamed"].path)
    assert index.format == "torchscript"
    pickles = {g.pickle for g in index.globals}
    assert "data.pkl" in pickles
    assert any(p.endswith(".debug_pkl") for p in pickles)
    # The archive's own classes are data of its pickles (the code they name runs only under jit.load).
    assert any(
        g.qualname.startswith("__torch__.") and g.verdict is GlobalClass.ALLOWED for g in index.globals
    )
    assert index.tensor_count == 1


def test_globals_are_recorded_with_their_offsets(corpus: dict[str, HostileCase]) -> None:
    index = peek(corpus["stack_global_memo"].path)
    (g,) = index.globals
    data = corpus["stack_global_memo"].path.read_bytes()
    assert data[g.offset] == 0x93  # the STACK_GLOBAL opcode itself
    legacy = peek(corpus["legacy_later_payload"].path)
    assert [g.pickle for g in legacy.dangerous_globals] == ["storage-keys pickle"]


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("posix", "system"), ("nt", "system"), ("subprocess", "check_output"),
     ("builtins", "eval"), ("builtins", "exec"), ("builtins", "compile"), ("builtins", "getattr"),
     ("builtins", "__import__"), ("builtins", "open"), ("__builtin__", "eval"), ("runpy", "run_path"),
     ("importlib", "import_module"), ("marshal", "loads"), ("types", "CodeType"), ("pickle", "loads"),
     ("_pickle", "loads"), ("torch", "load"), ("torch.jit", "load"), ("pip", "main"),
     ("webbrowser", "open"), ("socket", "create_connection"), ("pydoc", "pipepager"),
     ("functools", "partial"), ("torch", "serialization.load"), ("torch.storage", "_load_from_bytes"),
     ("builtins", "object.__subclasses__")],
)  # fmt: skip
def test_dangerous_globals(module: str, name: str) -> None:
    assert classify(module, name) is GlobalClass.DANGEROUS


@pytest.mark.parametrize(
    ("module", "name"),
    [("numpy.core.multiarray", "_reconstruct"), ("argparse", "Namespace"), ("pathlib", "PosixPath"),
     ("torch", "nn.Linear"), ("mypackage.models", "Net"), ("__torch__", "M"), ("builtins", "print")],
)  # fmt: skip
def test_anything_not_known_allowed_is_at_least_unknown(module: str, name: str) -> None:
    assert classify(module, name) is GlobalClass.UNKNOWN


# --- limits ---------------------------------------------------------------------------------------


def _limited(data: bytes, **limits: int) -> str:
    with pytest.raises(CheckpointError) as info:
        SafeUnpickler(data, limits=Limits(**limits)).load()  # type: ignore[arg-type]
    return info.value.message


def test_object_budget_stops_many_empty_containers() -> None:
    data = b"\x80\x02]" + b"}a" * 200_000 + b"."
    assert "MB" in _limited(data, max_bytes=1 << 20)


def test_memo_entries_are_bounded() -> None:
    data = b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i) for i in range(50_000)) + b"."
    assert "memo entries" in _limited(data, max_memo=10_000)


def test_opcode_limit_works_below_the_check_interval() -> None:
    assert "opcodes" in _limited(b"\x80\x02N" + b"N0" * 6000 + b".", max_opcodes=10_000)


def test_copies_of_a_shared_list_are_charged() -> None:
    # One list of 100,000 items, then a thousand set() calls on it: quadratic unless charged.
    big = b"](" + b"N" * 100_000 + b"eq\x00"
    calls = b"(" + b"c__builtin__\nset\nq\x010" + b"h\x01h\x00\x85R" * 1000 + b"l"
    assert "MB" in _limited(b"\x80\x02" + big + calls + b".", max_bytes=64 << 20)


def test_long_global_names_are_refused() -> None:
    data = b"\x80\x04" + b"\x8c\x02os" + b"X" + struct.pack("<I", 5000) + b"a" * 5000 + b"\x93."
    assert "longer than" in _limited(data)


def test_huge_length_claims_do_not_read_the_file(tmp_path: Path) -> None:
    # BINUNICODE8 claiming 2**60 bytes in a 20-byte file: refused at once, nothing allocated.
    path = tmp_path / "claim.pkl"
    path.write_bytes(b"\x80\x04\x8d" + struct.pack("<Q", 1 << 60) + b"abc.")
    with pytest.raises(CheckpointError, match="truncated"):
        peek(path)


def test_hostile_object_graph_is_refused_quickly_and_cheaply(tmp_path: Path) -> None:
    """8 MB of empty dicts appended to a list: the default budget stops it, not the machine."""
    path = tmp_path / "dicts.pkl"
    path.write_bytes(b"\x80\x02]" + b"}a" * (4 << 20) + b".")
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="MB"):
        peek(path)
    assert time.monotonic() - start < 30


def test_tree_is_cut_short_past_its_budget(tmp_path: Path) -> None:
    from inspector.core.tree import TreeBuilder
    from inspector.core.unpickler import PDict

    top = PDict(items=[(f"k{i}", [i, i]) for i in range(10_000)])
    builder = TreeBuilder(max_bytes=100_000)
    root = builder.build(top)
    assert len(root.children) < 1000
    assert "more items not shown" in (root.children[-1].value or "")
    assert any("cut short" in w for w in builder.warnings)


def test_keys_that_are_deep_tuples_do_not_recurse(tmp_path: Path) -> None:
    path = tmp_path / "deep_key.pkl"
    path.write_bytes(b"\x80\x02}" + b")" + b"\x85" * 50_000 + b"Ns.")
    index = peek(path)
    assert len(index.root.children) == 1


def test_self_reference_is_a_ref_row(corpus: dict[str, HostileCase]) -> None:
    index = peek(corpus["self_reference"].path)
    kinds = {n.key: n.kind.value for n in index.root.walk()}
    assert kinds["self"] == "ref"
    assert kinds["list.0"] == "ref"


def test_many_bad_storage_records_give_few_warnings(tmp_path: Path) -> None:
    persid = b"(X\x07\x00\x00\x00storagecnope\nNope\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ"
    path = tmp_path / "bad_records.pkl"
    path.write_bytes(b"\x80\x02](" + persid * 5000 + b"e.")
    index = peek(path)
    assert len(index.warnings) < 30


def test_compressed_pickle_is_inflated_only_to_a_cap(corpus: dict[str, HostileCase]) -> None:
    with pytest.raises(CheckpointError, match="compressed"):
        peek(corpus["zip_bomb_data_pkl"].path)


# --- cross-check against picklescan and fickling (static scanning APIs only) -----------------------


def _picklescan_dangerous(path: Path) -> bool:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path))
    return result.infected_files > 0 or result.issues_count > 0


def _fickling_dangerous(path: Path) -> tuple[bool, bool]:
    """(dangerous, only for exceeding its resource limits) by fickling's static analysis."""
    import fickling
    from fickling.analysis import Severity

    if zipfile.is_zipfile(path):
        try:
            results = list(fickling.scan_zip_archive(str(path), graceful=True).values())
        except RuntimeError:  # an encrypted member: fickling cannot read it
            return False, False
    else:
        results = [fickling.scan_file(str(path), graceful=True)]
    worst = [r for r in results if r.severity.value[0] >= Severity.LIKELY_OVERTLY_MALICIOUS.value[0]]
    if not worst:
        return False, False
    messages = [str(getattr(x, "message", x)) for r in worst for x in r.results]
    only_limits = bool(messages) and all("Resource limits" in m for m in messages)
    return True, only_limits


#: Files both scanners may not read safely: fickling and picklescan inflate data.pkl in memory (1 GiB).
_NOT_CROSS_CHECKED = {"zip_bomb_data_pkl"}


@pytest.mark.parametrize("case_id", [c for c in CASE_IDS if c not in _NOT_CROSS_CHECKED])
def test_whatever_the_scanners_call_dangerous_we_call_dangerous(
    case_id: str, corpus: dict[str, HostileCase], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)
    case = corpus[case_id]
    ours, _, warnings, _ = _read(case)
    if _picklescan_dangerous(case.path):
        assert ours == "dangerous", f"picklescan calls {case_id} dangerous, we say {ours}"
    dangerous, only_limits = _fickling_dangerous(case.path)
    if dangerous and only_limits:
        # fickling gives up on the nesting depth (an expansion attack to it); we read it and warn.
        assert any("nested deeper" in w for w in warnings), warnings
    elif dangerous:
        assert ours == "dangerous", f"fickling calls {case_id} dangerous, we say {ours}"
    assert not (case.path.parent / MARKER).exists()


def test_cross_check_is_not_vacuous(corpus: dict[str, HostileCase]) -> None:
    """Both scanners do call the payload files dangerous (else the check above proves nothing)."""
    assert _picklescan_dangerous(corpus["os_system"].path)
    assert _fickling_dangerous(corpus["exec_p0"].path) == (True, False)
    assert not _picklescan_dangerous(corpus["plain_pickle_renamed"].path)


def test_pickle_module_is_never_used_to_read(
    monkeypatch: pytest.MonkeyPatch, corpus: dict[str, HostileCase]
) -> None:
    """peek never calls pickle's own loaders, whatever the file."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used to load a file")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    for case in corpus.values():
        _read(case)


def test_a_long_string_shared_many_times_is_described_cheaply(tmp_path: Path) -> None:
    """2 MB of text referenced 20,000 times: each row shows a slice, never the whole repr."""
    text = b"a" * (2 << 20)
    path = tmp_path / "shared_text.pkl"
    path.write_bytes(
        b"\x80\x02]X" + struct.pack("<I", len(text)) + text + b"q\x000(" + b"h\x00" * 20_000 + b"e."
    )
    start = time.monotonic()
    index = peek(path)
    assert time.monotonic() - start < 10
    row = index.root.children[0]
    assert row.value is not None and len(row.value) < 300 and "2,097,152 characters" in row.value
