"""Judging one global a pickle names, as the import machinery would read it: allowed by torch's
weights-only rules, unknown, or dangerous, with the family of harm a dangerous one belongs to.

This is the static judgement, on the name alone (nothing is imported). It is a denylist, so it is
never what decides that something may be *allowed*: ``inspector.core.safety`` does that, on the
real object in the loader. A name no module can have (a NUL, a space, an empty part), an attribute
path through an alias of a dangerous module (``posixpath.os.system``) or through dunders, and every
name in a dangerous family (process, code, import machinery, look-ups by name, file system,
network, persistence) is dangerous.
"""

from __future__ import annotations

import _compat_pickle
import enum
from dataclasses import dataclass

from .dtypes import ITEMSIZE, QSCHEMES, STORAGE_DTYPE, TENSOR_TYPES
from .model import GlobalClass


class Family(enum.Enum):
    """What a dangerous global can do, in words that finish "it …"."""

    PROCESS = "can run commands or start processes"
    CODE = "can run Python code"
    IMPORT = "reaches the import machinery, which runs any module's code"
    RESOLVER = "looks up any object by name, so it can reach anything"
    FILE_SYSTEM = "can open, write or delete files"
    NETWORK = "can reach the network"
    PERSISTENCE = "loads or writes serialized objects (pickles, arrays, checkpoints)"
    SYSTEM = "reaches the interpreter or the operating system"
    MALFORMED = "is not a name any Python module can have, so the import machinery may read it as another"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one global; ``family`` and ``via`` say why a dangerous one is dangerous."""

    verdict: GlobalClass
    family: Family | None = None
    via: str = ""  # the part of the name that decided it ("os", "system", "__class__" …)

    @property
    def reason(self) -> str:
        return self.family.value if self.family is not None else ""


_P, _C, _I, _R, _F, _N, _S = (
    Family.PROCESS, Family.CODE, Family.IMPORT, Family.RESOLVER, Family.FILE_SYSTEM, Family.NETWORK,
    Family.PERSISTENCE,
)  # fmt: skip
_SYS = Family.SYSTEM

#: Modules (and everything inside them) that are dangerous whatever the name: the gadget families
#: of the 2025–26 advisories. Matched on whole dotted prefixes of the module path.
_FAMILY_MODULES: dict[str, Family] = {
    **dict.fromkeys(
        ("sys", "signal", "resource", "fcntl", "mmap", "_winapi", "msvcrt", "winreg",
         "platform", "_osx_support", "_aix_support", "sysconfig", "site", "sitecustomize",
         "usercustomize", "gc", "atexit", "faulthandler", "tracemalloc", "_thread", "threading",
         "_signal"), _SYS),
    **dict.fromkeys(
        ("os", "posix", "nt", "subprocess", "_posixsubprocess", "pty", "popen2", "commands", "pipes",
         "asyncio", "multiprocessing", "concurrent", "_multiprocessing", "ctypes", "_ctypes", "cffi",
         "imaplib", "fabric", "paramiko", "invoke", "sh", "plumbum", "pexpect", "torch.multiprocessing",
         "torch.distributed.rpc", "torch.distributed.elastic", "torch.distributed.launch",
         "torch.distributed.launcher", "torch.distributed.run", "torch.utils.collect_env",
         "torch.utils.bottleneck", "torch.testing", "numpy.distutils", "numpy.f2py", "numpy.ctypeslib",
         "numpy.testing", "pip", "ensurepip", "venv", "virtualenv", "setuptools", "distutils",
         "pkg_resources", "_distutils_hack", "webbrowser", "antigravity", "this", "turtle", "turtledemo",
         "tkinter", "idlelib", "test", "IPython", "ipykernel", "jupyter_client"), _P),
    **dict.fromkeys(
        ("builtins.eval", "builtins.exec", "code", "codeop", "trace", "profile", "cProfile", "pstats",
         "timeit", "doctest", "pdb", "bdb", "lib2to3", "pydoc", "pydoc_data", "inspect",
         "dis", "ast", "symtable", "_ast", "torch.jit", "torch._jit_internal", "torch.fx",
         "torch._dynamo", "torch._inductor", "torch._export", "torch.export", "torch.compiler",
         "torch.utils.cpp_extension", "torch.utils._config_module", "torch.utils.benchmark",
         "torch.utils.checkpoint", "torch.utils.data.datapipes", "torch._C", "torch.ops", "torch._ops",
         "torch.classes", "torch.library", "torch._library", "torch._higher_order_ops", "torch._lazy",
         "torch.onnx", "torch.profiler", "torch.autograd.profiler", "torch.cuda.memory", "torch.package",
         "numexpr", "sympy", "jinja2", "mako", "cython", "Cython", "numba", "triton"), _C),
    **dict.fromkeys(
        ("importlib", "imp", "_imp", "_frozen_importlib", "_frozen_importlib_external", "zipimport",
         "pkgutil", "runpy", "modulefinder", "builtins.__import__", "torch.hub", "torch.utils.model_zoo",
         "__hello__", "__phello__"), _I),
    **dict.fromkeys(("operator", "_operator", "functools", "copyreg", "copy", "weakref", "_weakref"), _R),
    **dict.fromkeys(
        ("pathlib", "pathlib_abc", "shutil", "tempfile", "glob", "fileinput", "filecmp", "_pyio",
         "io", "_io", "codecs", "gzip", "bz2", "lzma", "zipfile", "tarfile", "logging", "linecache",
         "tokenize", "netrc", "mailbox", "mailcap", "wave", "aifc", "sunau", "dbm", "sqlite3",
         "_sqlite3", "plistlib", "imghdr", "sndhdr", "cgi", "cgitb",
         "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib.format", "numpy.lib._datasource",
         "numpy.lib.utils", "numpy.core.memmap", "numpy._core.memmap", "numpy.memmap", "numpy.DataSource",
         "torch.utils.tensorboard", "torch.utils.data.datapipes.utils.decoder", "h5py", "fsspec",
         "smart_open"), _F),
    **dict.fromkeys(
        ("socket", "_socket", "ssl", "_ssl", "http", "urllib", "urllib2", "urllib3", "requests", "httpx",
         "aiohttp", "ftplib", "smtplib", "poplib", "nntplib", "telnetlib", "xmlrpc", "socketserver",
         "select", "selectors", "huggingface_hub", "boto3", "botocore", "wsgiref"), _N),
    **dict.fromkeys(
        ("pickle", "_pickle", "cPickle", "pickletools", "marshal", "shelve", "dill", "cloudpickle",
         "joblib", "jsonpickle", "yaml", "ruamel", "numpy.load", "numpy.save", "numpy.savez",
         "numpy.savez_compressed", "numpy.savetxt", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile",
         "numpy.fromregex", "numpy.frompyfunc", "numpy.vectorize", "numpy.recfromtxt",
         "numpy.recfromcsv", "torch.load", "torch.save", "torch.from_file", "torch.compile",
         "torch.serialization", "torch.storage._load_from_bytes", "torch._weights_only_unpickler",
         "torch.nn.Module.load_state_dict", "pandas.read_pickle", "pandas.eval", "safetensors.torch",
         "keras", "tensorflow"), _S),
}  # fmt: skip

#: Names that are harmless although their module's family is not (torch's own data builders, the
#: path classes whose construction touches nothing). Harmless is not "allowed": see ``safety``;
#: what torch allows without asking (``TORCH_ALLOWED``) is decided before these rules.
_EXEMPT: dict[str, GlobalClass] = {
    **dict.fromkeys(
        (f"torch.jit._pickle.{n}" for n in (
            "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist",
            "build_tensor_from_id", "restore_type_tag")),
        GlobalClass.UNKNOWN),
    **dict.fromkeys(
        (f"pathlib.{n}" for n in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath",
                                  "PureWindowsPath")),
        GlobalClass.UNKNOWN),
    **dict.fromkeys(
        (f"numpy.random._pickle.{n}" for n in ("__randomstate_ctor", "__bit_generator_ctor",
                                               "__generator_ctor")),
        GlobalClass.UNKNOWN),
}  # fmt: skip

#: The last part of a name that is dangerous in any module: the verbs gadgets are made of.
_DANGEROUS_VERBS: dict[str, Family] = {
    **dict.fromkeys(
        ("system", "popen", "popen2", "popen3", "popen4", "spawn", "spawnl", "spawnv", "spawnve",
         "spawnlp", "spawnvp", "posix_spawn", "posix_spawnp", "execv", "execve", "execl", "execle",
         "execlp", "execvp", "execvpe", "fork", "forkpty", "kill", "killpg", "startfile", "getoutput",
         "getstatusoutput", "check_call", "check_output", "Popen", "run_command", "shell",
         "_get_command_stdout", "IMAP4_stream", "CDLL", "PyDLL", "WinDLL", "OleDLL", "LoadLibrary",
         "dlopen", "putenv", "unsetenv", "chdir", "setuid", "setgid", "_find_mac_near_keyword",
         "_find_mac_under_heading", "_syscmd_file", "_syscmd_ver"), _P),
    **dict.fromkeys(
        ("eval", "exec", "execfile", "compile", "runcode", "runsource", "interact", "run_path",
         "run_module", "_run_code", "_run_module_code", "execWrapper", "evaluate", "sympify",
         "parse_expr", "load_config", "breakpoint", "set_trace", "post_mortem", "_exec"), _C),
    **dict.fromkeys(
        ("__import__", "import_module", "_gcd_import", "_bootstrap", "find_spec", "find_module",
         "load_module", "exec_module", "reload", "_import_dotted_name", "get_objects", "get_referrers",
         "get_referents", "modules", "__builtins__"), _I),
    **dict.fromkeys(
        ("resolve_name", "locate", "getattr", "setattr", "delattr", "attrgetter", "methodcaller",
         "getattr_static", "globals", "locals", "vars"), _R),
    **dict.fromkeys(
        ("open", "touch", "write_text", "write_bytes", "read_text", "read_bytes", "unlink", "remove",
         "removedirs", "rmdir", "rmtree", "rename", "renames", "replace", "symlink", "symlink_to",
         "hardlink_to", "link", "link_to", "chmod", "lchmod", "chown", "mkdir", "makedirs", "mkfifo",
         "mknod", "truncate", "copyfile", "copy", "copy2", "copytree", "move", "tofile", "fromfile",
         "from_file", "memmap", "savetxt", "loadtxt", "genfromtxt", "FileHandler",
         "RotatingFileHandler", "TimedRotatingFileHandler", "WatchedFileHandler", "write_file",
         "copy_file", "move_file", "mkpath", "NamedTemporaryFile", "TemporaryFile", "mkstemp",
         "mkdtemp", "urlretrieve"), _F),
    **dict.fromkeys(
        ("urlopen", "create_connection", "socket", "connect", "download", "download_url_to_file",
         "load_state_dict_from_url", "hf_hub_download", "snapshot_download", "load_url"), _N),
    **dict.fromkeys(
        ("load", "loads", "_load", "_legacy_load", "save", "savez", "savez_compressed", "dump",
         "dumps", "unsafe_load", "full_load", "read_pickle", "to_pickle", "load_model", "save_file",
         "load_file", "_load_from_bytes", "_open_file", "_open_zipfile_writer", "_open_zipfile_reader",
         "PyTorchFileWriter", "PyTorchFileReader", "_save", "_legacy_save"), _S),
}  # fmt: skip

#: Names inside ordinary modules that still reach code: builtins' evaluators and resolvers, the
#: types that make functions and modules.
_MODULE_NAMES: dict[str, tuple[frozenset[str], Family]] = {
    "builtins": (
        frozenset({"eval", "exec", "compile", "getattr", "setattr", "delattr", "hasattr", "__import__",
                   "open", "input", "breakpoint", "globals", "locals", "vars", "dir", "apply",
                   "execfile", "file", "reload", "help", "memoryview", "type", "object", "super",
                   "classmethod", "staticmethod", "property", "__build_class__", "exit", "quit",
                   "copyright", "credits", "license"}),
        Family.CODE,
    ),
    "types": (
        frozenset({"CodeType", "FunctionType", "LambdaType", "MethodType", "ModuleType", "CellType",
                   "FrameType", "GeneratorType", "CoroutineType", "AsyncGeneratorType",
                   "BuiltinFunctionType", "BuiltinMethodType", "MethodWrapperType",
                   "WrapperDescriptorType", "MethodDescriptorType", "ClassMethodDescriptorType",
                   "GetSetDescriptorType", "MemberDescriptorType", "new_class", "prepare_class",
                   "resolve_bases", "coroutine", "DynamicClassAttribute", "TracebackType"}),
        Family.CODE,
    ),
}  # fmt: skip

#: Top-level modules whose name, reached as an attribute of another module, is an alias into a
#: dangerous module (``posixpath.os``, ``collections._sys``, ``torch.serialization.pickle``).
_ALIAS_ROOTS = frozenset(
    {"os", "posix", "nt", "sys", "subprocess", "builtins", "__builtin__", "importlib", "imp", "pickle",
     "marshal", "ctypes", "shutil", "runpy", "socket", "pty", "pathlib", "tempfile", "copyreg"}
)  # fmt: skip

#: Dunder module names that are ordinary: a script's own classes, TorchScript's class namespace.
_ORDINARY_DUNDER_MODULES = frozenset({"__main__", "__mp_main__", "__torch__", "__builtin__"})

_REBUILD_FUNCTIONS = frozenset(
    {
        "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor",
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_sparse_tensor",
        "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor", "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
    }
)  # fmt: skip

#: Storage classes ``torch.cuda`` defines (it has no quantized ones).
_CUDA_STORAGES = frozenset(
    s for s, dtype in STORAGE_DTYPE.items() if s not in ("UntypedStorage", "TypedStorage")
    and not dtype.startswith("q")
)  # fmt: skip

#: The torch release whose weights-only rules the allowlists below mirror: a verdict is judged
#: against it (the scan's reports name it).
TORCH_VERSION = "2.13"

#: What torch's weights-only unpickler allows without being asked (``_get_allowed_globals`` of
#: ``torch._weights_only_unpickler``), by the name it looks up.
TORCH_DEFAULT_ALLOWED = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
        "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.complex",
        "torch._tensor._rebuild_from_type_v2", "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
    }
    | {f"torch._utils.{n}" for n in _REBUILD_FUNCTIONS}
    | {f"torch.{n}" for n in (*ITEMSIZE, *QSCHEMES, *TENSOR_TYPES)}
    | {f"torch.{n}" for n in STORAGE_DTYPE if n not in ("UntypedStorage", "TypedStorage")}
    | {f"torch.cuda.{n}" for n in (*_CUDA_STORAGES, *TENSOR_TYPES)}
    | {f"{m}.{n}" for m in ("torch.sparse", "torch.cuda.sparse") for n in TENSOR_TYPES - {"BoolTensor"}}
)  # fmt: skip

#: What torch's own modules add to that allowlist when they are imported
#: (``torch.serialization.add_safe_globals`` at import time), with the module whose import adds
#: it: the loader imports that module before a weights-only load of a file that needs the name.
TORCH_ALLOWED_ON_IMPORT: dict[str, str] = {
    "torch.nested._internal.nested_tensor.NestedTensor": "torch.nested",
    "torch.nested._internal.nested_tensor._rebuild_njt": "torch.nested",
    "torch._dynamo.decorators._DimRange": "torch._dynamo",
    **dict.fromkeys(
        ("torch.distributed.device_mesh.DeviceMesh", "torch.distributed.tensor.DTensor",
         "torch.distributed.tensor._dtensor_spec.DTensorSpec",
         "torch.distributed.tensor._dtensor_spec.TensorMeta",
         "torch.distributed.tensor._dtensor_spec.ShardOrderEntry",
         "torch.distributed.tensor.placement_types.Partial",
         "torch.distributed.tensor.placement_types.Replicate",
         "torch.distributed.tensor.placement_types.Shard",
         "torch.distributed.tensor.placement_types._StridedShard"),
        "torch.distributed.tensor"),
    "torch.distributed._mesh_layout._FlatLayout": "torch.distributed.device_mesh",
    "torch.distributed._mesh_layout._MeshLayout": "torch.distributed.device_mesh",
    "torch.distributed._serialization._Entry": "torch.distributed._serialization",
}  # fmt: skip

#: Everything torch's weights-only unpickler allows without the user asking.
TORCH_ALLOWED = TORCH_DEFAULT_ALLOWED | frozenset(TORCH_ALLOWED_ON_IMPORT)

#: Modules torch's weights-only unpickler refuses even when something in them is allowlisted
#: (compared with the module of the name it looks up, exactly).
TORCH_BLOCKED_MODULES = frozenset({"os", "posix", "nt", "sys"})

#: The part of pickle's Python 2 mapping (``_compat_pickle``) that torch's weights-only unpickler
#: applies to every GLOBAL before it looks the name up (``torch._utils.IMPORT_MAPPING`` and
#: ``NAME_MAPPING``), whatever the pickle's protocol.
TORCH_IMPORT_MAPPING: dict[str, str] = {
    m: _compat_pickle.IMPORT_MAPPING[m]
    for m in ("__builtin__", "copy_reg", "Queue", "repr", "_abcoll", "UserDict", "UserList",
              "UserString", "whichdb", "StringIO", "cStringIO")
}  # fmt: skip
TORCH_NAME_MAPPING: dict[tuple[str, str], tuple[str, str]] = {
    key: _compat_pickle.NAME_MAPPING[key]
    for key in (
        ("__builtin__", "xrange"), ("__builtin__", "reduce"), ("__builtin__", "intern"),
        ("__builtin__", "unichr"), ("__builtin__", "unicode"), ("__builtin__", "long"),
        ("itertools", "izip"), ("itertools", "imap"), ("itertools", "ifilter"),
        ("itertools", "ifilterfalse"), ("itertools", "izip_longest"), ("UserDict", "IterableUserDict"),
        ("UserList", "UserList"), ("UserString", "UserString"), ("__builtin__", "basestring"),
        ("exceptions", "StandardError"), ("UserDict", "UserDict"),
    )
}  # fmt: skip


def torch_lookup(module: str, name: str) -> tuple[str, str]:
    """``(module, name)`` as torch's weights-only unpickler looks a GLOBAL up: its share of
    pickle's Python 2 mapping applied (``__builtin__.long`` → ``builtins.int``)."""
    mapped = TORCH_NAME_MAPPING.get((module, name))
    if mapped is not None:
        return mapped
    return TORCH_IMPORT_MAPPING.get(module, module), name


