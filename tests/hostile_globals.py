"""Builders of real checkpoints whose pickle names a callable in a way a name check can miss: an
alias through another module (``posixpath.os.system``), a module name with a NUL, a copyreg
extension code, and the gadgets of the 2025–26 advisories. Each is written into a test's folder.

Every payload, if it ran, would create ``MARKER`` in that folder, so a test proves nothing ran by
the marker's absence. The GLOBAL opcode is written by hand (torch's weights-only unpickler reads
only GLOBAL, protocol 2), so the name in the file is exactly the one a test chose.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

MARKER = "MARKER"


class _Global:
    """A global written into the pickle as ``GLOBAL module\\nname\\n``, exactly as given."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __call__(self) -> None:  # pickle asks that a reduce function be callable
        raise AssertionError("never called")


class _Call:
    """Unpickling calls ``func(*args)``."""

    def __init__(self, func: _Global, args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


class _Pickler(pickle._Pickler):  # type: ignore[name-defined, misc]
    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _Global):
            module = obj.module.encode("utf-8", "surrogatepass")
            self.write(b"c" + module + b"\n" + obj.name.encode("utf-8", "surrogatepass") + b"\n")
            return
        super().save(obj, save_persistent_id)


_HAND_WRITTEN = types.SimpleNamespace(__name__="hand_written_pickle", Pickler=_Pickler, dump=pickle.dump)


def marker(folder: Path) -> Path:
    return folder / MARKER


def payload_checkpoint(folder: Path, file_name: str, module: str, name: str, *args: Any) -> Path:
    """A real torch.save zip: a tensor, and a payload that calls ``module.name(*args)`` on load."""
    path = folder / file_name
    obj = {"weight": torch.ones(2, 3), "payload": _Call(_Global(module, name), args)}
    torch.save(obj, path, pickle_module=_HAND_WRITTEN, pickle_protocol=2)  # type: ignore[arg-type]
    return path


def touch_command(folder: Path) -> str:
    return f"touch {marker(folder)}"


def marker_code(folder: Path) -> str:
    return f"open({str(marker(folder))!r}, 'w').close()"


@dataclass(frozen=True)
class AliasCase:
    """A name that reaches a dangerous callable through another module; ``real`` is what it is."""

    module: str
    name: str
    real: str  # the resolved object's own module.qualname, as the refusal must name it
    code: bool = False  # the payload is Python source (exec) rather than a shell command

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def build(self, folder: Path, file_name: str = "alias.pth") -> Path:
        arg = marker_code(folder) if self.code else touch_command(folder)
        return payload_checkpoint(folder, file_name, self.module, self.name, arg)


SYSTEM = f"{os.system.__module__}.system"  # posix.system here

ALIASES = [
    AliasCase("posixpath", "os.system", SYSTEM),
    AliasCase("posixpath.os", "system", SYSTEM),
    AliasCase("torch.serialization", "os.system", SYSTEM),
    AliasCase("torch.serialization.os", "system", SYSTEM),
    AliasCase("os\x00junk", "system", SYSTEM),
    AliasCase("enum", "bltns.exec", "builtins.exec", code=True),
]


def alias_module(name: str, attr: str, target: object) -> types.ModuleType:
    """A module that holds ``target`` under an innocent name, as a package that did ``from os import
    system as tidy`` looks once imported (a test puts it into ``sys.modules``)."""
    module = types.ModuleType(name)
    setattr(module, attr, target)
    return module


# -- copyreg extension codes ---------------------------------------------------------------------


def ext_pickle(folder: Path, code: int) -> bytes:
    """A protocol-2 pickle whose callable comes from copyreg's extension registry: EXT1, EXT2 or
    EXT4 by the size of ``code``, then called with a shell command that creates the marker."""
    if code < 0x100:
        ext = b"\x82" + code.to_bytes(1, "little")
    elif code < 0x10000:
        ext = b"\x83" + code.to_bytes(2, "little")
    else:
        ext = b"\x84" + code.to_bytes(4, "little")
    cmd = touch_command(folder).encode()
    return b"\x80\x02" + ext + b"X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def in_torch_zip(body: bytes) -> bytes:
    """A torch zip whose data.pkl is ``body``."""
    from tests.hostile import torch_zip_bytes, zip_replacing_data_pkl

    return zip_replacing_data_pkl(torch_zip_bytes({"w": torch.ones(2)}), body)


