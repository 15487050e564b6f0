"""A real HTTP server on 127.0.0.1 whose routes misbehave on purpose.

Each route serves fixed bytes and can: honour or ignore Range, answer a queue
of error statuses first, drop the connection mid-body once, stall past the
client's read timeout once, always send fewer bytes than Content-Length, send
a wrong range on resume, stream a chunk without end, trickle its bytes slowly,
or claim another Content-Type. Every request's headers are logged so tests can
assert what the client sent. Endless and slow answers stop when the client
hangs up, and after at most ENDLESS_SECONDS in any case.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


ENDLESS_SECONDS = 60.0


@dataclass
class Route:
    data: bytes
    honour_range: bool = True
    statuses: list[tuple[int, str | None]] = field(default_factory=list)  # (status, Retry-After) served first
    drop_after: int | None = None  # first full response: close after this many body bytes
    stall_after: int | None = None  # first response: stop after this many bytes until released
    short_by: int = 0  # every response announces this many bytes more than it sends
    wrong_offset: int = 0  # a resumed response serves bytes this far off what its Content-Range claims
    endless: bytes | None = None  # stream this chunk over and over, with no Content-Length
    trickle: float | None = None  # seconds between single bytes of the body
    content_type: str = "application/octet-stream"
    bytes_sent: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    bodies_served: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)  # set on every request

    def ranges(self) -> list[str | None]:
        return [r.get("Range") for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        with self.server.lock:
            route.requests.append(dict(self.headers))
            route.arrived.set()
            queued = route.statuses.pop(0) if route.statuses else None
            first_body = not queued and route.bodies_served == 0
            if not queued:
                route.bodies_served += 1
        if queued:
            status, retry_after = queued
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.endless is not None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.end_headers()
            self._send_until_hangup(lambda: route.endless, route)
            return
        start = 0
        rng = self.headers.get("Range")
        if route.honour_range and rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes=") : -1])
        body = route.data[start + route.wrong_offset if start else 0:]
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(route.data) - 1}/{len(route.data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) + route.short_by))
        self.send_header("Accept-Ranges", "bytes" if route.honour_range else "none")
        self.send_header("Content-Type", route.content_type)
        self.end_headers()
        if route.trickle is not None:
            rest = iter(body)
            self._send_until_hangup(lambda: bytes([next(rest)]) if time.sleep(route.trickle) is None else b"", route)
            return
        if first_body and route.drop_after is not None:
            self.wfile.write(body[: route.drop_after])
            self._hang_up()
            return
        if first_body and route.stall_after is not None:
            self.wfile.write(body[: route.stall_after])
            self.wfile.flush()
            self.server.release.wait(timeout=30)
            self._hang_up()
            return
        self.wfile.write(body)
        if route.short_by:
            self._hang_up()

    def _send_until_hangup(self, next_chunk, route: Route) -> None:
        end = time.monotonic() + ENDLESS_SECONDS
        try:
            while time.monotonic() < end:
                chunk = next_chunk()
                self.wfile.write(chunk)
                self.wfile.flush()
                route.bytes_sent += len(chunk)
        except (OSError, StopIteration):
            pass  # the client hung up (what the tests want it to do), or the body ended
        self.close_connection = True

    def _hang_up(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up mid-body is what several tests do on purpose: stay quiet."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.base_url + path

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
