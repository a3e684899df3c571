"""Builders of hostile and lying files, written into a test's folder (nothing binary is committed).

Every payload tries to create the file ``MARKER`` (or start a process) in the folder it is built
in, so a test can prove that reading the file ran nothing: after peek / info / scan the marker must
not exist. ``build_corpus`` writes every case and returns ``{case id: HostileCase}`` with the
verdict the static reader must give: ``"dangerous"``, ``"unknown"``, ``"safe"``, or ``"error"``
(a ``CheckpointError`` sentence containing ``error_part``).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

MARKER = "MARKER"


@dataclass(frozen=True)
class HostileCase:
    path: Path
    verdict: str  # dangerous / unknown / safe / error
    error_part: str = ""  # for "error": a phrase the sentence contains
    dangerous: tuple[str, ...] = ()  # globals that must be listed as dangerous
    warning_part: str = ""  # a phrase one of the warnings contains


class _Payload:
    """An object whose pickle calls ``func(*args)`` on load."""

    def __init__(self, func: Callable[..., object], *args: object) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[object, ...]:
        return self.func, self.args


def _marker(folder: Path) -> str:
    return str(folder / MARKER)


def _touch_cmd(folder: Path) -> str:
    return f"touch {_marker(folder)}"


def _open_code(folder: Path) -> str:
    return f"open({_marker(folder)!r}, 'w').close()"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- hand-written opcodes -------------------------------------------------------------------------


def _short_unicode(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"\x8c" + bytes([len(raw)]) + raw


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def stack_global_via_memo(folder: Path) -> bytes:
    """Protocol 4: the module and name strings are memoized, popped, then fetched for STACK_GLOBAL."""
    return (
        b"\x80\x04"
        + _short_unicode("posix") + b"\x94"  # memo 0
        + _short_unicode("system") + b"\x94"  # memo 1
        + b"00"  # POP POP: the stack is empty again
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + _unicode(_touch_cmd(folder)) + b"\x85R."
    )  # fmt: skip


def stack_global_via_strings(folder: Path) -> bytes:
    """STACK_GLOBAL whose arguments come from protocol-0 STRING opcodes."""
    cmd = _touch_cmd(folder).encode()
    return b"\x80\x04S'os'\nS'system'\n\x93S'" + cmd + b"'\n\x85R."


def posix_system_protocol0(folder: Path) -> bytes:
    return b"cposix\nsystem\n(S'" + _touch_cmd(folder).encode() + b"'\ntR."


def inst_payload(folder: Path) -> bytes:
    """INST (protocol 0): ``subprocess.Popen`` called through the class-instantiation opcode."""
    return b"((S'touch'\nS'" + _marker(folder).encode() + b"'\nlisubprocess\nPopen\n."


def legacy_with_later_payload(folder: Path) -> bytes:
    """A real legacy torch file whose storage-keys pickle (the fifth) also runs ``posix.system``."""
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    # The storage-keys pickle is the last "\x80\x02" before the storages: it is ``]q\x00X..a.``.
    start = data.rindex(b"\x80\x02]")
    end = data.index(b".", start) + 1
    keys = pickle.loads(data[start:end])
    evil = (
        b"\x80\x02](cposix\nsystem\n(S'" + _touch_cmd(folder).encode() + b"'\ntR0"
        + b"".join(_unicode(k) for k in keys) + b"e."
    )  # fmt: skip
    return data[:start] + evil + data[end:]


def torch_zip_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _rezip(source: bytes, edit: Callable[[zipfile.ZipFile, zipfile.ZipFile], None]) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source)) as zin,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # duplicate names are the point of some cases
        edit(zin, zout)
    return out.getvalue()


def _copy_all(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
    for info in zin.infolist():
        zout.writestr(info, zin.read(info))


def _pkl_name(z: zipfile.ZipFile) -> str:
    return next(n for n in z.namelist() if n.endswith("/data.pkl"))


def zip_with_member(source: bytes, name: str, body: bytes, *, compress: bool = False) -> bytes:
    def edit(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
        _copy_all(zin, zout)
        zout.writestr(name, body, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)

    return _rezip(source, edit)


def zip_without(source: bytes, name: str) -> bytes:
    def edit(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
        for info in zin.infolist():
            if info.filename != name:
                zout.writestr(info, zin.read(info))

    return _rezip(source, edit)


def zip_replacing_data_pkl(source: bytes, body: bytes) -> bytes:
    def edit(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
        for info in zin.infolist():
            zout.writestr(info, body if info.filename.endswith("/data.pkl") else zin.read(info))

    return _rezip(source, edit)


def zip_bomb_member(source: bytes, name: str, gigabytes: int = 1) -> bytes:
    """``source`` plus a deflated member of ``gigabytes`` GiB of zeros, a few MB on disk.

    The deflate stream is one 1 MiB block of zeros repeated (each ends on a full flush, so the
    blocks can be concatenated) and a final empty block; nothing large is ever in memory.
    """
    mib = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(mib)) + comp.flush(zlib.Z_FULL_FLUSH)
    count = gigabytes * 1024
    stream = block * count + b"\x03\x00"
    crc = 0
    zeros = bytes(mib)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    size = count * mib
    raw = name.encode()
    # Append the member by hand: a local header, the stream, then a rewritten central directory.
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        infos = z.infolist()
    eocd = source.rindex(b"PK\x05\x06")
    (cd_size, cd_offset) = struct.unpack_from("<II", source, eocd + 12)
    body = source[:cd_offset]
    local_offset = len(body)
    zip64 = struct.pack("<HHQQ", 1, 16, size, len(stream))
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 45, 0, 8, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                        len(raw), len(zip64)) + raw + zip64  # fmt: skip
    central_extra = struct.pack("<HHQQ", 1, 16, size, len(stream))
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 45, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF,
                          0xFFFFFFFF, len(raw), len(central_extra), 0, 0, 0, 0, local_offset)  # fmt: skip
    central += raw + central_extra
    old_cd = source[cd_offset : cd_offset + cd_size]
    new_cd_offset = local_offset + len(local) + len(stream)
    new_cd = old_cd + central
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(infos) + 1, len(infos) + 1, len(new_cd),
                      new_cd_offset, 0)  # fmt: skip
    return body + local + stream + new_cd + end


def safetensors_bytes(header: dict[str, object], data: bytes, declared: int | None = None) -> bytes:
    import json

    raw = json.dumps(header).encode()
    n = len(raw) if declared is None else declared
    return struct.pack("<Q", n) + raw + data


def deep_nesting(depth: int) -> bytes:
    """A list nested ``depth`` deep (protocol 2): iterative opcodes, deep object graph."""
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def self_reference() -> bytes:
    lst: list[object] = []
    lst.append(lst)
    d: dict[str, object] = {"self": None, "list": lst}
    d["self"] = d
    return pickle.dumps(d, protocol=2)


def huge_element_count() -> bytes:
    """A torch zip whose data.pkl declares a storage of 2**40 floats for a 4-element record."""
    source = torch_zip_bytes({"w": torch.zeros(4)})
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        pkl = z.read(_pkl_name(z))
    # numel is the BININT1 4 right after the location string "cpu" in the persistent id tuple.
    i = pkl.index(b"cpu")
    j = pkl.index(b"K\x04", i)
    big = 1 << 40
    patched = pkl[:j] + b"\x8a\x06" + big.to_bytes(6, "little") + pkl[j + 2 :]
    # The tensor's size (4,) becomes (2**40,) too, so the tree shows the claim.
    k = patched.index(b"K\x04\x85", j + 8)
    patched = patched[:k] + b"\x8a\x06" + big.to_bytes(6, "little") + patched[k + 2 :]
    return zip_replacing_data_pkl(source, patched)


def _png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"\x00\xff\x00\x00\xff\x00\x00" * 2
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _zip_of(name: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(name, body)
    return out.getvalue()


def _torchscript(path: Path) -> Path:
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(Tiny()), str(path))
    return path


def build_corpus(folder: Path) -> dict[str, HostileCase]:
    """Every hostile case of issue 3 and FORMATS.md, written into ``folder``."""
    f = folder
    cases: dict[str, HostileCase] = {}

    def add(case_id: str, name: str, data: bytes, verdict: str, **kw: object) -> None:
        cases[case_id] = HostileCase(_write(f / name, data), verdict, **kw)  # type: ignore[arg-type]

    touch = _touch_cmd(f)
    add("os_system", "os_system.pth", pickle.dumps(_Payload(os.system, touch), protocol=2),
        "dangerous", dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    add("posix_system_p0", "posix_system.pth", posix_system_protocol0(f), "dangerous",
        dangerous=("posix.system",))  # fmt: skip
    for proto in (0, 2, 4):  # protocols 0-2 write __builtin__.exec: listed as torch looks it up
        code = _open_code(f)
        add(f"exec_p{proto}", f"exec_p{proto}.pth", pickle.dumps(_Payload(exec, code), protocol=proto),
            "dangerous", dangerous=("builtins.exec",))  # fmt: skip
        add(f"eval_p{proto}", f"eval_p{proto}.pth", pickle.dumps(_Payload(eval, code), protocol=proto),
            "dangerous", dangerous=("builtins.eval",))  # fmt: skip
    add("subprocess_popen", "popen.pt",
        pickle.dumps(_Payload(subprocess.Popen, ["touch", _marker(f)]), protocol=4),
        "dangerous", dangerous=("subprocess.Popen",))  # fmt: skip
    add("inst_popen", "inst_popen.pt", inst_payload(f), "dangerous", dangerous=("subprocess.Popen",))
    import runpy
    import webbrowser

    add("runpy_run_code", "runpy.pt", pickle.dumps(_Payload(runpy._run_code, _open_code(f), {}), protocol=4),
        "dangerous", dangerous=("runpy._run_code",))  # fmt: skip
    add("webbrowser_open", "browser.pt",
        pickle.dumps(_Payload(webbrowser.open, "file://" + _marker(f)), protocol=2),
        "dangerous", dangerous=("webbrowser.open",))  # fmt: skip
    inner = pickle.dumps(_Payload(os.system, touch), protocol=2)
    add("nested_pickle_loads", "nested.pt", pickle.dumps(_Payload(pickle.loads, inner), protocol=2),
        "dangerous", dangerous=("pickle.loads", f"{os.system.__module__}.system"))  # fmt: skip
    add("stack_global_memo", "memo_global.pt", stack_global_via_memo(f), "dangerous",
        dangerous=("posix.system",))  # fmt: skip
    add("stack_global_strings", "string_global.pt", stack_global_via_strings(f), "dangerous",
        dangerous=("os.system",))  # fmt: skip
    add("legacy_later_payload", "legacy_evil.pt", legacy_with_later_payload(f), "dangerous",
        dangerous=("posix.system",))  # fmt: skip
    add("partial_chain", "partial.pt",
        pickle.dumps(_Payload(__import__("functools").partial(os.system, touch)), protocol=2),
        "dangerous", dangerous=("functools.partial",))  # fmt: skip
    add("dcp_metadata_payload", ".metadata", pickle.dumps(_Payload(os.system, touch), protocol=4),
        "dangerous", dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    # Its pickles are data; the code it holds runs only under torch.jit.load, which needs trust.
    cases["torchscript_renamed"] = HostileCase(_torchscript(f / "scripted.pth"), "safe",
                                               warning_part="TorchScript")  # fmt: skip
    add("plain_pickle_renamed", "plain.pth", pickle.dumps({"w": [1.0, 2.0], "step": 3}, protocol=2),
        "safe", warning_part="plain pickle")  # fmt: skip
    add("plain_pickle_then_payload", "two_pickles.pth",
        pickle.dumps({"w": 1}, protocol=2) + pickle.dumps(_Payload(os.system, touch), protocol=2),
        "dangerous", dangerous=(f"{os.system.__module__}.system",), warning_part="more pickle")  # fmt: skip
    state = torch_zip_bytes({"w": torch.ones(2)})
    add("zip_bomb_member", "bomb_member.pt", zip_bomb_member(state, "archive/extra/blob"), "safe",
        warning_part="compressed")  # fmt: skip
    add("zip_bomb_data_pkl", "bomb_pkl.pt",
        zip_bomb_member(zip_without(state, "archive/data.pkl"), "archive/data.pkl"), "error",
        error_part="data.pkl")  # fmt: skip
    evil_pkl = pickle.dumps(_Payload(os.system, touch), protocol=2)
    add("zip_evil_data_pkl", "evil_zip.pt", zip_replacing_data_pkl(state, evil_pkl), "dangerous",
        dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    add("zip_evil_extra_pickle", "evil_extra.pt", zip_with_member(state, "archive/extra.pkl", evil_pkl),
        "dangerous", dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    add("zip_compressed_evil_pickle", "evil_deflated.pt",
        zip_with_member(state, "archive/extra_compressed.pkl", evil_pkl, compress=True),
        "dangerous", dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    add("zip_dotdot_member", "dotdot.pt", zip_with_member(state, "../../evil.sh", b"echo hi"), "safe",
        warning_part="unsafe path")  # fmt: skip
    add("zip_absolute_member", "absolute.pt", zip_with_member(state, "/tmp/evil.sh", b"echo hi"), "safe",
        warning_part="unsafe path")  # fmt: skip

    def dup(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
        _copy_all(zin, zout)
        zout.writestr(_pkl_name(zin), evil_pkl)

    add("zip_duplicate_data_pkl", "dup.pt", _rezip(state, dup), "dangerous", error_part="two members",
        dangerous=(f"{os.system.__module__}.system",))  # fmt: skip
    add("zip_encrypted_data_pkl", "locked.pt", _encrypt_data_pkl(state), "error", error_part="encrypted")
    add("polyglot_pickle_zip", "poly_pickle.pt",
        pickle.dumps({"w": 1}, protocol=2) + _zip_of("x/data.pkl", evil_pkl),
        "dangerous", dangerous=(f"{os.system.__module__}.system",), warning_part="polyglot")  # fmt: skip
    add("polyglot_png_zip", "poly_png.pth", _png() + zip_replacing_data_pkl(state, evil_pkl),
        "dangerous", dangerous=(f"{os.system.__module__}.system",), warning_part="PNG")  # fmt: skip
    add("polyglot_png_torch_zip", "poly_png_ok.pth", _png() + state, "safe", warning_part="polyglot")
    add("huge_element_count", "huge_count.pt", huge_element_count(), "safe", warning_part="declares")
    add("short_storage_record", "short_record.pt", _short_record(state), "safe", warning_part="declares")
    add("truncated_pickle", "truncated.pkl", pickle.dumps({"a": list(range(50))}, protocol=2)[:-30],
        "error", error_part="truncated")  # fmt: skip
    add("truncated_payload", "truncated_evil.pkl", posix_system_protocol0(f)[:-1], "dangerous",
        dangerous=("posix.system",), error_part="truncated")  # fmt: skip
    add("deep_nesting", "deep.pkl", deep_nesting(100_000), "safe", warning_part="nested")
    add("self_reference", "selfref.pkl", self_reference(), "safe")
    add("safetensors_2_62", "huge_header.safetensors", safetensors_bytes({"w": {}}, b"", declared=1 << 62),
        "error", error_part="header")  # fmt: skip
    add("safetensors_2_62_offsets", "huge_offsets.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [1 << 60], "data_offsets": [0, 1 << 62]}},
                          b"\0" * 8),
        "error", error_part="outside")  # fmt: skip
    overlap = {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    }
    add("safetensors_overlap", "overlap.safetensors", safetensors_bytes(overlap, b"\0" * 12), "error",
        error_part="overlaps")  # fmt: skip
    _add_reader_cases(f, add, evil_pkl, state)
    return cases


def _protocol0_payload(folder: Path) -> bytes:
    """``posix.system(cmd)`` in protocol-0 opcodes, without PROTO or STOP (to embed)."""
    return b"cposix\nsystem\n(S'" + _touch_cmd(folder).encode() + b"'\ntR"


def _add_reader_cases(f: Path, add: Callable[..., None], evil_pkl: bytes, state: bytes) -> None:
    """Files that two readers read differently, payloads behind a point where a stricter reader
    gives up, and inputs that cost a naive reader its time, its memory or an exception."""
    system = f"{os.system.__module__}.system"
    data_pkl = next(body for name, body in zip_entries(state) if name.endswith(b"/data.pkl"))
    # parser differentials: torch's reader (miniz) and tarfile against a naive reader
    add(
        "zip_case_alias",
        "case_alias.pt",
        zip_case_alias(state, evil_pkl),
        "dangerous",
        error_part="does not tell apart",
        dangerous=(system,),
    )
    add(
        "zip_case_alias_benign",
        "case_alias_benign.pt",
        zip_case_alias(state, data_pkl),
        "dangerous",
        error_part="does not tell apart",
    )
    add(
        "zip64_disagrees",
        "zip64_disagrees.pt",
        zip64_disagreeing(state, evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    add(
        "zip_two_directories",
        "two_directories.pt",
        zip_two_directories(state, evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    add("zip_nul_name", "nul_name.pt", zip_nul_name(state, evil_pkl), "dangerous", dangerous=(system,))
    add(
        "zip_two_folders",
        "two_folders.pt",
        zip_two_folders(state, evil_pkl),
        "dangerous",
        dangerous=(system,),
        warning_part="outside its folder",
    )
    add(
        "tar_duplicate_past_64",
        "tar_duplicate.pt",
        tar_with_later_duplicate(evil_pkl),
        "dangerous",
        error_part="two members",
        dangerous=(system,),
    )
    add(
        "tar_hardlinked_pickle",
        "tar_link_pickle.pt",
        tar_hardlinked_pickle(evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    add(
        "tar_hardlinked_storages",
        "tar_link_storages.pt",
        tar_hardlinked_storages(evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    add(
        "legacy_tar_polyglot",
        "legacy_tar.pt",
        legacy_tar_polyglot(evil_pkl),
        "dangerous",
        dangerous=(system,),
        warning_part="tar format",
    )
    # payloads behind a point where a reader stricter than CPython gives up
    payload = _protocol0_payload(f)
    add(
        "long4_then_payload",
        "long4.pkl",
        b"\x80\x02\x8b" + struct.pack("<i", 5000) + b"\x01" * 5000 + b"0" + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "hex_digits_then_payload",
        "hex_digits.pkl",
        b"I0x" + b"1" * 10**6 + b"\n0" + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "digits_4300_then_payload",
        "digits_4300.pkl",
        b"I" + b"1" * 4300 + b"\n0" + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "marks_then_payload",
        "marks.pkl",
        b"\x80\x02" + b"(" * 100_001 + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "long_line_then_payload",
        "long_line.pkl",
        b"S'" + b"a" * ((1 << 20) + 10) + b"'\n0" + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "no_proto_binary",
        "no_proto.pkl",
        _short_unicode("posix")
        + _short_unicode("system")
        + b"\x93"
        + _short_unicode(_touch_cmd(f))
        + b"\x85R.",
        "dangerous",
        dangerous=("posix.system",),
    )
    add(
        "pickles_past_the_64th",
        "many_pickles.pkl",
        pickle.dumps({"w": 1}, protocol=2) * 70 + payload + b".",
        "dangerous",
        dangerous=("posix.system",),
        warning_part="more pickle",
    )
    add(
        "tar_past_member_limit",
        "tar_many.pt",
        tar_past_member_limit(evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    add(
        "zip_comment_fake_end",
        "comment_end.pt",
        zip_comment_fake_end(state, evil_pkl),
        "dangerous",
        dangerous=(system,),
    )
    # what costs a naive reader its time or memory
    add(
        "zip_overlapping_members",
        "overlapping.pt",
        zip_overlapping(state, evil_pkl),
        "dangerous",
        error_part="overlap",
        dangerous=(system,),
    )
    add("tar_quadratic_pax", "quadratic_pax.pt", tar_quadratic_pax(), "safe")
    key = b"a." * (1 << 19)
    add(
        "memo_long_keys",
        "long_keys.pkl",
        b"\x80\x02}(X" + struct.pack("<I", len(key)) + key + b"q\x00K\x01" + b"h\x00K\x01" * 2000 + b"u.",
        "error",
        error_part="MB",
    )
    # what used to end in an exception instead of a sentence
    add(
        "zip_corrupt_deflate",
        "corrupt_deflate.pt",
        zip_corrupt_deflate(state, "archive/extra.pkl", pickle.dumps(list(range(5000)), protocol=2)),
        "error",
        error_part="damaged",
    )
    add(
        "surrogate_global",
        "surrogate_global.pkl",
        b"\x80\x04"
        + _short_unicode("posix")
        + _short_unicode("system")
        + b"\x93"
        + _short_unicode("m\ud800")
        + _short_unicode("x\udc80")
        + b"\x93\x86.",
        "dangerous",
        dangerous=("posix.system",),
    )
    add("surrogate_key", "surrogate_key.pkl", b"\x80\x04}" + _short_unicode("m\ud800") + b"K\x01s.", "safe")


# --- zips and tars written by hand: every field as the case needs it ------------------------------


def zip_entries(source: bytes) -> list[tuple[bytes, bytes]]:
    """(raw name, bytes) of every member of a zip, in directory order."""
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        return [(i.filename.encode(), z.read(i)) for i in z.infolist()]


def local_records(entries: list[tuple[bytes, bytes]], start: int = 0) -> tuple[bytes, list[bytes]]:
    """Stored local records for ``entries`` from offset ``start``, and the central record of each."""
    body = b""
    central: list[bytes] = []
    for name, data in entries:
        offset = start + len(body)
        crc = zlib.crc32(data)
        body += (
            struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0)
            + name
            + data
        )
        central.append(central_record(name, data, offset))
    return body, central


def central_record(
    name: bytes, data: bytes, offset: int, method: int = 0, stored: bytes | None = None
) -> bytes:
    crc = zlib.crc32(data)
    size = len(stored if stored is not None else data)
    return (
        struct.pack(
            "<4s6H3I5H2I",
            b"PK\x01\x02",
            20,
            20,
            0,
            method,
            0,
            0,
            crc,
            size,
            len(data),
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def end_record(count: int, cd_size: int, cd_offset: int, comment: bytes = b"") -> bytes:
    return (
        struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, len(comment)) + comment
    )


def zip64_end_record(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)


def zip64_locator(record_offset: int) -> bytes:
    return struct.pack("<4sIQI", b"PK\x06\x07", 0, record_offset, 1)


def hand_zip(entries: list[tuple[bytes, bytes]], comment: bytes = b"") -> bytes:
    body, central = local_records(entries)
    cd = b"".join(central)
    return body + cd + end_record(len(central), len(cd), len(body), comment)


def zip_case_alias(source: bytes, body: bytes) -> bytes:
    """``archive/DATA.PKL`` after ``archive/data.pkl``: torch's reader matches names ignoring case."""
    entries = zip_entries(source)
    pkl = next(n for n, _ in entries if n.endswith(b"/data.pkl"))
    return hand_zip([*entries, (pkl[: -len(b"data.pkl")] + b"DATA.PKL", body)])


