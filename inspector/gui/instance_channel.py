"""Where the running app listens for later launches, and the hand-over a later launch makes, without Qt.

Standard library only, so a second launch hands its files over before it imports PySide6 or starts
a torch worker. On Unix the channel is a socket file whose path both sides take from
``listen_address``; elsewhere (Windows named pipes) ``hand_over`` says it cannot tell, and the Qt
client in ``inspector.gui.single_instance`` does the hand-over.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE = 1 << 20
_TIMEOUT_S = 2.0


def server_name() -> str:
    """Per user; ``CHECKPOINT_INSPECTOR_INSTANCE`` overrides it (separate instances for tests)."""
    override = os.environ.get("CHECKPOINT_INSPECTOR_INSTANCE")
    if override:
        return override
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return f"checkpoint-inspector-{user}"


def unix_sockets() -> bool:
    """True where the channel is a socket file (everywhere but Windows, where Python has no AF_UNIX)."""
    return sys.platform != "win32"


def listen_address(name: str | None = None) -> str:
    """What the server listens on and clients connect to: a socket path on Unix, a pipe name elsewhere."""
    name = name or server_name()
    if unix_sockets() and not os.path.isabs(name):
        return os.path.join(tempfile.gettempdir(), name)
    return name


def open_message(paths: list[str]) -> dict[str, Any]:
    """The message that asks the running app to open ``paths`` (relative ones against this cwd)."""
    return {"command": "open", "cwd": os.getcwd(), "paths": paths}


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps({"version": PROTOCOL_VERSION, **message}).encode() + b"\n"


def decode_reply(data: bytes) -> dict[str, Any] | None:
    """The first line of ``data`` as a reply object, or None when it is not one."""
    try:
        answer = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def hand_over(paths: list[str], name: str | None = None) -> bool | None:
    """True when a running app took ``paths``; False when none listens (or it did not answer);
    None where this cannot be told without Qt."""
    if not unix_sockets():
        return None
    address = listen_address(name)
    try:
        owner = os.stat(address).st_uid
    except OSError:
        return False  # no socket file: no app is running
    if hasattr(os, "getuid") and owner != os.getuid():
        return False  # another user's socket under this name gets no file names
    import socket  # only when an app may be listening: a first launch needs none

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_TIMEOUT_S)
        try:
            sock.connect(address)
            sock.sendall(encode(open_message(paths)))
            reply = b""
            while b"\n" not in reply and len(reply) < MAX_MESSAGE:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError:  # a socket left by a crashed app refuses; a hung one times out
            return False
    answer = decode_reply(reply)
    return bool(answer and answer.get("ok"))