def unpickler_names(module: str, name: str) -> list[tuple[str, str]]:
    """``(module, name)`` as the file says it, then as pickle's Python 2 mapping reads it
    (``__builtin__`` → ``builtins``, ``copy_reg`` → ``copyreg``): what CPython's unpickler imports
    for a protocol 0–2 pickle. torch's weights-only lookup (``torch_lookup``) is one of the two."""
    names = [(module, name)]
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is None and module in _compat_pickle.IMPORT_MAPPING:
        mapped = (_compat_pickle.IMPORT_MAPPING[module], name)
    if mapped is not None and mapped != (module, name):
        names.append(mapped)
    return names


def is_valid_name(dotted: str) -> bool:
    """True when every dotted part is a Python identifier: nothing the import machinery could cut
    short (a NUL) or read another way (spaces, empty parts, control characters)."""
    return all(part.isidentifier() for part in dotted.split("."))


def _family_of_prefix(parts: list[str]) -> tuple[Family, str] | None:
    for i in range(1, len(parts) + 1):
        family = _FAMILY_MODULES.get(".".join(parts[:i]))
        if family is not None:
            return family, ".".join(parts[:i])
    return None


def _judge_one(module: str, name: str) -> Judgement:
    qual = f"{module}.{name}"
    if not is_valid_name(module) or not is_valid_name(name):
        return Judgement(GlobalClass.DANGEROUS, Family.MALFORMED, qual)
    mod_parts, name_parts = module.split("."), name.split(".")
    parts = mod_parts + name_parts
    exempt = _EXEMPT.get(qual)
    if exempt is not None:
        return Judgement(exempt)
    found = _family_of_prefix(parts)
    if found is not None:
        return Judgement(GlobalClass.DANGEROUS, found[0], found[1])
    for part in name_parts:
        if part.startswith("__") and part.endswith("__"):
            return Judgement(GlobalClass.DANGEROUS, Family.RESOLVER, part)
    for part in mod_parts:
        if part.startswith("__") and part.endswith("__") and part not in _ORDINARY_DUNDER_MODULES:
            return Judgement(GlobalClass.DANGEROUS, Family.IMPORT, part)
    for part in parts[1:]:
        if part.lstrip("_") in _ALIAS_ROOTS:
            return Judgement(
                GlobalClass.DANGEROUS, _FAMILY_MODULES.get(part.lstrip("_"), Family.SYSTEM), part
            )
    verb = _DANGEROUS_VERBS.get(parts[-1])
    if verb is not None:
        return Judgement(GlobalClass.DANGEROUS, verb, parts[-1])
    names, family = _MODULE_NAMES.get(module, (frozenset(), None))
    if family is not None and name_parts[0] in names:
        return Judgement(GlobalClass.DANGEROUS, family, name_parts[0])
    return Judgement(GlobalClass.UNKNOWN)


