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
    "zip_case_alias",
    "zip_case_alias_benign",
    "zip64_disagrees",
    "zip_two_directories",
    "zip_nul_name",
    "zip_two_folders",
    "tar_duplicate_past_64",
    "tar_hardlinked_pickle",
    "tar_hardlinked_storages",
    "legacy_tar_polyglot",
    "long4_then_payload",
    "hex_digits_then_payload",
    "digits_4300_then_payload",
    "marks_then_payload",
    "long_line_then_payload",
    "no_proto_binary",
    "pickles_past_the_64th",
    "tar_past_member_limit",
    "zip_comment_fake_end",
    "zip_overlapping_members",
    "tar_quadratic_pax",
    "memo_long_keys",
    "zip_corrupt_deflate",
    "surrogate_global",
    "surrogate_key",
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


def _verdict(refs: list[GlobalRef], differentials: list[str]) -> str:
    """The scan's verdict: a reader differential is as dangerous as a dangerous global."""
    kinds = {g.verdict for g in refs}
    if GlobalClass.DANGEROUS in kinds or differentials:
        return "dangerous"
    return "unknown" if GlobalClass.UNKNOWN in kinds else "safe"


def _read(case: HostileCase) -> tuple[str, list[GlobalRef], list[str], str]:
    """(verdict or "error", globals, warnings, error sentence) of one peek."""
    try:
        index = peek(case.path)
    except DamagedCheckpointError as exc:
        verdict = _verdict(exc.globals, exc.differentials)
        return ("error" if verdict == "safe" else verdict), exc.globals, [], exc.message
    except CheckpointError as exc:
        return "error", [], [], exc.message
    return _verdict(index.globals, index.differentials), index.globals, index.warnings, ""


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


@pytest.mark.timed
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

    try:
        result = scan_file_path(str(path))
    except zipfile.BadZipFile:  # a directory Python's zipfile cannot read: picklescan gives up
        return False
    return result.infected_files > 0 or result.issues_count > 0


def _fickling_dangerous(path: Path) -> tuple[bool, bool]:
    """(dangerous, only for exceeding its resource limits) by fickling's static analysis."""
    import fickling
    from fickling.analysis import Severity

    if zipfile.is_zipfile(path):
        try:
            results = list(fickling.scan_zip_archive(str(path), graceful=True).values())
        except (RuntimeError, zipfile.BadZipFile):  # encrypted, or a directory zipfile cannot read
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
        # fickling gives up on its resource limits (an expansion attack to it): we read such a file
        # and warn, or judge it on what it names, or refuse it, but never call it safe silently.
        assert ours != "safe" or any("nested deeper" in w for w in warnings), warnings
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


@pytest.mark.timed
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


# --- reading what torch reads (parser differentials) ------------------------------------------------


def _torch_data_pkl(path: Path) -> bytes | None:
    """The data.pkl torch's own zip reader returns for the file, or None when it refuses the file."""
    import torch

    try:
        reader = torch._C.PyTorchFileReader(str(path))
        return bytes(reader.get_record("data.pkl"))
    except RuntimeError:
        return None


def test_the_zip_view_reads_the_data_pkl_torch_reads(corpus: dict[str, HostileCase]) -> None:
    """For every zip of the corpus torch opens, the record the reader takes is the one torch takes."""
    from inspector.core.ziparchive import ZipArchive

    compared = 0
    for case_id, case in corpus.items():
        data = case.path.read_bytes()
        if data[:4] != b"PK\x03\x04":
            continue
        theirs = _torch_data_pkl(case.path)
        if theirs is None:
            continue
        with case.path.open("rb") as f:
            archive = ZipArchive(f, len(data), case.path.name)
            member = archive.locate(archive.folder + b"/data.pkl")
            assert member is not None, case_id
            assert archive.read(member, 1 << 30) == theirs, case_id
        compared += 1
    assert compared >= 12


@pytest.mark.parametrize(
    ("case_id", "cause"),
    [
        ("zip64_disagrees", "ZIP64 end record disagrees"),
        ("zip_two_directories", "two central directories"),
        ("zip_comment_fake_end", "comment holds a second end record"),
        ("zip_two_folders", "more than one place"),
        ("legacy_tar_polyglot", "both a tar archive and a pickle stream"),
        ("zip_case_alias_benign", "ignoring case"),
        ("zip_nul_name", "cuts names at a NUL byte"),
        ("tar_duplicate_past_64", "more than once"),
    ],
)
def test_a_file_two_readers_read_differently_says_why(
    case_id: str, cause: str, corpus: dict[str, HostileCase]
) -> None:
    try:
        differentials = peek(corpus[case_id].path).differentials
    except DamagedCheckpointError as exc:
        differentials = exc.differentials
    assert any(cause in d for d in differentials), differentials


def test_the_tree_shows_the_pickle_torch_runs(corpus: dict[str, HostileCase]) -> None:
    """Where torch's reader takes another directory than a naive reader would, the payload it
    runs is the data.pkl the tree is read from, not a side note."""
    for case_id in ("zip64_disagrees", "zip_two_directories", "zip_comment_fake_end"):
        index = peek(corpus[case_id].path)
        assert [g.pickle for g in index.dangerous_globals] == ["data.pkl"], case_id
        assert not any(n.tensor for n in index.root.walk()), case_id  # the payload's object, not the tensors


