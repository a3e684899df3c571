"""Judging the globals a pickle references: allowed by torch's weights-only rules, unknown, or dangerous.

Allowlist thinking: only what torch's weights-only unpickler accepts without being asked is
*allowed*; anything that can run code, touch files, processes or the network, or reach the import
machinery is *dangerous*; everything else is *unknown*.
"""

from __future__ import annotations

from .dtypes import ITEMSIZE, QSCHEMES, STORAGE_DTYPE, TENSOR_TYPES
from .model import GlobalClass

_REBUILD_FUNCTIONS = frozenset(
    {
        "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_qtensor",
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_sparse_tensor",
        "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor", "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
    }
)  # fmt: skip

_ALLOWED_EXACT = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device",
        "_codecs.encode", "builtins.bytearray", "builtins.set", "builtins.complex",
        "torch._tensor._rebuild_from_type_v2", "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
    }
)  # fmt: skip

#: Whole modules (and their submodules) that are dangerous whatever the name.
_DANGEROUS_MODULES = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "runpy", "importlib", "imp", "marshal",
        "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "pip",
        "ensurepip", "webbrowser", "socket", "ssl", "http", "httplib", "urllib", "urllib2",
        "requests", "aiohttp", "ftplib", "smtplib", "telnetlib", "xmlrpc", "shutil", "tempfile",
        "ctypes", "_ctypes", "cffi", "code", "codeop", "pty", "commands", "pdb", "bdb", "trace",
        "timeit", "cProfile", "profile", "pydoc", "multiprocessing", "concurrent", "asyncio",
        "threading", "_thread", "signal", "uuid", "venv", "distutils", "setuptools",
        "pkgutil", "zipimport", "builtins.__import__", "torch.jit", "torch.hub", "torch.package",
        "torch._dynamo", "torch._inductor", "torch.utils.cpp_extension", "torch.utils.collect_env",
        "torch.utils.bottleneck", "torch.fx", "torch.ops", "torch._ops", "torch.classes",
        "numpy.f2py", "numpy.testing", "numpy.distutils", "doctest", "idlelib", "lib2to3",
        "imaplib", "logging", "_io", "io", "_osx_support", "_aix_support", "_pyrepl",
        "test", "IPython", "shlex", "glob", "fileinput", "sqlite3", "_posixsubprocess",
        "paramiko", "fabric", "_winapi", "msvcrt", "winreg", "pathlib_abc",
        "platform", "popen2", "site", "sitecustomize", "usercustomize", "mmap", "fcntl",
        "resource", "tarfile", "zipfile", "socketserver", "select", "selectors", "urllib3",
        "httpx", "poplib", "nntplib", "xmlrpclib", "SimpleXMLRPCServer",
        "torch.multiprocessing", "torch.distributed.rpc", "torch.cuda.memory", "torch._C._jit",
    }
)  # fmt: skip

#: Single names that are dangerous inside otherwise ordinary modules.
_DANGEROUS_NAMES = {
    "builtins": frozenset(
        {
            "eval",
            "exec",
            "compile",
            "getattr",
            "setattr",
            "delattr",
            "__import__",
            "open",
            "input",
            "breakpoint",
            "globals",
            "locals",
            "vars",
            "apply",
            "execfile",
            "file",
            "reload",
            "help",
            "memoryview",
            "type",
            "object",
            "super",
            "classmethod",
            "staticmethod",
            "property",
            "__build_class__",
            "exit",
            "quit",
        }
    ),
    "types": frozenset({"CodeType", "FunctionType", "LambdaType", "MethodType", "ModuleType"}),
    "functools": frozenset({"partial", "reduce", "partialmethod", "cached_property"}),
    "operator": frozenset({"attrgetter", "itemgetter", "methodcaller", "call"}),
    "_operator": frozenset({"attrgetter", "itemgetter", "methodcaller", "call"}),
    "torch": frozenset({"load", "save", "compile", "from_file"}),
    "torch.serialization": frozenset({"load", "save", "_load", "_legacy_load", "_open_file"}),
    "torch.storage": frozenset({"_load_from_bytes"}),
    "torch.utils.checkpoint": frozenset({"checkpoint"}),
    "pathlib": frozenset({"Path.write_text", "Path.write_bytes", "Path.unlink"}),
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "code": frozenset({"InteractiveInterpreter.runcode"}),
    "numpy": frozenset({"load", "loadtxt", "fromfile", "save", "savez", "frompyfunc", "vectorize"}),
    "numpy.lib.npyio": frozenset({"load", "loadtxt"}),
    "torch.utils.data.datapipes.utils.decoder": frozenset({"basichandlers"}),
    "torch.utils._config_module": frozenset({"ConfigModule.load_config"}),
}


def _in_module(module: str, roots: frozenset[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in roots for i in range(1, len(parts) + 1))


def _is_dangerous(module: str, name: str) -> bool:
    return (
        _in_module(module, _DANGEROUS_MODULES)
        or f"{module}.{name}" in _DANGEROUS_MODULES
        or name in _DANGEROUS_NAMES.get(module, frozenset())
    )


def classify(module: str, name: str) -> GlobalClass:
    """The verdict on ``module.name`` as referenced by a pickle."""
    if module == "__builtin__":
        module = "builtins"
    qual = f"{module}.{name}"
    if _is_dangerous(module, name):
        return GlobalClass.DANGEROUS
    # Attribute chains in STACK_GLOBAL names ("Path.write_text", "__class__.__base__") reach
    # arbitrary objects: never allowed, dangerous when they go through dunders, and judged as the
    # object they name ("torch" + "serialization.load" is torch.serialization.load).
    if "." in name:
        if "__" in name or not all(name.split(".")):
            return GlobalClass.DANGEROUS
        parts = qual.split(".")
        for i in range(module.count(".") + 2, len(parts)):
            if _is_dangerous(".".join(parts[:i]), parts[i]):
                return GlobalClass.DANGEROUS
        return GlobalClass.UNKNOWN
    if name.startswith("__") and name.endswith("__"):
        return GlobalClass.DANGEROUS
    if qual in _ALLOWED_EXACT:
        return GlobalClass.ALLOWED
    if module == "torch._utils" and name in _REBUILD_FUNCTIONS:
        return GlobalClass.ALLOWED
    if module == "torch" and (name in ITEMSIZE or name in QSCHEMES or name in TENSOR_TYPES):
        return GlobalClass.ALLOWED
    if (
        module in ("torch", "torch.cuda")
        and name in STORAGE_DTYPE
        and name
        not in (
            "UntypedStorage",
            "TypedStorage",
        )
    ):
        return GlobalClass.ALLOWED
    if module == "torch.cuda" and name in TENSOR_TYPES:
        return GlobalClass.ALLOWED
    if module in ("torch.sparse", "torch.cuda.sparse") and name in TENSOR_TYPES - {"BoolTensor"}:
        return GlobalClass.ALLOWED
    return GlobalClass.UNKNOWN
