"""What a location the user typed is: a local path, or a URL and the file system that reads it.

``https://huggingface.co/org/repo/blob/rev/file`` and ``hf://org/repo/file@rev`` are the Hub's
``resolve/`` URL of that file (``HF_ENDPOINT`` honoured), read over HTTP like any other. A URL is
shown without its user name, password or query, where tokens travel.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from inspector.core.errors import CheckpointError

#: The package that reads each scheme, when it is not one of the ``[remote]`` extra.
OTHER_PACKAGES = {"gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
DEFAULT_HF_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class RemoteLocation:
    """A remote file: the URL its file system opens, the protocol, and how sentences show it."""

    url: str
    protocol: str  # "https", "http", "s3", or another fsspec protocol
    shown: str  # without credentials or query
    headers: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # e.g. a Hub token
    repo: bool = False  # a Hub repository (``hf://org/repo``): ``url`` is its ``resolve/`` folder

    @property
    def name(self) -> str:
        """The file's name as sentences quote it (“model.pth”)."""
        return f"“{posixpath.basename(self.shown.rstrip('/')) or self.shown}”"


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://…``) rather than a local path."""
    return bool(_SCHEME.match(text)) and not os.path.exists(text)


def parse_location(text: str) -> RemoteLocation:
    """The remote file ``text`` names; a sentence for ``file://``, a malformed or an unknown URL."""
    match = _SCHEME.match(text)
    if match is None:
        raise CheckpointError(f"{shown_form(text)} is not a URL.")
    scheme = match.group(1).lower()
    if scheme == "file":
        raise CheckpointError(
            f"{shown_form(text)} is a file:// URL; open the local file by its path instead "
            f"({unquote(urlsplit(text).path) or '/'})."
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise CheckpointError(f"{shown_form(text)} is not a valid URL.") from None
    if scheme in ("http", "https"):
        if not parts.hostname or not parts.path.strip("/"):
            raise CheckpointError(f"{shown_form(text)} is not a valid URL: it names no host or no file.")
        return _hub_file(parts) or RemoteLocation(text, scheme, shown_form(text))
    if scheme == "hf":
        return _hf_file(text)
    if not parts.netloc or not parts.path.strip("/"):
        raise CheckpointError(f"{shown_form(text)} is not a valid URL: it names no bucket or no file.")
    protocol = "s3" if scheme in ("s3", "s3a") else scheme
    return RemoteLocation(f"{protocol}://{parts.netloc}{parts.path}", protocol, shown_form(text))


def shown_form(text: str) -> str:
    """``text`` without user name, password, query or fragment (where credentials travel)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text.split("?", 1)[0].split("#", 1)[0]
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT).rstrip("/")


def _hub_file(parts: SplitResult) -> RemoteLocation | None:
    """A Hub page URL (``…/blob/rev/file``) as the file it shows; a ``resolve/`` URL gets the token."""
    base = urlsplit(hf_endpoint())
    if parts.netloc.rpartition("@")[2].lower() != base.netloc.lower():
        return None
    segments = parts.path.strip("/").split("/")
    repo_at = 1 if segments[0] in ("datasets", "spaces") else 0
    kind = segments[repo_at + 2] if len(segments) > repo_at + 3 else ""
    if kind not in ("blob", "resolve"):
        return None
    segments[repo_at + 2] = "resolve"
    url = urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments), "", ""))
    return RemoteLocation(url, parts.scheme, shown_form(url), _hub_headers())


def _hf_file(text: str) -> RemoteLocation:
    """``hf://[datasets/]org/repo/path[@rev]`` (or ``org/repo@rev/path``) as its ``resolve/`` URL;
    ``hf://org/repo[@rev]`` as the repository's ``resolve/`` folder, whose checkpoint is found by name."""
    rest = text[len("hf://") :].split("?", 1)[0].strip("/")
    segments = rest.split("/")
    prefix = []
    if segments and segments[0] in ("datasets", "spaces", "models"):
        prefix = [] if segments[0] == "models" else [segments[0]]
        segments = segments[1:]
    if len(segments) < 2 or not all(segments):
        raise CheckpointError(
            f"{shown_form(text)} is not a valid Hub URL: it should read hf://org/repo or hf://org/repo/file "
            "(with @revision after the repository or the file if not main)."
        )
    org, repo, path = segments[0], segments[1], segments[2:]
    revision = "main"
    if "@" in repo:
        repo, _, revision = repo.partition("@")
    elif path and "@" in path[-1]:
        path[-1], _, revision = path[-1].rpartition("@")
    if not repo or not revision or (path and not path[-1]) or any(p in ("..", ".") for p in path):
        raise CheckpointError(f"{shown_form(text)} is not a valid Hub URL.")
    quoted = "/".join(quote(p) for p in path)
    url = f"{hf_endpoint()}/{'/'.join([*prefix, org, repo])}/resolve/{quote(revision, safe='')}/{quoted}"
    scheme = urlsplit(url).scheme.lower()
    return RemoteLocation(url, scheme, shown_form(text).rstrip("/"), _hub_headers(), repo=not path)


def _hub_headers() -> dict[str, str]:
    """The Hub token the standard way (``HF_TOKEN``, or the one ``hf auth login`` saved)."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        try:
            from huggingface_hub import get_token
        except ImportError:
            return {}
        token = get_token()
    return {"authorization": f"Bearer {token}"} if token else {}