def zip64_disagreeing(source: bytes, body: bytes) -> bytes:
    """The classic end record names the real directory; the ZIP64 record (which torch's reader
    always prefers) names a second one whose data.pkl is ``body``."""
    entries = zip_entries(source)
    local, central = local_records(entries)
    evil_offset = len(local)
    pkl = next(n for n, _ in entries if n.endswith(b"/data.pkl"))
    local += (
        struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(body), len(body), len(body), len(pkl), 0
        )
        + pkl
        + body
    )
    real_cd = b"".join(central)
    evil_cd = b"".join(central_record(pkl, body, evil_offset) if c[46:] == pkl else c for c in central)
    real_at = len(local)
    evil_at = real_at + len(real_cd)
    z64_at = evil_at + len(evil_cd)
    return (
        local
        + real_cd
        + evil_cd
        + zip64_end_record(len(central), len(evil_cd), evil_at)
        + zip64_locator(z64_at)
        + end_record(len(central), len(real_cd), real_at)
    )


def zip_two_directories(source: bytes, body: bytes) -> bytes:
    """Two ZIP64 records: the locator points at one naming a directory whose data.pkl is ``body``
    (torch's reader follows it); the record just before the locator names the real directory
    (Python's zipfile, and the scanners built on it, take that one)."""
    entries = zip_entries(source)
    local, central = local_records(entries)
    evil_offset = len(local)
    pkl = next(n for n, _ in entries if n.endswith(b"/data.pkl"))
    local += (
        struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(body), len(body), len(body), len(pkl), 0
        )
        + pkl
        + body
    )
    real_cd = b"".join(central)
    evil_cd = b"".join(central_record(pkl, body, evil_offset) if c[46:] == pkl else c for c in central)
    evil_at = len(local)
    evil_z64 = evil_at + len(evil_cd)
    real_at = evil_z64 + 56
    out = (
        local
        + evil_cd
        + zip64_end_record(len(central), len(evil_cd), evil_at)
        + real_cd
        + zip64_end_record(len(central), len(real_cd), real_at)
    )
    return out + zip64_locator(evil_z64) + end_record(len(central), len(real_cd), real_at)


