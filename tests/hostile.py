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
    raw = text.encode()
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
    for proto in (0, 2, 4):
        exec_name = "__builtin__.exec" if proto < 3 else "builtins.exec"
        eval_name = "__builtin__.eval" if proto < 3 else "builtins.eval"
        code = _open_code(f)
        add(f"exec_p{proto}", f"exec_p{proto}.pth", pickle.dumps(_Payload(exec, code), protocol=proto),
            "dangerous", dangerous=(exec_name,))  # fmt: skip
        add(f"eval_p{proto}", f"eval_p{proto}.pth", pickle.dumps(_Payload(eval, code), protocol=proto),
            "dangerous", dangerous=(eval_name,))  # fmt: skip
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
    return cases


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