# -- the gadgets of the advisories ---------------------------------------------------------------

#: (module, name, family) from the 2025–26 advisory lists in FORMATS.md and the hostile round:
#: each must be judged dangerous, in that family, however it is spelled.
ADVISORY_GADGETS: list[tuple[str, str, str]] = [
    # universal resolvers and the import machinery
    ("pkgutil", "resolve_name", "IMPORT"),
    ("importlib", "import_module", "IMPORT"),
    ("operator", "attrgetter", "RESOLVER"),
    ("_operator", "attrgetter", "RESOLVER"),
    ("inspect", "getattr_static", "CODE"),
    ("pydoc", "locate", "CODE"),
    ("builtins", "__import__", "IMPORT"),
    ("builtins", "getattr", "RESOLVER"),
    ("_frozen_importlib", "_gcd_import", "IMPORT"),
    ("_frozen_importlib_external", "SourceFileLoader", "IMPORT"),
    ("gc", "get_objects", "SYSTEM"),
    ("collections", "_sys.modules", "SYSTEM"),
    ("_posixsubprocess", "fork_exec", "PROCESS"),
    ("_io", "open", "FILE_SYSTEM"),
    ("_pickle", "loads", "PERSISTENCE"),
    ("copyreg", "_reconstructor", "RESOLVER"),
    ("torch._utils", "_import_dotted_name", "IMPORT"),
    # stdlib paths to exec / eval
    ("trace", "Trace", "CODE"),
    ("profile", "run", "CODE"),
    ("cProfile", "runctx", "CODE"),
    ("timeit", "timeit", "CODE"),
    ("code", "InteractiveInterpreter.runcode", "CODE"),
    ("codeop", "compile_command", "CODE"),
    ("doctest", "debug_script", "CODE"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcode", "PROCESS"),
    ("lib2to3.main", "main", "CODE"),
    ("runpy", "run_path", "IMPORT"),
    ("types", "FunctionType", "CODE"),
    ("marshal", "loads", "PERSISTENCE"),
    # command paths
    ("uuid", "_get_command_stdout", "PROCESS"),
    ("imaplib", "IMAP4_stream", "PROCESS"),
    ("pty", "spawn", "PROCESS"),
    ("asyncio.subprocess", "create_subprocess_shell", "PROCESS"),
    ("asyncio.unix_events", "_UnixSubprocessTransport", "PROCESS"),
    ("ctypes", "CDLL", "PROCESS"),
    ("platform", "_syscmd_file", "SYSTEM"),
    ("pipes", "Template", "PROCESS"),
    ("subprocess", "getoutput", "PROCESS"),
    ("os", "popen", "PROCESS"),
    # package installers
    ("pip", "main", "PROCESS"),
    ("pip._internal.cli.main", "main", "PROCESS"),
    ("ensurepip", "bootstrap", "PROCESS"),
    # file openers and writers
    ("pathlib", "Path.touch", "FILE_SYSTEM"),
    ("pathlib", "Path.write_text", "FILE_SYSTEM"),
    ("pathlib", "PosixPath.unlink", "FILE_SYSTEM"),
    ("codecs", "open", "FILE_SYSTEM"),
    ("gzip", "open", "FILE_SYSTEM"),
    ("bz2", "BZ2File", "FILE_SYSTEM"),
    ("io", "FileIO", "FILE_SYSTEM"),
    ("_pyio", "open", "FILE_SYSTEM"),
    ("six.moves.builtins", "open", "SYSTEM"),
    ("numpy.compat.py3k", "open", "FILE_SYSTEM"),
    ("logging", "FileHandler", "FILE_SYSTEM"),
    ("logging.handlers", "RotatingFileHandler", "FILE_SYSTEM"),
    ("distutils.file_util", "write_file", "PROCESS"),
    ("shutil", "rmtree", "FILE_SYSTEM"),
    ("tempfile", "mkstemp", "FILE_SYSTEM"),
    ("numpy", "savetxt", "PERSISTENCE"),
    ("numpy", "memmap", "FILE_SYSTEM"),
    ("numpy", "load", "PERSISTENCE"),
    ("numpy.lib.npyio", "savez", "FILE_SYSTEM"),
    ("numpy.lib.format", "open_memmap", "FILE_SYSTEM"),
    ("numpy", "fromfile", "PERSISTENCE"),
    # network
    ("urllib.request", "urlopen", "NETWORK"),
    ("ssl", "create_default_context", "NETWORK"),
    ("smtplib", "SMTP", "NETWORK"),
    ("ftplib", "FTP", "NETWORK"),
    ("socket", "create_connection", "NETWORK"),
    ("webbrowser", "open", "PROCESS"),
    ("http.client", "HTTPConnection", "NETWORK"),
    # torch internals
    ("torch.utils.bottleneck.__main__", "run_cprofile", "PROCESS"),
    ("torch._dynamo.guards", "GuardBuilder", "CODE"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", "CODE"),
    ("torch.utils.collect_env", "run", "PROCESS"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper", "CODE"),
    ("torch._inductor.codecache", "PyCodeCache.load", "CODE"),
    ("torch.utils._config_module", "ConfigModule.load_config", "CODE"),
    ("torch.hub", "load", "IMPORT"),
    ("torch", "load", "PERSISTENCE"),
    ("torch.serialization", "load", "PERSISTENCE"),
    ("torch.serialization", "_open_zipfile_writer", "PERSISTENCE"),
    ("torch._C", "PyTorchFileWriter", "CODE"),
    ("torch.testing._internal.common_utils", "shell", "PROCESS"),
    ("torch.storage", "_load_from_bytes", "PERSISTENCE"),
    ("torch", "from_file", "PERSISTENCE"),
    ("torch.UntypedStorage", "from_file", "FILE_SYSTEM"),
    # aliases through an ordinary module, and names no module can have
    ("posixpath", "os.system", "PROCESS"),
    ("torch.serialization", "os.system", "PERSISTENCE"),
    ("shutil", "os.system", "FILE_SYSTEM"),
    ("enum", "bltns.exec", "CODE"),
    ("os\x00junk", "system", "MALFORMED"),
    ("posix ", "system", "MALFORMED"),
    ("builtins", "eval\x00", "MALFORMED"),
    ("", "system", "MALFORMED"),
    ("__builtin__", "eval", "CODE"),
    ("builtins", "object.__subclasses__", "RESOLVER"),
]


def rename_module(path: Path, old: str, new: str) -> None:
    """Rewrite a torch zip so its data.pkl names module ``new`` wherever it named ``old`` (as an
    older version of a package wrote it)."""
    import zipfile

    from tests.hostile import zip_replacing_data_pkl

    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    renamed = pkl.replace(b"c" + old.encode() + b"\n", b"c" + new.encode() + b"\n")
    assert renamed != pkl, f"{old} is not a GLOBAL module of {path.name}"
    path.write_bytes(zip_replacing_data_pkl(data, renamed))


def legacy_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


# -- numpy dtypes whose pickled state lies about their layout ------------------------------------


class _Reduced:
    """Unpickling calls ``func(*args)`` and then sets the result's state to ``state`` (BUILD)."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


#: numpy's ``dtype.__setstate__`` takes the flags, fields and sizes from the pickle without checking
#: them against the kind: each state makes numpy read memory the array does not own, or raw bytes as
#: pointers to Python objects (the process crashes, or worse). ``(dtype call args, state)``.
FORGED_DTYPES: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "object dtype without its object flags": (("O8", False, True), (3, "|", None, None, None, -1, -1, 0)),
    "struct field past the item": (
        ("V8", False, True), (3, "|", None, ("k", "v"), {"k": ("u1", 0), "v": ("f8", 1 << 24)}, 8, 1, 16)
    ),
    "struct of objects without their flags": (
        ("V8", False, True), (3, "|", None, ("k", "v"), {"k": ("u1", 0), "v": ("O", 0)}, 8, 1, 0)
    ),
    "subarray larger than the item": (("V8", False, True), (3, "|", ("f8", (2,)), None, None, 8, 1, 0)),
    "float dtype claiming objects": (("f8", False, True), (3, "<", None, None, None, -1, -1, 63)),
}  # fmt: skip


def _dtype_state(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """The state with the field and subarray dtype codes turned into real numpy dtypes."""
    import numpy as np

    version, endian, subarray, names, fields, *rest = state
    if subarray is not None:
        subarray = (np.dtype(subarray[0]), subarray[1])
    if fields is not None:
        fields = {k: (np.dtype(v[0]), *v[1:]) for k, v in fields.items()}
    return (version, endian, subarray, names, fields, *rest)


def forged_numpy_array(folder: Path, case: str, file_name: str = "forged.pth") -> Path:
    """A real torch.save zip holding one numpy array of 8 bytes ``B`` whose dtype has the forged
    state of ``FORGED_DTYPES[case]``, passed to ``set`` or, for a struct, to ``OrderedDict`` (both
    allowed by torch), which read its items (a struct's two fields, a subarray's two values, as key
    and value)."""
    import numpy as np

    args, state = FORGED_DTYPES[case]
    dtype = _Reduced(np.dtype, args, _dtype_state(state))
    count = 1 if args[0] != "f8" else 2
    data: Any = b"B" * 8 if args[0] != "f8" else [1.0, 2.0]
    array = _Reduced(
        np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (count,), dtype, False, data)
    )
    path = folder / file_name
    reader = collections.OrderedDict if state[2] is not None or state[3] is not None else set
    torch.save({"w": torch.ones(2), "items": _Reduced(reader, (array,))}, path, pickle_protocol=2)
    return path


class _NewObject:
    """Unpickling calls ``cls.__new__(cls, *args)`` (NEWOBJ)."""

    def __init__(self, cls: type, args: tuple[Any, ...]) -> None:
        self.cls, self.args = cls, args

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # pickle writes NEWOBJ only for an object of the class it names
        return self.cls

    def __reduce__(self) -> tuple[Any, ...]:
        import copyreg

        return copyreg.__newobj__, (self.cls, *self.args)


def _raw_memory_arrays() -> dict[str, Any]:
    """Arrays that numpy's pickles never make, each over memory the file does not fill in: an
    object array over raw bytes (called as ``numpy.ndarray(shape, dtype, buffer)``, by REDUCE or
    NEWOBJ), read by ``set``, and an array of uninitialized memory (``_reconstruct`` with a shape,
    and no state after it)."""
    import numpy as np

    objects = np.dtype("O")
    return {
        "object array over raw bytes": _Reduced(set, (_Reduced(np.ndarray, ((1,), objects, b"B" * 8)),)),
        "object array over raw bytes, by NEWOBJ": _Reduced(
            set, (_NewObject(np.ndarray, ((1,), objects, b"B" * 8)),)
        ),
        "array of uninitialized memory": _Reduced(
            np._core.multiarray._reconstruct, (np.ndarray, (4096,), b"b")
        ),
    }


RAW_MEMORY_ARRAYS = ("object array over raw bytes", "object array over raw bytes, by NEWOBJ",
                     "array of uninitialized memory")  # fmt: skip


def raw_memory_array(folder: Path, case: str, file_name: str = "raw.pth") -> Path:
    """A real torch.save zip holding the array of ``RAW_MEMORY_ARRAYS`` named ``case``."""
    path = folder / file_name
    torch.save({"w": torch.ones(2), "items": _raw_memory_arrays()[case]}, path, pickle_protocol=2)
    return path