def zip_comment_fake_end(source: bytes, body: bytes) -> bytes:
    """The real end record's comment holds a data.pkl record, a directory naming it and, a few
    bytes on, a second end record: the last one, which torch's reader takes, at its declared offset."""
    entries = zip_entries(source)
    local, central = local_records(entries)
    real_cd = b"".join(central)
    pkl = next(n for n, _ in entries if n.endswith(b"/data.pkl"))
    comment_at = len(local) + len(real_cd) + 22
    evil_local = (
        struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(body), len(body), len(body), len(pkl), 0
        )
        + pkl
        + body
    )
    evil_cd = b"".join(central_record(pkl, body, comment_at) if c[46:] == pkl else c for c in central)
    comment = evil_local + evil_cd + b"\0" * 10
    comment += end_record(len(central), len(evil_cd), comment_at + len(evil_local))
    return local + real_cd + end_record(len(central), len(real_cd), len(local), comment)


def zip_nul_name(source: bytes, body: bytes) -> bytes:
    """A second member named ``archive/data.pkl\\0x`` holding ``body``: torch's reader compares the
    whole name and takes the real data.pkl; zipfile cuts names at the NUL and takes the last."""
    entries = zip_entries(source)
    pkl = next(n for n, _ in entries if n.endswith(b"/data.pkl"))
    return hand_zip([*entries, (pkl + b"\0x", body)])


