"""One window per user: a second launch hands its files to the running app and exits.

The running app listens on a per-user ``QLocalServer``. Messages are one JSON object per line,
versioned: ``{"version": 1, "command": "open", "cwd": …, "paths": [absolute paths]}`` opens the
files as tabs and raises the window; ``{"version": 1, "command": "status"}`` lists the open files
(for scripts and tests). Every reply is ``{"version": 1, "ok": bool, …}``. Where the channel is
and how a later launch hands over without Qt live in ``inspector.gui.instance_channel``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from inspector.gui import instance_channel
from inspector.gui.instance_channel import (
    MAX_MESSAGE,
    PROTOCOL_VERSION,
    decode_reply,
    encode,
    listen_address,
    server_name,
)

__all__ = ["InstanceServer", "hand_over", "send_request", "server_name"]


def send_request(
    message: dict[str, Any], name: str | None = None, timeout_ms: int = 2000
) -> dict[str, Any] | None:
    """Send one message to the running app; its reply, or None when no app is listening."""
    socket = QLocalSocket()
    socket.connectToServer(listen_address(name))
    if not socket.waitForConnected(timeout_ms):
        return None
    socket.write(encode(message))
    socket.flush()
    reply = b""
    while b"\n" not in reply and socket.waitForReadyRead(timeout_ms):
        reply += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    return decode_reply(reply)


def hand_over(paths: list[str]) -> bool:
    """True when a running app took ``paths`` (this process may exit); without Qt where it can be."""
    handed = instance_channel.hand_over(paths)
    if handed is not None:
        return handed
    reply = send_request(instance_channel.open_message(paths))
    return bool(reply and reply.get("ok"))


class InstanceServer(QObject):
    """Listens for later launches; emits ``files_received`` with their absolute paths."""

    files_received = Signal(list)

    def __init__(self, open_files: Callable[[], list[str]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._open_files = open_files
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_new_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self, name: str | None = None) -> bool:
        """Start listening; a socket left behind by a crashed app is removed first."""
        name = listen_address(name)
        if self._server.listen(name):
            return True
        QLocalServer.removeServer(name)  # only reached when nobody answered on it
        return bool(self._server.listen(name))

    def close(self) -> None:
        self._server.close()

    def _on_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._on_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _forget(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()

    def _on_ready_read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if len(data) > MAX_MESSAGE:
            self._reply(socket, {"ok": False, "error": "message too long"})
            return
        if b"\n" not in data:
            self._buffers[socket] = data
            return
        line = data.split(b"\n", 1)[0]
        self._buffers[socket] = b""
        self._reply(socket, self._handle(line))

    def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not JSON"}
        if not isinstance(message, dict) or message.get("version") != PROTOCOL_VERSION:
            return {"ok": False, "error": f"protocol version {PROTOCOL_VERSION} expected"}
        command = message.get("command")
        if command == "open":
            cwd = str(message.get("cwd") or os.getcwd())
            paths = [os.path.join(cwd, str(p)) for p in message.get("paths") or []]
            self.files_received.emit(paths)
            return {"ok": True}
        if command == "status":
            return {"ok": True, "files": self._open_files()}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def _reply(self, socket: QLocalSocket, answer: dict[str, Any]) -> None:
        socket.write(encode(answer))
        socket.flush()
