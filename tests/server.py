"""A real HTTP server on 127.0.0.1 for tests: routes map a path to a handler that writes the
answer, so each test can serve feeds, pages and misbehaviour of its own."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Served:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[str, Served | Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = owner.routes.get(self.path)
                if route is None:
                    self._send(Served(b"not found", status=404))
                elif isinstance(route, Served):
                    self._send(route)
                else:
                    route(self)

            def do_POST(self) -> None:
                # A handler reads the body itself (Content-Length); a Served answer ignores it.
                route = owner.routes.get(self.path.split("?", 1)[0])
                owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if route is None or isinstance(route, Served):
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    self._send(route if isinstance(route, Served) else Served(b"not found", status=404))
                else:
                    route(self)

            def _send(self, served: Served) -> None:
                if served.etag and self.headers.get("If-None-Match") == served.etag:
                    self.send_response(304)
                    self.send_header("ETag", served.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(served.status)
                self.send_header("Content-Type", served.content_type)
                self.send_header("Content-Length", str(len(served.body)))
                if served.etag:
                    self.send_header("ETag", served.etag)
                for key, value in served.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(served.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        # A client that gives up mid-answer (d24watch refusing a body) is expected here, not an error.
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | str, content_type: str = "text/html; charset=utf-8", **kw: object) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Served(data, content_type, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def raw(status: int, body: bytes, headers: dict[str, str]) -> Handler:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handler


def gzip_bomb(decoded_mb: int) -> Handler:
    """A gzip body that decodes to `decoded_mb` MB of zeros, compressed once up front."""
    payload = gzip.compress(b"\0" * (decoded_mb * 1024 * 1024), compresslevel=9)
    return raw(200, payload, {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"})


def stall(seconds: float) -> Handler:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"<rss><channel>")
        h.wfile.flush()
        time.sleep(seconds)

    return handler


def redirect(to: str, status: int = 302) -> Handler:
    return raw(status, b"", {"Location": to})