def zip_two_folders(source: bytes, body: bytes, fillers: int = 64) -> bytes:
    """``archive/`` with its data.pkl and ``fillers`` harmless pickles, then a second folder's
    data.pkl (``body``) as the 65th pickle: torch refuses the archive, other readers take either."""
    entries = zip_entries(source)
    harmless = pickle.dumps([1, 2, 3], protocol=2)
    return hand_zip(
        [
            *entries,
            *((f"archive/extra_{i}.pkl".encode(), harmless) for i in range(fillers)),
            (b"other/data.pkl", body),
        ]
    )


def zip_overlapping(source: bytes, body: bytes, aliases: int = 5000) -> bytes:
    """``aliases`` directory records named ``archive/x{i}.pkl`` that all point at one pickle's bytes."""
    entries = zip_entries(source)
    local, central = local_records([*entries, (b"archive/x.pkl", body)])
    (offset,) = struct.unpack_from("<I", central[-1], 42)
    central += [central_record(f"archive/x{i}.pkl".encode(), body, offset) for i in range(aliases)]
    cd = b"".join(central)
    return local + cd + end_record(len(central), len(cd), len(local))


def zip_corrupt_deflate(source: bytes, name: str, body: bytes) -> bytes:
    """``source`` plus a deflated member whose stream is damaged in the middle."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = bytearray(comp.compress(body) + comp.flush())
    stream[len(stream) // 2 : len(stream) // 2 + 4] = b"\xff\xff\xff\xff"
    entries = zip_entries(source)
    local, central = local_records(entries)
    raw = name.encode()
    offset = len(local)
    local += (
        struct.pack(
            "<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, zlib.crc32(body), len(stream), len(body), len(raw), 0
        )
        + raw
        + bytes(stream)
    )
    central.append(central_record(raw, body, offset, method=8, stored=bytes(stream)))
    cd = b"".join(central)
    return local + cd + end_record(len(central), len(cd), len(local))


def tar_header(name: bytes, size: int, kind: bytes = b"0", linkname: bytes = b"") -> bytes:
    """One ustar header block with a valid checksum."""
    head = bytearray(512)
    head[0 : len(name)] = name
    head[100:108] = b"0000644\0"
    head[108:116] = b"0000000\0"
    head[116:124] = b"0000000\0"
    head[124:136] = b"%011o\0" % size
    head[136:148] = b"00000000000\0"
    head[156:157] = kind
    head[157 : 157 + len(linkname)] = linkname
    head[257:263] = b"ustar\0"
    head[263:265] = b"00"
    head[148:156] = b" " * 8
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head)


def tar_member(name: bytes, data: bytes, kind: bytes = b"0", linkname: bytes = b"") -> bytes:
    pad = (-len(data)) % 512
    return tar_header(name, len(data), kind, linkname) + data + b"\0" * pad


def tar_archive(members: list[tuple[bytes, bytes]] | list[bytes]) -> bytes:
    blocks = [m if isinstance(m, bytes) else tar_member(*m) for m in members]
    return b"".join(blocks) + b"\0" * 1024


def empty_tar_records() -> tuple[bytes, bytes]:
    """(tensors, storages) members of a tar checkpoint with no tensors."""
    count = pickle.dumps(0, protocol=2)
    return count, count + pickle.dumps([], protocol=2)


def tar_with_later_duplicate(body: bytes, fillers: int = 70) -> bytes:
    """A harmless ``pickle`` member first, ``fillers`` other members, then a second ``pickle``:
    tarfile (and so torch) takes the last one."""
    tensors, storages = empty_tar_records()
    first = pickle.dumps({"w": 1}, protocol=2)
    return tar_archive(
        [
            tar_member(b"pickle", first),
            tar_member(b"tensors", tensors),
            tar_member(b"storages", storages),
            *(tar_member(f"filler_{i}".encode(), b"x") for i in range(fillers)),
            tar_member(b"pickle", body),
        ]
    )


def tar_past_member_limit(body: bytes, fillers: int = 70) -> bytes:
    """The checkpoint's members only after ``fillers`` others."""
    tensors, storages = empty_tar_records()
    return tar_archive(
        [
            *(tar_member(f"filler_{i}".encode(), b"x") for i in range(fillers)),
            tar_member(b"tensors", tensors),
            tar_member(b"storages", storages),
            tar_member(b"pickle", body),
        ]
    )


