"""An HTTP server on 127.0.0.1 that honours Range requests, counts what it serves and injects faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Served:
    """One file the server holds, and the faults it shows."""

    data: bytes  # or any buffer with len() and slices (an mmap of a large file)
    etag: str = '"v1"'
    status: int = 0  # answer every request with this status instead (404, 403…)
    ignore_range: bool = False  # answer a Range request with the whole file (200)
    truncate_times: int = 0  # cut this many ranged responses short, then serve them in full
    stall: bool = False  # send headers of a ranged response, then nothing (until the test ends)
    stall_after: int = -1  # after this many ranged responses, stall every further one
    silent: bool = False  # answer nothing at all, not even headers (until the test ends)
    replace_after: int = -1  # after this many ranged responses, serve ``replacement`` instead
    replacement: bytes = b""
    redirect: str = ""  # answer 302 to this URL
    authorization: str = ""  # answer 401 unless the request carries this Authorization header
    ranged: int = 0  # ranged responses sent


@dataclass
class Log:
    """What the server answered: each request's method, path and the bytes of its body sent."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    body_bytes: int = 0


class RangeServer:
    """Files by URL path; ``url(path)`` is their address; ``log`` counts what was served."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds added before each answer (a far-away server, for benchmarks)
        self.files: dict[str, Served] = {}
        self.log = Log()
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                server.answer(self, head=True)

            def do_GET(self) -> None:
                server.answer(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def add(self, path: str, data: bytes, **faults: object) -> Served:
        served = Served(data, **faults)  # type: ignore[arg-type]
        self.files["/" + path.lstrip("/")] = served
        return served

    @property
    def ranged_requests(self) -> int:
        return sum(1 for method, _, rng in self.log.requests if method == "GET" and rng)

    def answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        if self.latency:
            time.sleep(self.latency)
        path = h.path.split("?", 1)[0]
        rng = h.headers.get("Range", "")
        self.log.requests.append((h.command, path, rng))
        served = self.files.get(path)
        refused = served is not None and served.authorization not in ("", h.headers.get("Authorization"))
        if served is None or served.status or refused:
            status = 401 if refused else served.status if served is not None else 404
            h.send_response(status)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if served is not None and served.silent:
            self.released.wait(30)
            return
        if served.redirect:
            h.send_response(302)
            h.send_header("Location", served.redirect)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data, etag = served.data, served.etag
        if rng and not head and 0 <= served.replace_after <= served.ranged:
            data, etag = served.replacement, '"v2"'
        if not rng or head or served.ignore_range:
            self._send(h, 200, data, 0, len(data), etag, head)
            return
        first, _, last = rng.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) + 1 if last else len(data), len(data))
        served.ranged += 1
        if served.stall or 0 <= served.stall_after < served.ranged:
            h.send_response(206)
            h.send_header("Content-Length", str(end - start))
            h.end_headers()
            self.released.wait(30)
            return
        if served.truncate_times > 0:
            served.truncate_times -= 1
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            h.send_header("Content-Length", str(end - start))
            h.send_header("ETag", etag)
            h.end_headers()
            h.wfile.write(data[start : start + (end - start) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, 206, data, start, end, etag, head)

    def _send(self, h: BaseHTTPRequestHandler, status: int, data: bytes, start: int, end: int,
              etag: str, head: bool) -> None:  # fmt: skip
        h.send_response(status)
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        h.send_header("Content-Length", str(end - start))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", etag)
        h.end_headers()
        if head:
            return
        try:
            for at in range(start, end, 1 << 20):
                chunk = data[at : min(end, at + (1 << 20))]
                h.wfile.write(chunk)
                self.log.body_bytes += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True


@contextmanager
def range_server(latency: float = 0.0) -> Iterator[RangeServer]:
    server = RangeServer(latency)
    server.thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.httpd.shutdown()
        server.httpd.server_close()


def file_facts(*reports: dict[str, Any]) -> None:
    """Drop from ``info --json`` reports what is not a fact of the file: where it was read from and
    this computer's free memory in the model card's fit lines."""
    for report in reports:
        report.pop("path", None)
        report.pop("remote", None)
        card = report.get("model_card")
        if isinstance(card, dict):
            card.pop("fits", None)