_SEVERITY = {GlobalClass.ALLOWED: 0, GlobalClass.UNKNOWN: 1, GlobalClass.DANGEROUS: 2}


def judge(module: str, name: str) -> Judgement:
    """The verdict on ``module.name`` as a pickle references it, with the family of a dangerous one.

    ALLOWED is exactly what torch's weights-only unpickler allows without asking, by the name it
    looks up (``torch_lookup``); anything else is judged as written and as pickle's Python 2
    mapping reads it, and the worse verdict wins. A reading other than torch's that is dangerous
    makes even an allowed name dangerous (CPython's unpickler may import that one).
    """
    readings = unpickler_names(module, name)
    looked_up = torch_lookup(module, name)
    if ".".join(looked_up) in TORCH_ALLOWED and is_valid_name(module) and is_valid_name(name):
        readings = [r for r in readings if r != looked_up]
        judged = [j for j in (_judge_one(m, n) for m, n in readings) if j.verdict is GlobalClass.DANGEROUS]
        return judged[0] if judged else Judgement(GlobalClass.ALLOWED)
    judgements = [_judge_one(m, n) for m, n in readings]
    return max(judgements, key=lambda j: _SEVERITY[j.verdict])


def classify(module: str, name: str) -> GlobalClass:
    """The verdict on ``module.name`` as referenced by a pickle."""
    return judge(module, name).verdict


def judge_qualname(qualname: str) -> Judgement:
    """The worst verdict over every way a dotted ``module.name`` string splits into the two."""
    parts = qualname.split(".")
    if len(parts) < 2:
        return Judgement(GlobalClass.DANGEROUS, Family.MALFORMED, qualname)
    judgements = [judge(".".join(parts[:i]), ".".join(parts[i:])) for i in range(1, len(parts))]
    return max(judgements, key=lambda j: _SEVERITY[j.verdict])