def tar_hardlinked_pickle(body: bytes) -> bytes:
    """``pickle`` is a hard link to an oddly named member that holds ``body``."""
    tensors, storages = empty_tar_records()
    return tar_archive(
        [
            tar_member(b"x.bin", body),
            tar_member(b"tensors", tensors),
            tar_member(b"storages", storages),
            tar_header(b"pickle", 0, b"1", b"x.bin"),
        ]
    )


def tar_hardlinked_storages(payload: bytes) -> bytes:
    """``storages`` is a hard link to a member whose first record pickle is ``payload``."""
    tensors, _ = empty_tar_records()
    return tar_archive(
        [
            tar_member(b"y", payload + pickle.dumps([], protocol=2)),
            tar_member(b"tensors", tensors),
            tar_header(b"storages", 0, b"1", b"y"),
            tar_member(b"pickle", pickle.dumps({}, protocol=2)),
        ]
    )


def tar_quadratic_pax(digits: int = 100_000) -> bytes:
    """A PAX header of ``digits`` digits, the input that makes Python 3.11.7's tarfile quadratic."""
    pax = b"1" * digits
    tensors, storages = empty_tar_records()
    return tar_archive(
        [
            tar_member(b"././@PaxHeader", pax, b"x"),
            tar_member(b"pickle", pickle.dumps({}, protocol=2)),
            tar_member(b"tensors", tensors),
            tar_member(b"storages", storages),
        ]
    )