def test_a_legacy_file_that_is_also_a_tar_is_read_as_the_tar_torch_opens(
    corpus: dict[str, HostileCase],
) -> None:
    index = peek(corpus["legacy_tar_polyglot"].path)
    assert index.format == "torch-tar"
    assert {g.pickle for g in index.dangerous_globals} == {"pickle"}
    assert any(g.qualname == "torch._utils._rebuild_tensor_v2" for g in index.globals)  # the legacy stream's


def test_tar_links_resolve_as_tarfile_resolves_them(corpus: dict[str, HostileCase]) -> None:
    index = peek(corpus["tar_hardlinked_pickle"].path)
    assert [g.pickle for g in index.dangerous_globals] == ["pickle"]
    assert any("links to other members" in w for w in index.warnings)


# --- limits: as CPython's where the meaning depends on them; past ours, globals are still listed ------


def test_past_a_limit_of_the_reader_the_rest_is_scanned_for_globals() -> None:
    """A payload after more opcodes than the reader allows is still listed, with its offset, and
    the sentence names the limit that stopped the read."""
    payload = b"cposix\nsystem\n(S'x'\ntR"
    data = b"\x80\x02]" + b"N0" * 20_000 + b"0" + payload + b"."
    found: list[tuple[str, int]] = []
    with pytest.raises(CheckpointError) as info:
        SafeUnpickler(
            data, on_global=lambda g: found.append((g.qualname, g.offset)), limits=Limits(max_opcodes=10_000)
        ).load()
    assert "limit of this reader" in info.value.message and "opcodes" in info.value.message
    assert found == [("posix.system", data.index(b"cposix"))]


def test_integers_follow_cpython_rules() -> None:
    """C pickle reads INT with strtol (``010`` is octal), then int(…, 0); decimal text past 4,300
    digits is refused as CPython refuses it; wider integers are kept as a description."""

    def value(text: bytes) -> object:
        return SafeUnpickler(text + b".").load()[0]

    assert value(b"I010\n") == 8 and value(b"I0x1f\n") == 31 and value(b"I01\n") is True
    assert value(b"L123L\n") == 123 and value(b"I" + b"9" * 4300 + b"\n") == int("9" * 4300)
    assert "4,300 digits" in _limited(b"I" + b"9" * 4301 + b"\n.")
    wide = value(b"\x80\x02\x8b" + struct.pack("<i", 5000) + b"\x01" * 5000)
    assert "5,000 bytes" in str(getattr(wide, "text", ""))


def test_every_pickle_of_a_file_shares_one_budget() -> None:
    from inspector.core.unpickler import Budget

    budget = Budget(opcodes=50_000)
    data = b"\x80\x02N" + b"N0" * 15_000 + b"."
    SafeUnpickler(data, budget=budget).load()
    with pytest.raises(CheckpointError, match="share"):
        SafeUnpickler(data, budget=budget).load()


def test_overlapping_members_are_refused_and_read_once(corpus: dict[str, HostileCase]) -> None:
    with pytest.raises(DamagedCheckpointError) as info:
        peek(corpus["zip_overlapping_members"].path)
    assert "overlap" in info.value.message
    assert [g.qualname for g in info.value.globals if g.verdict is GlobalClass.DANGEROUS] == [
        f"{os.system.__module__}.system"
    ]  # 5,000 records of the same bytes: scanned once


@pytest.mark.timed
def test_tar_headers_are_never_handed_to_tarfile(
    corpus: dict[str, HostileCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's tarfile is quadratic on crafted PAX headers (CVE-2024-6232): the reader parses
    headers itself, in time linear in their size."""
    import tarfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tarfile read an untrusted header")

    monkeypatch.setattr(tarfile, "open", refuse)
    monkeypatch.setattr(tarfile.TarFile, "__init__", refuse)
    start = time.monotonic()
    index = peek(corpus["tar_quadratic_pax"].path)
    assert time.monotonic() - start < 5
    assert index.format == "torch-tar"
    assert peek(corpus["tar_hardlinked_pickle"].path).dangerous_globals


@pytest.mark.timed
def test_long_keys_handed_out_by_the_memo_are_charged(corpus: dict[str, HostileCase]) -> None:
    """One 1 MB key used 2,000 times as a dict key costs 2 GB to whoever shows the keys: refused
    at once, naming the limit."""
    start = time.monotonic()
    with pytest.raises(CheckpointError, match="MB"):
        peek(corpus["memo_long_keys"].path)
    assert time.monotonic() - start < 10


# --- the command line never falls back to "Unexpected error" ------------------------------------------


def test_scan_and_info_json_end_in_a_verdict_or_a_sentence_on_every_hostile_file(
    corpus: dict[str, HostileCase], capsys: pytest.CaptureFixture[str]
) -> None:
    from inspector.cli import main

    exits = {"safe": 0, "unknown": 1, "dangerous": 1, "error": 2}
    for case_id, case in corpus.items():
        for argv in (["scan", str(case.path)], ["info", "--json", str(case.path)]):
            code = main(argv)
            out, err = capsys.readouterr()
            assert "Unexpected error" not in out + err, (case_id, argv, err)
            assert code == (exits[case.verdict] if argv[0] == "scan" else code), (case_id, code, err)
            if argv[0] == "info":
                assert code in (0, 2), (case_id, err)
            if code == 2:
                assert out == "" and len(err.strip().splitlines()) == 1, (case_id, err)
        assert not (case.path.parent / MARKER).exists(), case_id
