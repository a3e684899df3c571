"""Opening a remote file through fsspec: its size, its version, and ranged reads that say what failed.

fsspec is the file-system layer Hugging Face, PyTorch's DCP and pandas use; one interface covers
HTTP (aiohttp), S3 (s3fs) and every other store whose package is installed (gcsfs for ``gs://``).
Each failure becomes one sentence about the file, never the library's text (it may hold a signed
URL or a token). HTTP responses are checked as they arrive: a server that answers a Range request
with the whole file, or a file whose size or ETag changes between two reads, stops the read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from inspector.core.errors import CheckpointError, MissingFileError

from .cancelling import blocking
from .locations import OTHER_PACKAGES, RemoteLocation
from .range_buffer import BLOCK, RangeBuffer, Transfer

INSTALL = "pip install 'checkpoint-inspector[remote]'"
RETRIES = 3  # attempts at one range when the connection breaks off mid-read
DEFAULT_TIMEOUT = 30.0
TIMEOUT_VARIABLE = "CHECKPOINT_INSPECTOR_REMOTE_TIMEOUT"  # seconds a server may stay silent


def timeout() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


@dataclass
class _Responses:
    """What the HTTP responses so far said about the file: a version, and what went wrong."""

    size: int = -1
    etag: str = ""
    host: str = ""
    problems: list[str] = field(default_factory=list)

    async def on_request_end(self, session: Any, context: Any, params: Any) -> None:
        response = params.response
        if params.method != "GET" or "Range" not in params.headers:
            return
        if response.status == 200:
            self.problems.append("ignores-range")
            return
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if self.size >= 0 and total.isdigit() and int(total) != self.size:
            self.problems.append("changed")
        etag = response.headers.get("ETag", "")
        same_host = (response.url.host or "") == self.host
        if self.etag and etag and same_host and etag != self.etag:
            self.problems.append("changed")

    async def on_request_redirect(self, session: Any, context: Any, params: Any) -> None:
        target = params.response.headers.get("Location", "")
        to = urlsplit(str(params.response.url.join(_yarl_url(target))))
        if to.hostname != params.url.host and to.scheme != "https":
            self.problems.append("insecure-redirect")


def _yarl_url(text: str) -> Any:
    from yarl import URL

    return URL(text)


def _filesystem(location: RemoteLocation) -> tuple[Any, _Responses | None]:
    try:
        import fsspec
    except ImportError:
        raise CheckpointError(f"Reading {location.shown} needs fsspec: {INSTALL}.") from None
    if location.protocol in ("http", "https"):
        return _http_filesystem(location)
    return _other_filesystem(fsspec, location), None


def remote_size(location: RemoteLocation) -> int:
    """The size of the remote file (one request); ``MissingFileError`` when there is none."""
    fs, checks = _filesystem(location)
    with _sentences(location, checks):
        size = blocking(lambda: fs.info(location.url)).get("size")
    if not isinstance(size, int):
        raise CheckpointError(f"The server does not say how large {location.name} is.")
    return size


def open_buffer(location: RemoteLocation, budget: int) -> RangeBuffer:
    """The remote file as a ``RangeBuffer`` (one request learns its size and version)."""
    transfer = Transfer()
    name = location.name
    fs, checks = _filesystem(location)
    with _sentences(location, checks):
        info = blocking(lambda: fs.info(location.url))
    transfer.requests += 1
    size = info.get("size")
    if not isinstance(size, int):
        raise CheckpointError(f"The server does not say how large {name} is, so it cannot be read by ranges.")
    if info.get("type", "file") != "file":
        raise CheckpointError(f"{location.shown} is a folder, not a checkpoint file.")
    transfer.size = size
    etag = str(info.get("ETag") or info.get("etag") or "")
    transfer.etag = etag
    if checks is not None:
        checks.size, checks.etag = size, etag
        checks.host = urlsplit(str(info.get("url") or location.url)).hostname or ""
    with _sentences(location, checks):
        fh = blocking(lambda: fs.open(location.url, "rb", block_size=BLOCK, cache_type="none", size=size))
    reads = getattr(fh, "read_kw", None)  # s3fs: the arguments of each ranged GetObject
    if etag and location.protocol == "s3" and isinstance(reads, dict):
        fh.read_kw = {**reads, "IfMatch": etag}  # every range from the version whose size was learned

    def read(start: int, end: int) -> bytes:
        fh.seek(start)
        data: bytes = fh.read(end - start)
        return data

    def fetch(start: int, end: int) -> bytes:
        for attempt in range(RETRIES):
            try:
                with _sentences(location, checks):
                    data = blocking(lambda: read(start, end))
            except _Broken:
                if attempt + 1 == RETRIES:
                    raise CheckpointError(
                        f"The connection to {location.shown} broke off in the middle of a read "
                        f"{RETRIES} times; try again later."
                    ) from None
                continue
            if len(data) == end - start or attempt + 1 == RETRIES:
                return data
        raise AssertionError("unreachable")

    return RangeBuffer(fetch, size, name, transfer, budget)


class _Broken(CheckpointError):
    """A response that stopped before its end: worth another attempt."""


def _http_filesystem(location: RemoteLocation) -> tuple[Any, _Responses]:
    try:
        import aiohttp
        from fsspec.implementations.http import HTTPFileSystem
    except ImportError:
        raise CheckpointError(f"Reading {location.shown} needs aiohttp and fsspec: {INSTALL}.") from None
    checks = _Responses()
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(checks.on_request_end)
    trace.on_request_redirect.append(checks.on_request_redirect)
    seconds = timeout()
    client = {
        "timeout": aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds),
        "trace_configs": [trace],
    }
    fs = HTTPFileSystem(
        client_kwargs=client, headers=dict(location.headers), skip_instance_cache=True, block_size=BLOCK
    )
    return fs, checks


#: The environment that says which credentials a store's client uses.
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                         "GOOGLE_APPLICATION_CREDENTIALS")  # fmt: skip
#: One client per store, options and credentials, kept: its first request costs ~0.5 s (an S3
#: client is built), which every piece of a set would pay again.
_FILESYSTEMS: dict[tuple[str, ...], Any] = {}


def _other_filesystem(fsspec: Any, location: RemoteLocation) -> Any:
    options: dict[str, Any] = {"skip_instance_cache": True}
    seconds = timeout()
    if location.protocol == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options["client_kwargs"] = {"endpoint_url": endpoint} if endpoint else {}
        options["config_kwargs"] = {"connect_timeout": seconds, "read_timeout": seconds,
                                    "retries": {"max_attempts": 2}}  # fmt: skip
    key = (location.protocol, repr(options), *(os.environ.get(v, "") for v in _CREDENTIAL_VARIABLES))
    if key in _FILESYSTEMS:
        return _FILESYSTEMS[key]
    try:
        fs = _FILESYSTEMS[key] = fsspec.filesystem(location.protocol, **options)
        return fs
    except ImportError as exc:
        package = OTHER_PACKAGES.get(location.protocol) or getattr(exc, "name", None)
        what = f"pip install {package}" if location.protocol in OTHER_PACKAGES else INSTALL
        raise CheckpointError(f"Reading {location.shown} needs {package or 'a package'}: {what}.") from None
    except ValueError:
        raise CheckpointError(
            f"{location.shown}: {location.protocol}:// is not a kind of URL this program can read."
        ) from None


class _sentences:
    """Turns what a file-system library raises into one sentence about the file."""

    def __init__(self, location: RemoteLocation, checks: _Responses | None) -> None:
        self.location, self.checks = location, checks

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        problem = self.checks.problems[0] if self.checks is not None and self.checks.problems else ""
        if problem:
            raise _problem(problem, self.location) from None
        if isinstance(exc, Exception) and not isinstance(exc, CheckpointError):
            raise _sentence(exc, self.location) from None


def _problem(problem: str, location: RemoteLocation) -> CheckpointError:
    shown = location.shown
    if problem == "ignores-range":
        return CheckpointError(
            f"The server of {shown} ignores Range requests and sends the whole file; it was stopped "
            "after the first bytes. Download the file and open it locally."
        )
    if problem == "insecure-redirect":
        return CheckpointError(f"{shown} redirects to another host over plain HTTP; it is not followed.")
    return changed(shown, "its size or ETag is not the same as at the first request")


def changed(shown: str, how: str) -> CheckpointError:
    """The sentence for a remote file that changed between two reads (``how`` says how it showed)."""
    return CheckpointError(
        f"{shown} changed while it was being read ({how}); two versions are never mixed. Open it again."
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(exc: BaseException) -> int | None:
    for e in _causes(exc):
        for attr in ("status", "status_code"):
            value = getattr(e, attr, None)
            if isinstance(value, int):
                return value
        response = getattr(e, "response", None)
        if isinstance(response, dict):  # botocore's ClientError
            code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(code, int):
                return code
    return None


def _sentence(exc: Exception, location: RemoteLocation) -> Exception:
    shown = location.shown
    status = _status(exc)
    kinds = {type(e).__name__ for e in _causes(exc)}
    if status in (401, 403) or isinstance(exc, PermissionError) or "NoCredentialsError" in kinds:
        return CheckpointError(
            f"{shown} cannot be read: the server refused access (credentials missing or wrong)."
        )
    if status == 412:
        return _problem("changed", location)
    if status == 404 or isinstance(exc, FileNotFoundError):
        return MissingFileError(f"{shown} does not exist (the server answered “not found”).")
    if isinstance(exc, TimeoutError) or kinds & {
        "ServerTimeoutError", "FSTimeoutError", "ReadTimeoutError", "ConnectTimeoutError", "ReadTimeout"
    }:  # fmt: skip
        return CheckpointError(
            f"{shown} did not answer within {timeout():g} seconds; try again later (or set "
            f"{TIMEOUT_VARIABLE})."
        )
    if kinds & {"ClientPayloadError", "ServerDisconnectedError", "ContentLengthError",
                "IncompleteRead", "ResponseStreamingError", "ConnectionResetError"}:  # fmt: skip
        return _Broken(f"The connection to {shown} broke off in the middle of a read; try again later.")
    if kinds & {"ClientConnectorError", "ConnectionRefusedError", "ClientConnectorDNSError", "gaierror",
                "EndpointConnectionError"}:  # fmt: skip
        return CheckpointError(f"{shown} cannot be reached: the connection to its server failed.")
    if status is not None:
        return CheckpointError(f"{shown} cannot be read: the server answered HTTP {status}.")
    return CheckpointError(f"{shown} cannot be read: {type(exc).__name__}.")