def legacy_tar_polyglot(body: bytes) -> bytes:
    """A real legacy torch file whose first 512 bytes are also a valid tar header: the sys-info
    pickle's bytes hold a whole tar (``pickle`` = ``body``), which torch.load reads first."""
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    head_len = 15 + 6  # the magic-number pickle, then the protocol pickle
    sys_end = data.index(b".", data.index(b"\x80\x02", head_len) + 2)  # the sys-info pickle's STOP
    while True:  # the STOP of the sys-info dict pickle: the next pickle starts right after it
        if data[sys_end + 1 : sys_end + 3] == b"\x80\x02":
            break
        sys_end = data.index(b".", sys_end + 1)
    rest = data[sys_end + 1 :]
    tensors, storages = empty_tar_records()
    tar_body = tar_archive(
        [tar_member(b"pickle", body), tar_member(b"tensors", tensors), tar_member(b"storages", storages)]
    )
    total = 512 + len(tar_body)  # the first header block, then the tar's members
    pad_len = total - (head_len + 7)  # \x80\x02 B <len4> then the padding
    stream = bytearray(data[:head_len] + b"\x80\x02B" + struct.pack("<I", pad_len) + bytes(pad_len) + b".")
    block = bytearray(stream[:512])
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"00000000000\0"
    block[136:148] = b"00000000000\0"
    block[156:157] = b"0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    stream[:512] = block
    stream[512:total] = tar_body
    return bytes(stream) + rest


def _encrypt_data_pkl(source: bytes) -> bytes:
    """Set the 'encrypted' flag on data.pkl's local and central records (the bytes stay as they are)."""
    data = bytearray(source)
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        info = z.getinfo(_pkl_name(z))
    data[info.header_offset + 6] |= 1
    central = source.index(b"PK\x01\x02")  # the first central record
    while central >= 0:
        (nlen,) = struct.unpack_from("<H", source, central + 28)
        if source[central + 46 : central + 46 + nlen] == info.filename.encode():
            data[central + 8] |= 1
            break
        central = source.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def _short_record(source: bytes) -> bytes:
    """The storage record data/0 cut to 2 bytes while data.pkl still declares 2 floats."""

    def edit(zin: zipfile.ZipFile, zout: zipfile.ZipFile) -> None:
        for info in zin.infolist():
            body = zin.read(info)
            zout.writestr(info, body[:2] if info.filename.endswith("/data/0") else body)

    return _rezip(source, edit)


def nested_beside_data_pkl(source: bytes, depth: int) -> bytes:
    """A torch zip whose data.pkl returns ``(nested, original)``: ``nested`` a tuple ``depth`` deep
    built before the original object (torch's unpickler nests as deep as it is asked)."""
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        body = z.read(_pkl_name(z))
    assert body[:2] == b"\x80\x02" and body.endswith(b".")
    return zip_replacing_data_pkl(source, body[:2] + b"(" * depth + b"t" * depth + body[2:-1] + b"\x86.")
